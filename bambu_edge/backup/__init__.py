"""Backup and restore: one archive (config, database, certificates and pins, queue files) with a
manifest; ``bambu-edge backup FILE`` / ``restore FILE``, the dashboard's download and upload, and a
backup written to a USB stick."""
