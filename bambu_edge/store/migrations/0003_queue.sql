-- 0003: the print queue (issue 4 item 5).
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here. Times are Unix seconds.

-- A print file uploaded once and kept under data_dir/queue/files/ by its SHA-256 (the same bytes
-- uploaded twice are one file). meta_json is PrintFileMeta.to_json() as read at upload.
CREATE TABLE queue_files (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255 AND name NOT GLOB '*[/\]*'),
    kind       TEXT NOT NULL CHECK (kind IN ('3mf', 'gcode')),
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64 AND NOT sha256 GLOB '*[^0-9a-f]*'),
    md5        TEXT NOT NULL CHECK (length(md5) = 32 AND NOT md5 GLOB '*[^0-9a-f]*'),
    meta_json  TEXT NOT NULL CHECK (json_valid(meta_json)),
    created_at REAL NOT NULL
) STRICT;

-- A job: print `copies` copies of one plate of a file. target NULL = any compatible printer.
-- position orders jobs of equal priority (the user's manual order); higher priority goes first.
-- next_attempt_at: after a failed attempt, not before then (backoff). options_json: print options
-- sent with project_file (timelapse, bed_leveling, flow_cali, vibration_cali, layer_inspect, use_ams).
CREATE TABLE queue_jobs (
    id              INTEGER PRIMARY KEY,
    file_id         INTEGER NOT NULL REFERENCES queue_files (id) ON DELETE CASCADE,
    plate           INTEGER NOT NULL DEFAULT 1 CHECK (plate BETWEEN 1 AND 1000),
    copies          INTEGER NOT NULL DEFAULT 1 CHECK (copies BETWEEN 1 AND 1000),
    copies_done     INTEGER NOT NULL DEFAULT 0 CHECK (copies_done BETWEEN 0 AND copies),
    priority        INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    target          TEXT CHECK (target IS NULL OR length(target) BETWEEN 1 AND 63),
    position        INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'waiting'
                    CHECK (state IN ('waiting', 'dispatching', 'printing', 'done', 'failed', 'cancelled')),
    options_json    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options_json) AND json_type(options_json) = 'object'),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    ended_at        REAL,
    CHECK ((state IN ('done', 'failed', 'cancelled')) = (ended_at IS NOT NULL))
) STRICT;
CREATE INDEX queue_jobs_order ON queue_jobs (state, priority DESC, position);
CREATE INDEX queue_jobs_file ON queue_jobs (file_id);

-- One row per copy sent to a printer. 'uploading' -> 'starting' (project_file sent) -> 'printing'
-- -> 'done' | 'failed' | 'cancelled'. history_id: the tracker's record (print_history.id), once known.
CREATE TABLE queue_runs (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES queue_jobs (id) ON DELETE CASCADE,
    printer_id  TEXT NOT NULL CHECK (length(printer_id) BETWEEN 1 AND 63),
    state       TEXT NOT NULL DEFAULT 'uploading'
                CHECK (state IN ('uploading', 'starting', 'printing', 'done', 'failed', 'cancelled')),
    remote_path TEXT,
    subtask     TEXT,
    sequence_id TEXT,
    history_id  INTEGER,
    error       TEXT,
    started_at  REAL NOT NULL,
    ended_at    REAL CHECK (ended_at IS NULL OR ended_at >= started_at),
    CHECK ((state IN ('done', 'failed', 'cancelled')) = (ended_at IS NOT NULL))
) STRICT;
CREATE INDEX queue_runs_job ON queue_runs (job_id, started_at);
CREATE INDEX queue_runs_printer ON queue_runs (printer_id, started_at);
-- At most one copy in flight per printer.
CREATE UNIQUE INDEX queue_runs_in_flight ON queue_runs (printer_id)
    WHERE state IN ('uploading', 'starting', 'printing');

-- "Bed marked clear": after a print ends a printer takes no queued job until a user marks its bed
-- clear. A printer without a row has never been marked clear. No foreign key: printers from the
-- YAML config are not in the printers table.
CREATE TABLE printer_beds (
    printer_id TEXT PRIMARY KEY CHECK (length(printer_id) BETWEEN 1 AND 63),
    clear      INTEGER NOT NULL CHECK (clear IN (0, 1)),
    changed_at REAL NOT NULL
) STRICT;

-- Queue-wide settings: one row.
CREATE TABLE queue_settings (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    paused     INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    updated_at REAL NOT NULL
) STRICT;
INSERT INTO queue_settings (id, paused, updated_at) VALUES (1, 0, 0);
