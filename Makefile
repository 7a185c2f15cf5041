# bambu-edge developer entry points. `make run` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test processes: most of a test's time is waiting on real peers (mosquitto, vsftpd, the daemon,
# Chromium), so more workers than cores pays; each test brings its own peers on ports they bind.
TEST_WORKERS ?= 4

.PHONY: venv run test unit integration lint bench clean image image-test

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

# The Raspberry Pi image (docs/image.md), as root. DEB= the arm64 package; by default the newest
# dist/bambu-edge_*_arm64.deb (`make deb`). Caches its Debian base root under var/image/.
IMAGE_DEB ?= $(lastword $(sort $(wildcard dist/bambu-edge_*_arm64.deb)))
DEB ?= $(IMAGE_DEB)

image:
	@image-build/deps.sh
	DEB="$(DEB)" image-build/build.sh

# Builds the image (without the .xz copy) and checks it: tests/image (not part of `make test`).
image-test:
	@image-build/deps.sh
	@$(MAKE) --no-print-directory venv
	DEB="$(DEB)" XZ=0 image-build/build.sh
	BAMBU_EDGE_IMAGE="dist/bambu-edge_$$(dpkg-deb -f "$(DEB)" Version)_arm64.img" \
		$(PY) -m pytest -q -p no:cacheprovider tests/image

clean:
	rm -rf $(VENV) var build *.egg-info
