# transcell: `make demo` runs the main job, `make test` the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-distributed test-tempest-broad lint test-fast sample-config clean system-deps

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
	$(MAKE) --no-print-directory test-distributed
	$(MAKE) --no-print-directory test-tempest-broad

# The end-to-end move tests (with volumes and routed ports too) and the Tempest
# runs again, against `transcell up --distributed` (every service its own process
# on PostgreSQL, MariaDB, RabbitMQ and Keystone) instead of the embedded cloud.
test-distributed: system-deps $(STAMP)
	TRANSCELL_TEST_LAYOUT=distributed PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q \
	  -p no:cacheprovider tests/functional/moves/test_cross_cell.py \
	  tests/functional/moves/test_move_volumes.py tests/functional/moves/test_move_ports.py \
	  tests/functional/tempest

# The broad Tempest run (tests/functional/tempest/test_tempest_broad.py): the whole
# compute tree, Glance v2 and the network subset's tests on two workers; its subunit
# stream is kept for the README table (tests/functional/tempest/broad_table.py).
test-tempest-broad: system-deps $(STAMP)
	TRANSCELL_TEMPEST_BROAD_OUT="$(CURDIR)/state/tempest-broad.subunit" \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -p no:cacheprovider -m tempest_broad \
	  tests/functional/tempest/test_tempest_broad.py

test-fast: system-deps $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -m "not cli and not backends and not slow and not tempest and not distributed"

sample-config: $(STAMP)
	$(BIN)/oslo-config-generator --namespace transcell --namespace transcell.service_auth \
	  --namespace keystonemiddleware.auth_token --output-file etc/transcell.conf.sample

clean:
	rm -rf $(VENV) state
