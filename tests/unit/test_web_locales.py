"""The dashboard's two languages stay complete: English and Norwegian bokmål have the same keys
with the same {placeholders}, and every literal key the code asks for exists (a missing key would
show the raw key to the user)."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web" / "js"
ENTRY = re.compile(r"^\s*'([^']+)':\s*'((?:[^'\\]|\\.)*)',?\s*$", re.M)
CALL = re.compile(r"\bt(?:Maybe)?\('([a-z][a-zA-Z0-9_.\-]*)'")


def _dict(lang: str) -> dict[str, str]:
    return dict(ENTRY.findall((WEB / "locales" / f"{lang}.js").read_text(encoding="utf-8")))


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    en, nb = _dict("en"), _dict("nb")
    assert len(en) > 400
    assert sorted(set(en) ^ set(nb)) == []
    for key, text in en.items():
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", nb[key])), key


def test_every_key_the_code_uses_exists() -> None:
    en = _dict("en")
    missing = set()
    for path in WEB.rglob("*.js"):
        if "locales" in path.parts or path.name == "i18n.js":
            continue
        for key in CALL.findall(path.read_text(encoding="utf-8")):
            # t('x', {count}) picks x.one / x.other
            if key not in en and f"{key}.other" not in en:
                missing.add(f"{path.name}: {key}")
    assert sorted(missing) == []
