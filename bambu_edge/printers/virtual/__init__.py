"""A virtual Bambu printer: speaks the real LAN protocol (protocol/BAMBU.md sections 3-6) on an MQTT
broker, for the demo, the tests and the benches.

One concept per module: ``profiles`` (models, serials, captured reports), ``physics`` (heaters, a
print's progress), ``clock`` (simulated time, held and driven by tests), ``firmware`` (commands and
the print state machine), ``storage`` (the print files commands name), ``reports`` (deltas),
``transport`` (the MQTT session), ``printer`` (all of it as one printer), ``cli``.
"""

from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES, PRINT_ERROR_CANCELLED
from bambu_edge.printers.virtual.cli import virtual_printer_main
from bambu_edge.printers.virtual.firmware import (
    SPEED_MAGNITUDES,
    VERIFY_FAILED_ERR_CODE,
    VERIFY_FAILED_REASON,
    Firmware,
)
from bambu_edge.printers.virtual.physics import Heater, PrintJob
from bambu_edge.printers.virtual.printer import DEMO_JOBS, VirtualPrinter
from bambu_edge.printers.virtual.profiles import (
    PROFILES,
    VIRTUAL_MODELS,
    Profile,
    captured_report,
    initial_report,
    make_serial,
    profile_for,
    serial_prefix,
    version_reply,
)
from bambu_edge.printers.virtual.reports import diff_report
from bambu_edge.printers.virtual.storage import (
    plate_from_param,
    resolve_storage_file,
    storage_path_from_gcode_param,
    storage_path_from_url,
)

__all__ = [
    "ACTIVE_PRINT_STATES",
    "DEMO_JOBS",
    "PRINT_ERROR_CANCELLED",
    "PROFILES",
    "SPEED_MAGNITUDES",
    "VERIFY_FAILED_ERR_CODE",
    "VERIFY_FAILED_REASON",
    "VIRTUAL_MODELS",
    "Firmware",
    "Heater",
    "PrintJob",
    "Profile",
    "VirtualPrinter",
    "captured_report",
    "diff_report",
    "initial_report",
    "make_serial",
    "plate_from_param",
    "profile_for",
    "resolve_storage_file",
    "serial_prefix",
    "storage_path_from_gcode_param",
    "storage_path_from_url",
    "version_reply",
    "virtual_printer_main",
]
