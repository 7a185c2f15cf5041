-- 0007: farm sync (issue 13, bambu_edge/farm/). A history record now says which unit recorded it:
-- NULL for this unit's own records (whatever its node id is or becomes), else the id of the unit
-- that sent it over the farm broker. Records are matched by uid, which 0002 made unique across the
-- table (random 128 bits), so (node, uid) is unique too; a record received again is an update of
-- the same row, never a second row (farm/history_sync.py), and a remote unit can never overwrite a
-- local record or another unit's (the upsert's WHERE compares node).
-- farm_sync keeps how far this unit's own records have been acknowledged by the broker (QoS 1), so
-- after a restart or a partition only the records changed since are sent again.
-- Applied inside one transaction by Database.migrate: no BEGIN/COMMIT here.

ALTER TABLE print_history ADD COLUMN node TEXT
    CHECK (node IS NULL OR (length(node) BETWEEN 1 AND 63 AND NOT node GLOB '*[^a-z0-9-]*'));

CREATE TABLE farm_sync (
    key   TEXT PRIMARY KEY,
    value REAL NOT NULL
) STRICT, WITHOUT ROWID;
