"""Updates: the installed package version and whether apt has a newer one (GET /api/version).

Upgrading itself is ``apt upgrade``: bambu-edge only reads what apt already knows (no network
calls of its own, no updater of its own)."""
