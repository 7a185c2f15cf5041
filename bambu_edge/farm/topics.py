"""The farm's MQTT topics, version 1 (docs/farm.md). Every unit writes only under its own node id.

bambu-edge/v1/{node}/status                      retained, QoS 1: online, or offline (last will)
bambu-edge/v1/{node}/printers/{id}/snapshot      retained, QoS 1: the printer's whole view
bambu-edge/v1/{node}/printers/{id}/changes       retained, QoS 0: what changed since the snapshot
bambu-edge/v1/{node}/history                     QoS 1: a history record (each change of it)
bambu-edge/v1/{node}/commands                    QoS 1: command requests for node's printers
bambu-edge/v1/{node}/replies                     QoS 1: answers to the commands node sent
"""

from __future__ import annotations

from dataclasses import dataclass

from bambu_edge.config import PRINTER_ID_RE

ROOT = "bambu-edge/v1"


def status(node: str) -> str:
    return f"{ROOT}/{node}/status"


def snapshot(node: str, printer_id: str) -> str:
    return f"{ROOT}/{node}/printers/{printer_id}/snapshot"


def changes(node: str, printer_id: str) -> str:
    return f"{ROOT}/{node}/printers/{printer_id}/changes"


def history(node: str) -> str:
    return f"{ROOT}/{node}/history"


def commands(node: str) -> str:
    return f"{ROOT}/{node}/commands"


def replies(node: str) -> str:
    return f"{ROOT}/{node}/replies"


def subscriptions(node: str) -> list[tuple[str, int]]:
    """What a unit listens to: every unit's status, printers and history, and its own requests
    and replies."""
    return [
        (f"{ROOT}/+/status", 1),
        (f"{ROOT}/+/printers/+/snapshot", 1),
        (f"{ROOT}/+/printers/+/changes", 0),
        (f"{ROOT}/+/history", 1),
        (commands(node), 1),
        (replies(node), 1),
    ]


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed farm topic: ``kind`` is status, snapshot, changes, history, commands or replies."""

    node: str
    kind: str
    printer_id: str | None = None


def parse(topic: str) -> Topic | None:
    """None for anything that is not a well-formed v1 topic (ids as the config allows them)."""
    parts = topic.split("/")
    if (
        len(parts) < 4
        or parts[0] != "bambu-edge"
        or parts[1] != "v1"
        or not PRINTER_ID_RE.fullmatch(parts[2])
    ):
        return None
    node = parts[2]
    if len(parts) == 4 and parts[3] in ("status", "history", "commands", "replies"):
        return Topic(node, parts[3])
    if len(parts) == 6 and parts[3] == "printers" and parts[5] in ("snapshot", "changes"):
        if PRINTER_ID_RE.fullmatch(parts[4]):
            return Topic(node, parts[5], parts[4])
    return None
