"""What went wrong with an FTPS session, in words for the user (``PrinterFilesError`` and its kinds)."""

from __future__ import annotations

import ftplib
import ssl
import unicodedata

from bambu_edge.printers.bambu.storage import PrinterFilesError


class PrinterTLSError(PrinterFilesError):
    """The printer's certificate is not the trusted one (same trust as the MQTT link)."""

    def __init__(self, message: str):
        super().__init__(message, kind="tls_mismatch")


class UploadSourceError(PrinterFilesError):
    """The data being uploaded stopped coming (the browser went away, stalled, or sent too much)."""

    def __init__(self, message: str):
        super().__init__(message, kind="source")


def reply_code(exc: ftplib.Error) -> tuple[int | None, str]:
    text = str(exc.args[0]) if exc.args else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else ""
    code = int(first[:3]) if first[:3].isdigit() else None
    # Server text is untrusted: keep it short and printable.
    clean = "".join(c for c in first[4:] if unicodedata.category(c) != "Cc")[:120].strip()
    return code, clean


def explain(exc: BaseException, *, op: str, path: str, host: str, port: int) -> PrinterFilesError:
    """Turn ftplib/ssl/socket errors into a PrinterFilesError with a plain message."""
    if isinstance(exc, PrinterFilesError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "verification failed"
        return PrinterTLSError(f"printer certificate is not the trusted one ({detail}); FTPS refused")
    if isinstance(exc, ftplib.Error):
        code, text = reply_code(exc)
        what = f"{op} {path}"
        if code == 530:
            return PrinterFilesError("access code rejected by the printer", kind="auth", code=code)
        if code == 421:
            return PrinterFilesError(
                "printer refused the FTP session (too many connections?)", kind="busy", code=code
            )
        if code in (450, 550):
            return PrinterFilesError(
                f"{what}: not found or not accessible on the printer", kind="not_found", code=code
            )
        if code in (452, 552):
            return PrinterFilesError(f"{what}: printer storage is full", kind="storage_full", code=code)
        if code == 553:
            return PrinterFilesError(
                f"{what}: the printer does not accept this file name", kind="bad_path", code=code
            )
        if code == 522:
            return PrinterFilesError(
                f"{what}: printer refused the data connection's TLS session", kind="tls", code=code
            )
        if code in (425, 426):
            return PrinterFilesError(
                f"{what}: the data connection failed or was cut", kind="transfer", code=code
            )
        if code in (500, 502, 504):
            return PrinterFilesError(f"{what}: the printer does not support this FTP command", code=code)
        return PrinterFilesError(f"{what}: printer FTP error {code or '?'} {text}".rstrip(), code=code)
    if isinstance(exc, TimeoutError):
        return PrinterFilesError(f"printer {host}:{port} did not answer in time", kind="timeout")
    if isinstance(exc, ssl.SSLError):
        return PrinterFilesError(f"TLS failure talking to the printer: {exc.reason or exc}", kind="tls")
    if isinstance(exc, ConnectionRefusedError):
        return PrinterFilesError(f"printer {host}:{port} refused the FTPS connection", kind="unreachable")
    if isinstance(exc, EOFError | ConnectionResetError | BrokenPipeError):
        return PrinterFilesError(f"{op} {path}: the printer closed the connection", kind="transfer")
    if isinstance(exc, OSError):
        return PrinterFilesError(
            f"cannot reach printer {host}:{port}: {exc.strerror or exc}", kind="unreachable"
        )
    return PrinterFilesError(f"{op} {path}: {exc}")
