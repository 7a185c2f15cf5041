"""The dashboard's static files, served from memory with gzip and ETags.

The whole dashboard is well under a megabyte, so it is read once at start: no disk reads per request
(the SD card is slow), each file compressed once, and browsers revalidate with If-None-Match. A
compressible file is kept only compressed (every browser takes gzip; the rare client that does not
gets it decompressed on the fly), and content types come from the table below, not from the
system's mime.types (reading that costs the daemon 0.4 MB for a dozen suffixes).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".svg", ".txt", ".webmanifest")
MAX_FILE = 2 * 1024 * 1024
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def find_web_root() -> Path | None:
    """$BAMBU_EDGE_WEB_ROOT, the source checkout's web/, or the Debian package's copy."""
    candidates = [
        os.environ.get("BAMBU_EDGE_WEB_ROOT"),
        Path(__file__).resolve().parents[2] / "web",
        "/usr/share/bambu-edge/web",
    ]
    for c in candidates:
        if c and (Path(c) / "index.html").is_file():
            return Path(c)
    return None


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes | None  # None when ``gz`` holds it
    gz: bytes | None
    etag: str
    content_type: str

    def plain(self) -> bytes:
        return self.body if self.body is not None else gzip.decompress(self.gz or b"")


class StaticFiles:
    def __init__(self, root: Path | None):
        self.root = root
        self._files: dict[str, _File] = {}
        if root is not None:
            self._load(root)

    def _load(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith(".") or path.stat().st_size > MAX_FILE:
                continue
            rel = "/" + path.relative_to(root).as_posix()
            body = path.read_bytes()
            ctype = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            gz = gzip.compress(body, 9, mtime=0) if path.suffix in COMPRESSIBLE else None
            if gz is not None and len(gz) >= len(body):
                gz = None
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            self._files[rel] = _File(None if gz is not None else body, gz, etag, ctype)
        log.debug("dashboard: %d files from %s", len(self._files), root)

    def __contains__(self, path: str) -> bool:
        return path in self._files

    def paths(self) -> list[str]:
        return list(self._files)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/":
            path = "/index.html"
        f = self._files.get(path)
        if f is None:
            if self.root is None and path == "/index.html":
                return web.Response(
                    text="bambu-edge: the dashboard files are not installed; the API is at /api/.",
                    content_type="text/plain",
                    status=503,
                )
            raise web.HTTPNotFound()
        # index.html must always be revalidated; the rest too, cheaply, because names carry no hash.
        headers = {"ETag": f.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if request.headers.get("If-None-Match") == f.etag:
            return web.Response(status=304, headers=headers)
        if f.gz is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = f.gz
            headers["Content-Encoding"] = "gzip"
        else:
            body = f.plain()
        text_like = f.content_type.startswith("text/") or f.content_type.endswith(("json", "+xml", "svg+xml"))
        return web.Response(
            body=body, headers=headers, content_type=f.content_type, charset="utf-8" if text_like else None
        )
