"""``apt-cache policy PACKAGE`` output, read (pure: no I/O).

apt-cache's labels are translated, so it must run with ``LC_ALL=C``; its answer for a package
it does not know is empty (or an ``N:`` note), which reads as nothing installed and no candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

NONE = "(none)"


@dataclass(frozen=True, slots=True)
class Policy:
    installed: str | None  # the version dpkg has installed, None when not installed from a package
    candidate: str | None  # the version `apt upgrade` would install, None when apt knows none

    @property
    def update_available(self) -> bool:
        return self.installed is not None and self.candidate is not None and self.candidate != self.installed


def parse_policy(text: str, package: str) -> Policy:
    """The Installed/Candidate lines of ``package``'s block; a block for another package (apt
    lists every name a pattern matches) is skipped."""
    installed = candidate = None
    current: str | None = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.rstrip(":").split(":", 1)[0] if line.endswith(":") else None
            continue
        if current != package:
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if key == "Installed":
            installed = value if value and value != NONE else None
        elif key == "Candidate":
            candidate = value if value and value != NONE else None
    return Policy(installed, candidate)
