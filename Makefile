# taskrail: `make run` (the demo) and `make test` (the suite) set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean server-stop browser

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/taskrail demo

# The dashboard's browser test drives Debian's chromium with Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

test: install browser
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tasks workers config scripts

bench: install
	$(BIN)/taskrail bench

server-stop: install
	$(BIN)/taskrail server stop

clean:
	-$(BIN)/taskrail server stop
	rm -rf $(VENV) .taskrail *.egg-info
