# The two entry points of the README. Both set everything up idempotently:
# Debian packages (JDK, OWL API, Virtuoso), the virtualenv in .venv and the
# project installed into it.
VENV := .venv
STAMP := $(VENV)/.crlm-kg-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup check bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/crlm-kg serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

check: $(STAMP)
	$(VENV)/bin/crlm-kg check

clean:
	rm -rf $(VENV) build
