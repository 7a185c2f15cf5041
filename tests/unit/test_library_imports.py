"""The Bambu protocol code is a library another program could import: loading every module of
``bambu_edge.printers.bambu`` and the generic printer layer pulls in nothing of the daemon."""

from __future__ import annotations

import json
import subprocess
import sys

GENERIC = ("base", "state", "values", "backoff", "beat")
DAEMON = ("store", "web", "bus", "config", "jobs", "files", "logs", "app", "demo", "cli", "certs")

PROBE = f"""
import importlib, json, pkgutil, sys
import bambu_edge.printers.bambu as lib
names = [m.name for m in pkgutil.walk_packages(lib.__path__, lib.__name__ + ".")]
for name in names + ["bambu_edge.printers." + g for g in {GENERIC!r}]:
    importlib.import_module(name)
daemon = sorted(
    m for m in sys.modules
    if any(m == "bambu_edge." + d or m.startswith("bambu_edge." + d + ".") for d in {DAEMON!r})
)
print(json.dumps({{"modules": names, "daemon": daemon}}))
"""


def test_the_protocol_library_imports_without_the_daemon() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(out.stdout)
    # The walk really covered the library (the link, its report folding, FTPS), not an empty package.
    assert {"bambu_edge.printers.bambu.link", "bambu_edge.printers.bambu.commands"} <= set(found["modules"])
    assert any(m.startswith("bambu_edge.printers.bambu.ftps") for m in found["modules"])
    assert found["daemon"] == []


def test_model_tables_load_alone() -> None:
    """The config and file readers use the model tables: importing them loads no other module of
    the library (no link, no MQTT client), because the package itself imports nothing."""
    probe = (
        "import json, sys; import bambu_edge.printers.bambu.models; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('bambu_edge'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == [
        "bambu_edge",
        "bambu_edge.printers",
        "bambu_edge.printers.bambu",
        "bambu_edge.printers.bambu.models",
    ]


MOONRAKER_PROBE = PROBE.replace("bambu_edge.printers.bambu as lib", "bambu_edge.printers.moonraker as lib")


def test_the_moonraker_library_imports_without_the_daemon() -> None:
    out = subprocess.run(
        [sys.executable, "-c", MOONRAKER_PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(out.stdout)
    assert {
        "bambu_edge.printers.moonraker.link",
        "bambu_edge.printers.moonraker.status",
        "bambu_edge.printers.moonraker.files",
        "bambu_edge.printers.moonraker.commands",
    } <= set(found["modules"])
    assert found["daemon"] == []
