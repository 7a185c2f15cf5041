"""Printer storage over implicit FTPS (port 990) with TLS session reuse on the data channel.

Bambu printers (like vsftpd with ``require_ssl_reuse=YES``) refuse a data connection whose TLS
session is not the control connection's. asyncio cannot resume a TLS session, so aioftp cannot
talk to them; the standard library's ftplib can, and it runs in a worker thread.
See docs/design-notes.md "Printer files over FTPS".

- ``transport``: ftplib over implicit TLS with session reuse (``ImplicitFTPS``, ``SocketGuard``);
- ``listing``: MLSD / LIST lines into ``RemoteFile``s;
- ``errors``: ftplib/ssl/socket failures in plain words;
- ``files``: ``PrinterFiles``, the async API (list, upload, download, streams, delete, timelapses).

Path rules and the error base class are shared with the print commands: printers/bambu/storage.py.
The names below are the package's public API.
"""

from bambu_edge.printers.bambu.ftps.errors import PrinterTLSError, UploadSourceError
from bambu_edge.printers.bambu.ftps.files import PrinterFiles, RemoteDownload
from bambu_edge.printers.bambu.ftps.listing import RemoteFile
from bambu_edge.printers.bambu.storage import PrinterFilesError, RemotePathError

__all__ = [
    "PrinterFiles",
    "PrinterFilesError",
    "PrinterTLSError",
    "RemoteDownload",
    "RemoteFile",
    "RemotePathError",
    "UploadSourceError",
]
