"""The report object as a subscriber merges it: deltas between two reports, and applying one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def _id_list(items: Any) -> list[Any] | None:
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        return None
    return [i["id"] for i in items]


def diff_report(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Keys of ``new`` whose values differ from ``old``, recursively. Lists of objects with the same
    ``id`` sequence are diffed per item as ``{"id": ..., changed keys}`` (BAMBU.md section 4); other
    lists are sent whole."""
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            out[key] = value
            continue
        before = old[key]
        if before == value and type(before) is type(value):
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            sub = diff_report(before, value)
            if sub:
                out[key] = sub
        elif (ids := _id_list(value)) is not None and ids == _id_list(before):
            items = []
            for b, v in zip(before, value, strict=True):
                sub = diff_report(b, v)
                if sub:
                    items.append({"id": v["id"], **sub})
            out[key] = items
        else:
            out[key] = value
    return out


def deep_update(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Apply a delta the way a client merges it: dicts key by key, ``id``-keyed lists by item."""
    for key, value in changes.items():
        before = target.get(key)
        if isinstance(before, dict) and isinstance(value, dict):
            deep_update(before, value)
        elif _id_list(before) is not None and _id_list(value) is not None:
            by_id = {item["id"]: item for item in before}
            for item in value:
                if item["id"] in by_id:
                    deep_update(by_id[item["id"]], item)
                else:
                    before.append(copy(item))
        else:
            target[key] = copy(value) if isinstance(value, dict | list) else value
