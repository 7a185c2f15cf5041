-- 0010: Klipper printers (type moonraker) added from the dashboard: Moonraker's port and, where
-- this unit is not one of its trusted clients, its API key (stored as given: the link sends it,
-- the database file is owner-only). Bambu printers leave both at their defaults.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

ALTER TABLE printers ADD COLUMN port INTEGER NOT NULL DEFAULT 7125 CHECK (port BETWEEN 1 AND 65535);
ALTER TABLE printers ADD COLUMN api_key TEXT CHECK (api_key IS NULL OR length(api_key) BETWEEN 1 AND 128);
