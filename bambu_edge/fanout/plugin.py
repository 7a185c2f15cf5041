"""The mosquitto plugin (``auth_plugin.c``) that tells printers apart by access code: found where a
package installs it, else built once from the source next to this file into the data directory.

Building needs a C compiler and mosquitto's headers (Debian: gcc, mosquitto-dev, libmosquitto-dev);
Raspberry Pi OS has gcc. The library is named after the source's hash, so an updated source is
rebuilt and an old build is never loaded by mistake."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from bambu_edge.component import ComponentError

SOURCE = Path(__file__).with_name("auth_plugin.c")
INSTALLED = Path("/usr/lib/bambu-edge/fanout_auth.so")
ENV = "BAMBU_EDGE_FANOUT_PLUGIN"
HEADERS = (Path("/usr/include/mosquitto_broker.h"), Path("/usr/include/mosquitto.h"))
BUILD_TIMEOUT_S = 120
MISSING = (
    "the fan-out endpoint needs its mosquitto plugin, and it cannot be built here: install a C "
    "compiler and mosquitto's headers (sudo apt-get install -y gcc mosquitto-dev libmosquitto-dev) "
    f"or set {ENV} to a built fanout_auth.so"
)


def source_hash() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]


def find_or_build(build_dir: Path) -> Path:
    """The plugin to load: $BAMBU_EDGE_FANOUT_PLUGIN, the packaged one, or a build in
    ``build_dir`` (made now if missing). Blocking: call it in a thread."""
    named = os.environ.get(ENV)
    if named:
        if not Path(named).is_file():
            raise ComponentError(f"{ENV} names {named}, which is not a file")
        return Path(named)
    if INSTALLED.is_file():
        return INSTALLED
    out = build_dir / f"fanout_auth-{source_hash()}.so"
    if out.is_file():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not all(h.is_file() for h in HEADERS):
        raise ComponentError(MISSING)
    build_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = out.with_suffix(".tmp")
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ComponentError(f"could not build the fan-out's mosquitto plugin: {done.stderr.strip()[-400:]}")
    tmp.replace(out)
    for old in build_dir.glob("fanout_auth-*.so"):  # builds of earlier sources
        if old != out:
            old.unlink(missing_ok=True)
    return out
