# bambu-edge developer entry points. `make run` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test processes: most of a test's time is waiting on real peers (mosquitto, vsftpd, the daemon,
# Chromium), so more workers than cores pays; each test brings its own peers on ports they bind.
TEST_WORKERS ?= 4

.PHONY: venv run test unit integration lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -e '.[test,systemd]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import bambu_edge, aiomqtt, aiohttp, pytest"
	touch $(STAMP)

venv: $(STAMP)

run:
	@scripts/system-deps.sh run
	@$(MAKE) --no-print-directory venv
	$(VENV)/bin/bambu-edge demo

test:
	@scripts/system-deps.sh test
	@$(MAKE) --no-print-directory venv
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest -q tests/unit

lint: venv
	$(VENV)/bin/ruff check bambu_edge tests bench
	$(VENV)/bin/ruff format --check bambu_edge tests bench

bench: venv
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
