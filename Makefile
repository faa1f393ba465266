# The two entry points of the README. Both set everything up idempotently:
# Debian packages (JDK, OWL API, Virtuoso), the virtualenv in .venv and the
# project installed into it.
VENV := .venv
STAMP := $(VENV)/.crlm-kg-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast setup check bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/crlm-kg serve --host $(HOST) --port $(PORT)

# The full suite. Without the source documents (CRLM_KG_SEEDS, default ../shared/seeds) the
# provenance gates are skipped and counted in the summary; CRLM_KG_STRICT=1 makes that a failure.
test: $(STAMP)
	$(VENV)/bin/python -m pytest

# Everything but the tests marked slow or needing Virtuoso: under a minute.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not virtuoso" -n 2  # both cores: most of the time is servers starting

check: $(STAMP)
	$(VENV)/bin/crlm-kg check

# Every benchmark script in benchmarks/ (bench_*.py, then a short load test): minutes, on a quiet machine.
# bench_service.py compares with the baseline revision in the same run; none of them asserts a time in a test.
bench: $(STAMP)
	set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(VENV)/bin/python $$script; done
	echo "== benchmarks/load_test.py"; $(VENV)/bin/python benchmarks/load_test.py --duration 15 --clients 16

clean:
	rm -rf $(VENV) build
