# bambu-edge developer entry points. `make run` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test processes: most of a test's time is waiting on real peers (mosquitto, vsftpd, the daemon,
# Chromium), so more workers than cores pays; each test brings its own peers on ports they bind.
TEST_WORKERS ?= 4

.PHONY: venv run test unit integration lint bench clean deb deb-test image image-test

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
	@scripts/moonraker-venv.sh  # the real Moonraker for the demo's Klipper printer (once, ~20 s)
	$(VENV)/bin/bambu-edge demo

test:
	@scripts/system-deps.sh test
	@$(MAKE) --no-print-directory venv
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest -q tests/unit

lint: venv
	$(VENV)/bin/ruff check bambu_edge tests bench scripts
	$(VENV)/bin/ruff format --check bambu_edge tests bench scripts

bench: venv
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Debian packages for amd64 and arm64 into dist/ (docs/packaging.md); DEB_ARCHES=amd64 for one.
DEB_ARCHES ?= amd64 arm64
deb:
	@scripts/system-deps.sh deb
	@$(MAKE) --no-print-directory venv
	scripts/deb-build.sh $(DEB_ARCHES)
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root lintian --fail-on error,warning \
		$(foreach a,$(DEB_ARCHES),dist/bambu-edge_$$(dpkg-parsechangelog -S Version)_$(a).changes)

# Installs the packages in fresh Debian 12 roots (debootstrap; arm64 under qemu-user-static):
# enabled unit, check-config, the daemon answering /api/health, upgrade, purge. Not part of
# `make test` (docs/packaging.md has the timings).
deb-test: deb
	scripts/deb-test.sh $(DEB_ARCHES)

# The Raspberry Pi image (docs/image.md), as root. DEB= the arm64 package; by default the newest
# dist/bambu-edge_*_arm64.deb, built first (`make deb`) when there is none. Caches its Debian base
# root under var/image/.
DEB ?=
NEWEST_ARM64_DEB = $$(ls dist/bambu-edge_*_arm64.deb | sort -V | tail -1)

image:
	@image-build/deps.sh
	@[ -n "$(DEB)" ] || ls dist/bambu-edge_*_arm64.deb >/dev/null 2>&1 || $(MAKE) --no-print-directory deb DEB_ARCHES=arm64
	deb="$(DEB)"; DEB="$${deb:-$(NEWEST_ARM64_DEB)}" image-build/build.sh

# Builds the image (without the .xz copy) and checks it: tests/image (not part of `make test`).
image-test:
	@image-build/deps.sh
	@$(MAKE) --no-print-directory venv
	@[ -n "$(DEB)" ] || ls dist/bambu-edge_*_arm64.deb >/dev/null 2>&1 || $(MAKE) --no-print-directory deb DEB_ARCHES=arm64
	deb="$(DEB)"; deb="$${deb:-$(NEWEST_ARM64_DEB)}"; DEB="$$deb" XZ=0 image-build/build.sh && \
	BAMBU_EDGE_IMAGE="dist/bambu-edge_$$(dpkg-deb -f "$$deb" Version)_arm64.img" \
		$(PY) -m pytest -q -p no:cacheprovider tests/image

clean:
	rm -rf $(VENV) var build dist *.egg-info
