# Every target installs what it is missing, then does its job.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

# berth's built-in image (busybox), built from the host's busybox-static once it is installed.
install: $(STAMP)
	@bash scripts/system-packages.sh
	@$(BIN)/python -m berth.agent.archives $(VENV)/share/berth/images
	@bash scripts/runtime-sdks.sh $(BIN)/python

up: install
	$(BIN)/berth up

test: install
	$(BIN)/pytest -q tests

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .berth
