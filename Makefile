# The two commands a newcomer needs: `make demo` and `make test`.
# Each does all of its own set-up: virtual environment, packages, system packages, services.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install lock system demo test drills lint bench bundles down clean

# Packages come from the lock (requirements/dev.txt: every extra plus the dev tools, each pinned
# with PyPI's hashes), then the project itself without resolving anything.
$(VENV)/.installed: pyproject.toml requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Regenerate every lock file in requirements/ from pyproject.toml (tools/lock.py, uv, PyPI only).
# Pins are kept where still allowed; LOCK_ARGS=--upgrade moves all to the newest versions,
# LOCK_ARGS='--upgrade-package ctranslate2' just one; the venv then follows the new lock.
lock: install
	$(PY) -m tools.lock $(LOCK_ARGS)
	$(MAKE) install

system:
	bash scripts/ensure-system.sh

demo: install system
	$(PY) -m local_emulators demo

test: install system
	$(VENV)/bin/nox --no-venv -s lint tests drills

# Faults broken for real and the table of what was observed (docs/reliability.md).
drills: install system
	$(VENV)/bin/nox --no-venv -s drills

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
