"""Files on a printer's storage (SD card or internal), whatever reaches them: the FTPS client
(printers/bambu/ftps/) and the print commands that name a file (``project_file``, ``gcode_file``).
Path rules and the errors of storage operations; pure, no I/O.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 255  # FAT/exFAT and ext4 limit for one name
MAX_PATH_BYTES = 1024
# Uploads go to a temp name beside their target and are renamed when complete; listings hide them.
TEMP_PREFIX = ".bambu-edge-"
TEMP_SUFFIX = ".part"


class PrinterFilesError(Exception):
    """A printer storage operation failed. ``str(err)`` is a plain sentence for the user; ``kind`` is
    a stable slug for the API (auth, not_found, storage_full, busy, timeout, unreachable, tls,
    tls_mismatch, bad_path, transfer, protocol); ``code`` is the FTP reply code when there was one."""

    def __init__(self, message: str, *, kind: str = "protocol", code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code


class RemotePathError(PrinterFilesError, ValueError):
    """A remote path was refused before any network traffic."""

    def __init__(self, message: str):
        super().__init__(message, kind="bad_path")


def normalize_remote_path(path: str, *, file: bool = True) -> str:
    """``path`` as an absolute, normalised printer path, or RemotePathError.

    Refuses what could escape the storage root or smuggle FTP commands: ``..``, NUL, CR/LF and other
    control characters (command injection on the control channel), backslashes (Windows-style
    separators some servers honour), over-long names. ``file=True`` also refuses the bare root.
    """
    if not isinstance(path, str):
        raise RemotePathError("remote path must be text")
    if any(c in path for c in "\0\r\n"):
        raise RemotePathError("remote path must not contain NUL or line breaks")
    if any(unicodedata.category(c) == "Cc" for c in path):
        raise RemotePathError("remote path must not contain control characters")
    if "\\" in path:
        raise RemotePathError("remote path must use '/' as separator, not '\\'")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise RemotePathError("remote path is not valid text") from None
    if size > MAX_PATH_BYTES:
        raise RemotePathError(f"remote path is longer than {MAX_PATH_BYTES} bytes")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RemotePathError("remote path must not contain '..'")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise RemotePathError(f"file name is longer than {MAX_NAME_BYTES} bytes")
    if file and not parts:
        raise RemotePathError("remote path must name a file, not the storage root")
    return "/" + "/".join(parts)
