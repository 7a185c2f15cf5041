"""Who may command a printer from another unit (pure).

Users are per unit: each unit has its own users and tokens, nothing about them crosses the broker
but a caller's name and role. The owning unit trusts the farm broker's authentication for which
unit is asking (each unit logs in to the broker as itself; the broker's ACL keeps a unit to its own
topics, docs/farm.md), trusts that unit's word for who its user is, and applies its own rules to
that role, the same rules as for its own users: any signed-in role may send the dashboard's
printer commands. A role it does not know is refused."""

from __future__ import annotations

from bambu_edge.store.users import ROLES
from bambu_edge.web.api_printers import ACTIONS


def refusal(role: object, action: object) -> str | None:
    """None if a user with ``role`` may send ``action``; else why not, in plain words."""
    if role not in ROLES:
        return f"role {role!r} is not known on this unit"
    if action not in ACTIONS:
        return f"{action!r} is not a printer command"
    return None
