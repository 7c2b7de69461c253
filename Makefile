# Entry points for people and CI. Every target that needs the virtualenv or the services runs
# scripts/bootstrap.sh first: it is idempotent and takes about a second when all is in place.
#
#   make test PYTEST_ARGS="-x -k ingest"     extra pytest arguments
#   make demo HOST=0.0.0.0 PORT=8080         serve elsewhere
#   make demo DEMO_DETACH=1                  start in the background; `make stop` ends it
#   VENV=/tmp/venv make test                 use another virtualenv

VENV ?= .venv
PYTEST_ARGS ?=
PY := $(VENV)/bin/python
# The scripts read VENV (and HOST, PORT, DEMO_DETACH when given) from the environment.
export VENV

.DEFAULT_GOAL := help
.PHONY: help bootstrap demo test faults lint bench stop clean lock audit

help:
	@echo "Targets:"
	@echo "  make demo       bootstrap, migrate, load demo data, run web + worker + beat (Ctrl-C stops)"
	@echo "  make test       bootstrap, then run the test suite (PYTEST_ARGS=... for extra pytest args)"
	@echo "  make faults     only the fault tests: PostgreSQL crash, Redis killed, worker killed (~5 min)"
	@echo "  make lint       ruff check + ruff format --check"
	@echo "  make bench      run the benchmarks (bench/run_all.py)"
	@echo "  make stop       stop a demo started with DEMO_DETACH=1"
	@echo "  make clean      remove the virtualenv ($(VENV)) and var/"
	@echo "  make bootstrap  system packages, virtualenv, PostgreSQL/PostGIS and Redis only"
	@echo "  make lock       re-lock requirements/*.txt (hashed) from pyproject.toml (LOCK_ARGS=--upgrade)"
	@echo "  make audit      known vulnerabilities in the locked Python and npm packages"

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	bash scripts/run_demo.sh

# pytest's own exit code is the result (5 = no tests collected also fails).
test: bootstrap
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Part of `make test` too; this runs only them (docs/RELIABILITY.md "Faults").
faults: bootstrap
	$(VENV)/bin/pytest tests/faults -m faults $(PYTEST_ARGS)

# Linting needs the virtualenv, not the database.
lint:
	SKIP_SERVICES=1 bash scripts/bootstrap.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: bootstrap
	@if [ -f bench/run_all.py ]; then \
		$(PY) bench/run_all.py; \
	else \
		echo "bench/run_all.py does not exist yet: nothing to run"; \
	fi

# Needs the network (PyPI), not the virtualenv: pip-tools runs from its own (scripts/lock.sh).
lock:
	bash scripts/lock.sh

# Fails when a locked version has a known vulnerability, and when a vulnerability service could
# not be asked (not a pass); AUDIT_ALLOW_UNCHECKED=1 (CI, .ci/run) makes the latter a loud warning.
audit:
	SKIP_SERVICES=1 bash scripts/bootstrap.sh
	$(PY) scripts/audit.py

stop:
	bash scripts/stop_demo.sh

clean: stop
	rm -rf $(VENV) var
