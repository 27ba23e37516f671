# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -p no:cacheprovider

# tools: promtool, amtool, redis-server, pgbouncer (scripts/install-tools.sh installs them when missing)
.PHONY: install constraints tools run test lint typecheck unit test-tenants test-idempotency test-audit test-health test-alerts fuzz bench bench-alerts clean

# Every package at the version constraints.txt pins: a fresh machine, CI and the image run
# what the tests ran.
$(STAMP): pyproject.toml constraints.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

## re-pin constraints.txt to what a fresh install of pyproject.toml resolves today
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install -q --upgrade pip
	.venv-pin/bin/pip install -q -e ".[test]"
	{ sed -n '1,/^$$/p' constraints.txt; .venv-pin/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-pin

tools:
	@scripts/install-tools.sh

## the service with demo data on an embedded PostgreSQL (or DATABASE_URL's)
run: install
	$(VENV)/bin/unifocus demo

## ruff, mypy and every test
test: install tools lint typecheck
	$(PYTEST) -q

lint: install
	$(VENV)/bin/ruff check src tests bench

typecheck: install
	$(VENV)/bin/mypy

## one gate of the production-readiness gate alone
test-tenants: install tools
	$(PYTEST) -q -m tenants
test-idempotency: install tools
	$(PYTEST) -q -m idempotency
test-audit: install tools
	$(PYTEST) -q -m audit
test-health: install tools
	$(PYTEST) -q -m health
test-alerts: install tools
	$(PYTEST) -q -m alerts

## schemathesis over every operation and role, longer than the bounded run in `make test`
fuzz: install
	UNIFOCUS_FUZZ_EXAMPLES=$${UNIFOCUS_FUZZ_EXAMPLES:-500} $(PYTEST) -q tests/fuzz -m fuzz

## punch write throughput of the service against a bare baseline and pgbench (bench/README.md)
bench: install
	@scripts/install-tools.sh bench
	$(PY) bench/run.py

## the alert rules of deploy/prometheus/alerts.yml in a real Prometheus against the service under the
## punch load: false positives and each threshold's headroom (bench/README.md; the `prometheus` package
## that install-tools.sh installs for promtool is the server too)
bench-alerts: install
	@scripts/install-tools.sh bench
	$(PY) bench/alert_calibration.py

clean:
	rm -rf $(VENV) .unifocus .mypy_cache .ruff_cache
