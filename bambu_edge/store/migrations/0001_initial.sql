-- 0001: initial schema.
-- Applied by bambu_edge.store.db.Database.migrate inside one transaction: no BEGIN/COMMIT here.
-- Times are Unix seconds (REAL), like every timestamp in the API. STRICT tables (SQLite >= 3.37)
-- make a wrongly typed value an error instead of a silently stored string.

-- Printers added from the dashboard. Printers declared in the YAML config are not stored here.
CREATE TABLE printers (
    id          TEXT PRIMARY KEY CHECK (id GLOB '[a-z0-9]*' AND NOT id GLOB '*[^a-z0-9-]*' AND length(id) <= 63),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    type        TEXT NOT NULL DEFAULT 'bambu' CHECK (type IN ('bambu', 'moonraker')),
    host        TEXT NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    serial      TEXT NOT NULL DEFAULT '',
    access_code TEXT NOT NULL DEFAULT '',
    mqtt_port   INTEGER NOT NULL DEFAULT 8883 CHECK (mqtt_port BETWEEN 1 AND 65535),
    ftps_port   INTEGER NOT NULL DEFAULT 990 CHECK (ftps_port BETWEEN 1 AND 65535),
    model       TEXT,
    camera      TEXT NOT NULL DEFAULT 'auto',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
) STRICT;

-- Names compare without case: "Admin" and "admin" are one user.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 32),
    password_hash       TEXT NOT NULL CHECK (password_hash LIKE '$argon2%'),
    role                TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_at          REAL NOT NULL,
    password_changed_at REAL NOT NULL
) STRICT;

-- API tokens and browser sessions. Only the SHA-256 of a token is kept: a copy of the database
-- (backup, stolen SD card) does not let anyone log in.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    kind         TEXT NOT NULL DEFAULT 'api' CHECK (kind IN ('api', 'session')),
    token_hash   TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64 AND NOT token_hash GLOB '*[^0-9a-f]*'),
    created_at   REAL NOT NULL,
    expires_at   REAL CHECK (expires_at IS NULL OR expires_at > created_at),
    last_used_at REAL,
    revoked_at   REAL
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id, kind);

-- Printer certificates pinned on first use (DESIGN §5). A changed certificate waits in pending_*
-- until the user accepts it. No foreign key: printers from the YAML config are pinned too.
CREATE TABLE printer_certs (
    printer_id          TEXT PRIMARY KEY,
    fingerprint         TEXT NOT NULL CHECK (length(fingerprint) = 64 AND NOT fingerprint GLOB '*[^0-9a-f]*'),
    pem                 TEXT NOT NULL,
    pinned_at           REAL NOT NULL,
    pending_fingerprint TEXT CHECK (pending_fingerprint IS NULL
                                    OR (length(pending_fingerprint) = 64 AND NOT pending_fingerprint GLOB '*[^0-9a-f]*')),
    pending_pem         TEXT,
    pending_seen_at     REAL,
    CHECK ((pending_fingerprint IS NULL) = (pending_pem IS NULL))
) STRICT;

-- One row per print. A row is written when a print starts (outcome 'running') and completed when it
-- ends. filament_json: JSON list of {type, color, grams, ...}; thumbnail: a file name in data_dir.
CREATE TABLE print_history (
    id             INTEGER PRIMARY KEY,
    printer_id     TEXT NOT NULL,
    file           TEXT,
    job            TEXT,
    plate          INTEGER CHECK (plate IS NULL OR plate >= 0),
    started_at     REAL NOT NULL,
    ended_at       REAL CHECK (ended_at IS NULL OR ended_at >= started_at),
    duration_s     REAL CHECK (duration_s IS NULL OR duration_s >= 0),
    outcome        TEXT NOT NULL DEFAULT 'running'
                   CHECK (outcome IN ('running', 'finished', 'failed', 'cancelled', 'unknown')),
    failure_reason TEXT,
    layers         INTEGER CHECK (layers IS NULL OR layers >= 0),
    total_layers   INTEGER CHECK (total_layers IS NULL OR total_layers >= 0),
    filament_json  TEXT CHECK (filament_json IS NULL OR json_valid(filament_json)),
    thumbnail      TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
) STRICT;
CREATE INDEX print_history_printer ON print_history (printer_id, started_at);
CREATE INDEX print_history_started ON print_history (started_at);
CREATE INDEX print_history_outcome ON print_history (outcome, started_at);
