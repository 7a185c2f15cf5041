-- 0004: energy per print (issue 11): the kWh a print's smart plug counted between the start and
-- the end of the print, and its cost at energy.price_per_kwh then. NULL: not measured (no metered
-- plug, the plug unreachable, or the daemon restarted mid-print). Written by bambu_edge/power/
-- after the record has ended; the tracker's writes never touch them.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

ALTER TABLE print_history ADD COLUMN energy_kwh REAL CHECK (energy_kwh IS NULL OR energy_kwh >= 0);
ALTER TABLE print_history ADD COLUMN energy_cost REAL CHECK (energy_cost IS NULL OR energy_cost >= 0);
