-- 0007: the nozzle and filament the user set for a printer that reports neither (Klipper through
-- Moonraker), so the queue can match jobs to it. No foreign key: printers from the YAML config
-- are not in the printers table. Written by bambu_edge/store/materials.py.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

CREATE TABLE printer_materials (
    printer_id      TEXT PRIMARY KEY CHECK (length(printer_id) BETWEEN 1 AND 63),
    nozzle_diameter REAL CHECK (nozzle_diameter IS NULL OR nozzle_diameter BETWEEN 0.1 AND 2.0),
    filament_type   TEXT CHECK (filament_type IS NULL OR length(filament_type) BETWEEN 1 AND 32),
    filament_color  TEXT CHECK (filament_color IS NULL OR filament_color GLOB '#[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]'),
    changed_at      REAL NOT NULL
) STRICT;
