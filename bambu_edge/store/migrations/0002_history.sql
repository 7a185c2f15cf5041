-- 0002: print history, one record per print (bambu_edge/jobs/history.py writes it, jobs/tracker.py
-- decides what). 0001 created print_history, but no code wrote it; it is rebuilt here and any rows
-- are copied (outcome 'finished' becomes 'success').
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

CREATE TABLE print_history_v2 (
    id             INTEGER PRIMARY KEY,
    -- Random and unique: farm sync between units inserts records idempotently by uid.
    uid            TEXT NOT NULL UNIQUE CHECK (length(uid) = 32 AND NOT uid GLOB '*[^0-9a-f]*'),
    printer_id     TEXT NOT NULL CHECK (length(printer_id) BETWEEN 1 AND 200),
    -- Snapshots taken when the print started: the printer may be renamed or deleted later.
    printer_name   TEXT CHECK (printer_name IS NULL OR length(printer_name) <= 200),
    model          TEXT CHECK (model IS NULL OR length(model) <= 64),
    file           TEXT CHECK (file IS NULL OR length(file) <= 1024),
    job            TEXT CHECK (job IS NULL OR length(job) <= 1024),
    plate          INTEGER CHECK (plate IS NULL OR plate BETWEEN 0 AND 1000),
    started_at     REAL NOT NULL,
    ended_at       REAL CHECK (ended_at IS NULL OR ended_at >= started_at),
    duration_s     REAL CHECK (duration_s IS NULL OR duration_s >= 0),
    outcome        TEXT NOT NULL DEFAULT 'running'
                   CHECK (outcome IN ('running', 'success', 'failed', 'cancelled', 'unknown')),
    failure_reason TEXT CHECK (failure_reason IS NULL OR length(failure_reason) <= 4000),
    -- print_error as the printer shows it, e.g. 0700_8006.
    error_code     TEXT CHECK (error_code IS NULL OR (length(error_code) = 9
                               AND error_code GLOB '[0-9A-F][0-9A-F][0-9A-F][0-9A-F]_[0-9A-F][0-9A-F][0-9A-F][0-9A-F]')),
    -- HMS codes seen during the print: a JSON list of "XXXX_XXXX_XXXX_XXXX" strings.
    hms_json       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(hms_json) AND json_type(hms_json) = 'array'),
    layers         INTEGER CHECK (layers IS NULL OR layers >= 0),
    total_layers   INTEGER CHECK (total_layers IS NULL OR total_layers >= 0),
    progress       INTEGER CHECK (progress IS NULL OR progress BETWEEN 0 AND 100),
    -- JSON list of {"slot", "type", "color", "grams", "meters"}; slot is the global AMS tray index.
    filament_json  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(filament_json) AND json_type(filament_json) = 'array'),
    thumbnail      TEXT CHECK (thumbnail IS NULL OR length(thumbnail) <= 256),   -- thumbnail cache key
    queue_job_id   INTEGER,
    -- What the tracker needs to recognise the same print after a reconnect or a restart:
    state          TEXT CHECK (state IS NULL OR length(state) <= 64),   -- last gcode_state while it ran
    job_key        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(job_key) AND json_type(job_key) = 'object'),
    last_seen_at   REAL,      -- last report that showed this print running
    remaining_s    INTEGER CHECK (remaining_s IS NULL OR remaining_s >= 0),
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    CHECK (outcome <> 'running' OR ended_at IS NULL)
) STRICT;

INSERT INTO print_history_v2 (
    id, uid, printer_id, file, job, plate, started_at, ended_at, duration_s, outcome, failure_reason,
    layers, total_layers, filament_json, thumbnail, created_at, updated_at
)
SELECT id, lower(hex(randomblob(16))), printer_id, file, job, plate, started_at,
       CASE WHEN outcome = 'running' THEN NULL ELSE ended_at END,
       CASE WHEN outcome = 'running' THEN NULL ELSE duration_s END,
       CASE outcome WHEN 'finished' THEN 'success' ELSE outcome END,
       failure_reason, layers, total_layers,
       CASE WHEN json_type(filament_json) = 'array' THEN filament_json ELSE '[]' END,
       thumbnail, created_at, updated_at
FROM print_history;

DROP TABLE print_history;
ALTER TABLE print_history_v2 RENAME TO print_history;

-- The API's filters and sorts. Every index ends in the rowid (id), the tie-breaker of every sort, so
-- a page and the CSV export's keyset steps read in index order without a sort. The sort expressions
-- are never NULL, so keyset pagination can compare them.
CREATE INDEX print_history_started ON print_history (started_at);
CREATE INDEX print_history_printer ON print_history (printer_id, started_at);
-- duration_s rides along so that totals (count by outcome, print hours) read only this index; id is
-- named before it so that the index still gives the (started_at, id) order of a page.
CREATE INDEX print_history_outcome ON print_history (outcome, started_at, id, duration_s);
CREATE INDEX print_history_duration ON print_history (ifnull(duration_s, -1.0));
CREATE INDEX print_history_job ON print_history (ifnull(job, '') COLLATE NOCASE);
CREATE INDEX print_history_printer_name ON print_history (ifnull(printer_name, printer_id) COLLATE NOCASE);
-- Free-text search (LIKE '%...%') cannot seek, but it scans this small index instead of the table.
CREATE INDEX print_history_text ON print_history (job, file);
CREATE INDEX print_history_queue_job ON print_history (queue_job_id) WHERE queue_job_id IS NOT NULL;
-- A printer runs one print at a time: never two open records for it.
CREATE UNIQUE INDEX print_history_open ON print_history (printer_id) WHERE outcome = 'running';

-- The filament of ended prints, one row per slot, copied from filament_json when a record closes:
-- totals by type and colour over years of history read one small covering index instead of
-- parsing every record's JSON (which takes seconds on a Pi).
CREATE TABLE print_history_filament (
    history_id INTEGER NOT NULL REFERENCES print_history (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    slot       INTEGER,
    type       TEXT,
    color      TEXT,
    grams      REAL CHECK (grams IS NULL OR grams >= 0),
    meters     REAL CHECK (meters IS NULL OR meters >= 0),
    PRIMARY KEY (history_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX print_history_filament_kind ON print_history_filament (type, color, grams, meters);

-- Copied rows: values of the wrong type (the old schema did not check them) become NULL.
INSERT INTO print_history_filament (history_id, position, slot, type, color, grams, meters)
SELECT h.id, f.key,
       CASE WHEN json_type(f.value, '$.slot') = 'integer' THEN f.value ->> '$.slot' END,
       CASE WHEN json_type(f.value, '$.type') = 'text' THEN f.value ->> '$.type' END,
       CASE WHEN json_type(f.value, '$.color') = 'text' THEN f.value ->> '$.color' END,
       CASE WHEN json_type(f.value, '$.grams') IN ('integer', 'real') AND f.value ->> '$.grams' >= 0
            THEN f.value ->> '$.grams' END,
       CASE WHEN json_type(f.value, '$.meters') IN ('integer', 'real') AND f.value ->> '$.meters' >= 0
            THEN f.value ->> '$.meters' END
FROM print_history h, json_each(h.filament_json) f
WHERE h.outcome <> 'running' AND f.type = 'object';
