"""Facts of the Bambu LAN protocol that several readers need (BAMBU.md §4-§6); pure data.

Defined once here so the state folding, the print tracker, the dispatcher and the virtual printer
cannot disagree about them.
"""

from __future__ import annotations

# gcode_state values (BAMBU.md §4). Unknown values pass through everywhere.
IDLE, PREPARE, RUNNING, PAUSE, FINISH, FAILED, SLICING = (
    "IDLE",
    "PREPARE",
    "RUNNING",
    "PAUSE",
    "FINISH",
    "FAILED",
    "SLICING",
)
ACTIVE_PRINT_STATES = frozenset({PREPARE, RUNNING, PAUSE})  # a print is under way
PRINTING_STATES = frozenset({RUNNING, PAUSE})  # progress, layers and trays describe this print
TERMINAL_STATES = frozenset({FINISH, FAILED})  # the last print ended; stays shown until the next
NO_JOB_STATES = frozenset({IDLE, FINISH, FAILED})  # no print is running

# print_error with gcode_state FAILED: the user stopped the print (0x0300400C).
PRINT_ERROR_CANCELLED = 0x0300400C

# AMS trays (BAMBU.md §6): units 0-3 hold four slots each; AMS HT units (ids 128-135) hold one.
AMS_HT_FIRST_ID = 128
EXTERNAL_TRAY = 254  # ams.tray_now when printing from the external spool (vt_tray)


def tray_index(unit: int, slot: int) -> int:
    """The global tray number of ``slot`` in AMS ``unit`` (what ``tray_now`` and print commands
    use): 4 * unit + slot for an AMS, the unit id itself for an AMS HT."""
    return unit + slot if unit >= AMS_HT_FIRST_ID else unit * 4 + slot
