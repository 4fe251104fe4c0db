# The two commands a newcomer needs: `make demo` and `make test`.
# Each does all of its own set-up: virtual environment, packages, system packages, services.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install system demo test lint bench bundles down clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

system:
	bash scripts/ensure-system.sh

demo: install system
	$(PY) -m local_emulators demo

test: install system
	$(VENV)/bin/nox --no-venv -s lint tests

lint: install
	$(VENV)/bin/nox --no-venv -s lint

bench: install system
	$(VENV)/bin/nox --no-venv -s bench

bundles: install
	$(VENV)/bin/nox --no-venv -s bundles

down: install
	$(PY) -m local_emulators down

clean:
	rm -rf $(VENV) .nox build dist .podscribe-local
