"""Merging Bambu reports (protocol/BAMBU.md section 4), within limits for untrusted input.

A delta applies to the kept report: dicts merge key by key, lists whose items are all dicts with
an ``id`` merge by id, other lists replace; keys a delta does not mention are kept. Merges are
copy-on-write: neither side is mutated and unchanged subtrees are shared, so old snapshots stay
valid and a report may be shared with its sender.

What is kept never grows past ``MAX_RAW_BYTES`` serialised: larger reports are pruned, keeping
what came first (junk appended to a real report is what goes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

# A real full report is 5-20 KB serialised (X1C with four AMS ~11 KB).
MAX_RAW_BYTES = 128 * 1024  # serialised size of the kept report, and of any one report that is kept
MAX_DEPTH = 32  # nesting kept when a report has to be pruned, and when merging
MAX_KEYS = 1024  # per dict, when pruning
MAX_ITEMS = 1024  # per list, when pruning or growing a list by id
MAX_STR = 4096  # per string, when pruning

_DUMPS_STRICT = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_MISSING = object()


def _prune(v: Any, depth: int, budget: list[int]) -> Any:
    """A plain-JSON copy of ``v`` within the limits, spending ``budget`` (about serialised bytes).

    Containers are filled in order until the budget runs out. Values JSON cannot carry exactly
    (NaN, 2**70, objects) become None.
    """
    if v is None or v is True or v is False:
        budget[0] -= 5
        return v
    if isinstance(v, str):
        budget[0] -= len(v) + 2
        return str(v) if len(v) <= MAX_STR else None
    if isinstance(v, int):
        budget[0] -= 8
        return int(v) if -(2**63) <= v < 2**64 else None
    if isinstance(v, float):
        budget[0] -= 8
        return float(v) if math.isfinite(v) else None
    if isinstance(v, Mapping):
        budget[0] -= 2
        if depth >= MAX_DEPTH:
            return None
        out: dict[str, Any] = {}
        for k, x in v.items():
            if budget[0] <= 0 or len(out) >= MAX_KEYS:
                break
            if isinstance(k, str) and len(k) <= 256:
                budget[0] -= len(k) + 4
                out[str(k)] = _prune(x, depth + 1, budget)
        return out
    if isinstance(v, list | tuple):
        budget[0] -= 2
        if depth >= MAX_DEPTH:
            return None
        items: list[Any] = []
        for x in v:
            if budget[0] <= 0 or len(items) >= MAX_ITEMS:
                break
            items.append(_prune(x, depth + 1, budget))
        return items
    budget[0] -= 5
    return None


def bounded(obj: Any, limit: int = MAX_RAW_BYTES) -> tuple[Any, int]:
    """(obj, serialised size) if obj is plain JSON within ``limit`` (checked in C), else a pruned copy."""
    try:
        size = len(orjson.dumps(obj, option=_DUMPS_STRICT))
        if size <= limit:
            return obj, size
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError):
        pass
    budget = [limit]
    pruned = _prune(obj, 0, budget)
    return pruned, max(0, limit - budget[0])


def _id_of(item: Any) -> Any:
    """The merge key of a list item, or _MISSING if the item cannot be merged by id."""
    if type(item) is dict:
        i = item.get("id", _MISSING)
        if type(i) is str or type(i) is int:
            return i
    return _MISSING


def merge(old: Any, new: Any, depth: int = 0) -> Any:
    """``old`` with delta ``new`` applied; neither is mutated (unchanged subtrees are shared)."""
    if type(new) is dict:
        if type(old) is not dict or depth >= MAX_DEPTH:
            return new
        out = old.copy()
        for k, v in new.items():
            if type(v) is dict or type(v) is list:  # scalars simply replace
                prev = old.get(k)
                if prev is not None:
                    v = merge(prev, v, depth + 1)
            out[k] = v
        return out
    if type(new) is list and type(old) is list and new and old and depth < MAX_DEPTH:
        new_ids = [_id_of(x) for x in new]
        old_ids = [_id_of(x) for x in old]
        if _MISSING in new_ids or _MISSING in old_ids:
            return new
        merged = list(old)
        index = {}
        for pos, i in enumerate(old_ids):
            index.setdefault(i, pos)
        for i, item in zip(new_ids, new, strict=True):
            pos = index.get(i)
            if pos is not None:
                merged[pos] = merge(merged[pos], item, depth + 1)
            elif len(merged) < MAX_ITEMS:
                index[i] = len(merged)
                merged.append(item)
        return merged
    return new
