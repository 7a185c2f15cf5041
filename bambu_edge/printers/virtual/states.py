"""What the virtual firmware reports about a print beyond the protocol's shared facts
(printers/bambu/protocol.py): ``stg_cur`` stage numbers (BAMBU.md section 5)."""

from __future__ import annotations

STAGE_PREHEATING, STAGE_PRINTING, STAGE_PAUSED_BY_USER = 2, 0, 16
