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
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile  # both cores; a module's tests share one worker (and its servers)

# Everything but the tests marked slow or needing Virtuoso, on both cores: under a minute. schemathesis'
# pytest plugin serves only the (slow) fuzz test; loading it costs every process a second or two.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not virtuoso" -n 2 --dist loadfile -p no:schemathesis

check: $(STAMP)
	$(VENV)/bin/crlm-kg check

# Figures only, no pass/fail (none of them asserts a time in a test): every benchmarks/bench_*.py (bench_service.py
# compares with the baseline revision in the same run), the evidence at 1x/10x/100x with cohort screening, each factor
# also served from a throwaway Virtuoso when virtuoso-opensource is installed (as the set-up does), then a short load
# test. About an hour and a few GB at 100x; BENCH_SCALE_ARGS="--factors 1 10" for a quicker run.
BENCH_SCALE_ARGS ?= $(if $(shell command -v virtuoso-t),--virtuoso,)
bench: $(STAMP)
	set -e; for script in benchmarks/bench_*.py; do case $$script in benchmarks/bench_scale.py|benchmarks/bench_virtuoso.py) continue;; esac; echo "== $$script"; $(VENV)/bin/python $$script; done
	echo "== benchmarks/bench_scale.py"; $(VENV)/bin/python benchmarks/bench_scale.py $(BENCH_SCALE_ARGS)
	echo "== benchmarks/load_test.py"; $(VENV)/bin/python benchmarks/load_test.py --duration 15 --clients 16

clean:
	rm -rf $(VENV) build
