"""An uploaded file's body as chunks: a raw body, or the ``file`` field of a multipart form.

Streamed, never held whole in memory (a Pi Zero has 512 MB); a broken or hostile form is a 400 in
plain words, never a 500.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web

from bambu_edge.web.errors import bad

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
MAX_FORM_FIELDS = 8
MAX_FORM_FIELD = 64 * 1024


async def file_body(request: web.Request, what: str = "file") -> tuple[str | None, AsyncIterator[bytes]]:
    """(file name from the form, body chunks). ``what`` names the file in the error messages."""
    malformed = f"the multipart form is malformed: send the {what} as field 'file'"
    if not request.content_type.startswith("multipart/"):
        return None, request.content.iter_chunked(CHUNK)
    try:
        return await _form_file(request, malformed)
    except ValueError:  # aiohttp's word for a broken form (no boundary, cut short, ...)
        raise bad(malformed) from None


async def _form_file(request: web.Request, malformed: str) -> tuple[str | None, AsyncIterator[bytes]]:
    reader = await request.multipart()
    for _ in range(MAX_FORM_FIELDS):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise bad("nested multipart bodies are not supported")
        if part.name == "file":
            # Some clients (aiohttp, urllib) percent-encode the file name; browsers send it as is.
            name = urllib.parse.unquote(part.filename) if part.filename else None
            return name, _part_chunks(part, malformed)
        if len(await part.read_chunk(MAX_FORM_FIELD + 1)) > MAX_FORM_FIELD:
            raise bad(f"form field {part.name!r} is too large")
        await part.release()
    raise bad("the form has no field 'file'")


async def _part_chunks(part: BodyPartReader, malformed: str) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(CHUNK):
            yield chunk
    except ValueError:
        raise bad(malformed) from None
