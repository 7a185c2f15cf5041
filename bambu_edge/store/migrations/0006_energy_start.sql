-- 0006: the smart plug's energy counter (Wh) when a running print's record opened, so a daemon
-- restarted mid-print still measures the whole print. Written by bambu_edge/power/ when the
-- record opens, taken (deleted) when it ends; a row goes with its record.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

CREATE TABLE power_energy_start (
    record_uid  TEXT PRIMARY KEY REFERENCES print_history (uid) ON DELETE CASCADE,
    start_wh    REAL NOT NULL CHECK (start_wh >= 0),
    read_at     REAL NOT NULL
) WITHOUT ROWID;
