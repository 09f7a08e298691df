# The two commands of the README. Both create .venv and install everything first.
VENV ?= .venv
export HF_HUB_OFFLINE ?= 1
# Two pytest processes (tests/conftest.py groups what must share one); the slowest tests listed at the end.
TEST_WORKERS ?= 2

.PHONY: lab test test-fast lint setup
lab:            ## install everything, then open JupyterLab on notebooks/ (127.0.0.1, token on)
	scripts/setup.sh
	$(VENV)/bin/llamalab lab

test:           ## install everything (test tools, chromium), check style and types, run every test incl. notebooks and browser
	scripts/setup.sh test
	$(MAKE) lint
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=40

lint:           ## ruff (lint + format) over the tree, mypy over the floors that are pure Python (core, catalog, plan)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast:      ## unit tests only (no model loads, no notebooks, no browser)
	$(VENV)/bin/python -m pytest -m "not slow and not browser"
