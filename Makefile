# taskrail: `make run` (the demo) and `make test` (the suite) set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean server-stop

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/taskrail demo

test: install
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
