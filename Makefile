# transcell: `make demo` runs the main job, `make test` the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint test-fast sample-config clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# qemu-img builds and inspects the real disk files; install it when missing.
system-deps:
	@command -v qemu-img >/dev/null 2>&1 || { \
	  echo "installing qemu-utils"; \
	  (apt-get update -qq && apt-get install -y -qq qemu-utils) >/dev/null || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq qemu-utils) >/dev/null; }

demo: system-deps $(STAMP)
	$(BIN)/transcell demo

test: system-deps $(STAMP)
	$(BIN)/ruff check src tests
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -p no:cacheprovider

test-fast: system-deps $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -m "not cli and not backends and not slow and not tempest"

sample-config: $(STAMP)
	$(BIN)/oslo-config-generator --namespace transcell --output-file etc/transcell.conf.sample

clean:
	rm -rf $(VENV) state
