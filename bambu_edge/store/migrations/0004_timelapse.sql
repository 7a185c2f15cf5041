-- 0004: the timelapse the camera component recorded for a print (camera/timelapse.py): the MP4's
-- file name (the record's uid + ".mp4") under <data_dir>/timelapses, set once the print has ended
-- and the video is encoded. Applied inside one transaction by Database.migrate: no BEGIN/COMMIT.

ALTER TABLE print_history ADD COLUMN timelapse TEXT
    CHECK (timelapse IS NULL OR (length(timelapse) = 36 AND timelapse GLOB '*.mp4'
                                 AND NOT substr(timelapse, 1, 32) GLOB '*[^0-9a-f]*'));
