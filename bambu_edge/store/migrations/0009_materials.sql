-- 0009: the nozzle and filament the user set in the dashboard for a printer that reports neither
-- (a Klipper printer: no AMS, no nozzle in its status), which the queue matches a slice against
-- (bambu_edge/store/materials.py, PUT /api/printers/{id}/materials). One row per printer id; a
-- NULL field is "not set". The colour is stored as #RRGGBBAA.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

CREATE TABLE printer_materials (
    printer_id      TEXT PRIMARY KEY CHECK (length(printer_id) BETWEEN 1 AND 63),
    nozzle_diameter REAL CHECK (nozzle_diameter IS NULL OR nozzle_diameter BETWEEN 0.1 AND 2.0),
    filament_type   TEXT CHECK (filament_type IS NULL OR length(filament_type) BETWEEN 1 AND 32),
    filament_color  TEXT CHECK (filament_color IS NULL OR length(filament_color) = 9),
    changed_at      REAL NOT NULL
) STRICT;
