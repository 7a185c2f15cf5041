"""What the firmware reports about a print: ``gcode_state`` names, stage numbers, error codes."""

from __future__ import annotations

IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED = "IDLE", "PREPARE", "RUNNING", "PAUSE", "FINISH", "FAILED"
ACTIVE_STATES = (PREPARE, RUNNING, PAUSE)

# Third-party captures (not in BAMBU.md): a user's stop leaves gcode_state FAILED with print_error
# 0x0300400C "printing was cancelled"; the next job clears it.
PRINT_ERROR_CANCELLED = 50348044
STAGE_PREHEATING, STAGE_PRINTING, STAGE_PAUSED_BY_USER = 2, 0, 16  # stg_cur (BAMBU.md section 5)
