"""Load the captured Bambu payloads in the shared fixture set (see SOURCES.md next to them).

The files are kept as their sources stored them, so loading is tolerant: ``.jsonc`` files have
``//`` comments, ``p1s_pushall_finish_redacted.jsonish.txt`` has bare redaction tokens (``XXXX``)
where numbers were, and ``*_contents.json`` / ``h2d_delta_*`` files hold only the contents of the
``print`` (or ``info``) object. ``load_fixture`` returns each as the MQTT message it came from.

Where the files are: ``$BAMBU_EDGE_FIXTURES``, else ``../shared/fixtures/bambu`` next to the
repository, else the copy packaged in ``bambu_edge/printers/bambu/data/fixtures`` (the virtual
printer publishes these from an installed package).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

FIXTURES_ENV = "BAMBU_EDGE_FIXTURES"
PACKAGED_DIR = Path(__file__).resolve().parent / "data" / "fixtures"
REPO_SHARED_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "bambu"
JSON_SUFFIXES = (".jsonish.txt", ".jsonc", ".json")

# One left-to-right scan: strings are kept as they are (a "//" inside a URL is not a comment), comments
# are dropped, the authors' redaction tokens outside strings become null.
_TOLERANT = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|\*\*REDACTED\*\*|\[REDACTED\]|\bX{2,}\b')


def fixtures_dir() -> Path:
    env = os.environ.get(FIXTURES_ENV)
    if env:
        return Path(env)
    if REPO_SHARED_DIR.is_dir():
        return REPO_SHARED_DIR
    return PACKAGED_DIR


def fixture_names() -> list[str]:
    """File names of every JSON-like fixture (everything ``load_fixture`` reads)."""
    directory = fixtures_dir()
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.name.endswith(JSON_SUFFIXES))


def _path(name: str) -> Path:
    directory = fixtures_dir()
    if name.endswith((*JSON_SUFFIXES, ".txt", ".md")):
        return directory / name
    for suffix in JSON_SUFFIXES:  # a bare stem such as "x1c_pushall_finish_multi_ams"
        if (directory / (name + suffix)).is_file():
            return directory / (name + suffix)
    return directory / name


def read_fixture_text(name: str) -> str:
    """A fixture as text (for the SSDP packet and other non-JSON captures)."""
    return _path(name).read_text(encoding="utf-8")


def tolerant_json(text: str) -> Any:
    """Parse JSON that may carry ``//`` comments and bare redaction tokens."""

    def fix(m: re.Match[str]) -> str:
        token = m.group(0)
        if token.startswith('"'):
            return token
        return "" if token.startswith("//") else "null"

    return orjson.loads(_TOLERANT.sub(fix, text))


def load_fixture(name: str) -> dict[str, Any]:
    """One fixture as the MQTT message it was (``{"print": ...}``, ``{"info": ...}``, ...)."""
    path = _path(name)
    text = path.read_text(encoding="utf-8")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = tolerant_json(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: not a JSON object")
    fname = path.name
    if fname.endswith("_contents.json"):
        return {"info" if "get_version" in fname else "print": data}
    if fname.startswith("h2d_delta_"):
        return {"print": data}
    return data
