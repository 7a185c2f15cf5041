"""A Klipper printer's G-code files through Moonraker's HTTP file API (the ``gcodes`` root):
list (``/server/files/directory``), upload (``POST /server/files/upload``, multipart, streamed),
download, delete, metadata and thumbnails. The same interface as the Bambu printer's FTPS storage
(``list``, ``upload``, ``upload_stream``, ``open_download``, ``delete``, ``timelapses``), so the
file browser and the queue use either; errors are ``PrinterFilesError`` with Moonraker's own
message in plain words.

Paths are absolute printer paths as in the file browser (``/cube.gcode``, ``/parts/a.gcode``),
relative to the gcodes root.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import aiohttp

from bambu_edge.printers.bambu.ftps.listing import RemoteFile
from bambu_edge.printers.bambu.storage import PrinterFilesError, normalize_remote_path
from bambu_edge.printers.moonraker.records import largest_thumbnail
from bambu_edge.printers.values import integer, num, text

Progress = Callable[[int, int], None]
ROOT = "gcodes"
CHUNK = 64 * 1024
MAX_THUMBNAIL = 4 * 1024 * 1024


def _kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 400:
        return "bad_path"
    return "protocol"


async def _error(resp: aiohttp.ClientResponse, what: str) -> PrinterFilesError:
    """Moonraker's error body: {"error": {"code", "message"}}; its message, in plain words."""
    message = None
    try:
        body = await resp.json(content_type=None)
        err = body.get("error") if type(body) is dict else None
        message = text(err.get("message"), 500) if type(err) is dict else None
    except (aiohttp.ClientError, ValueError):
        pass
    return PrinterFilesError(
        f"{what} failed: {message or resp.reason or resp.status}", kind=_kind(resp.status)
    )


class RemoteDownload:
    """A download under way: ``size`` (None if not told), the bytes by ``async for``; ``aclose``."""

    def __init__(self, resp: aiohttp.ClientResponse, progress: Progress | None):
        self._resp = resp
        self._progress = progress
        self.size: int | None = resp.content_length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        done = 0
        try:
            async for chunk in self._resp.content.iter_chunked(CHUNK):
                done += len(chunk)
                if self._progress:
                    self._progress(done, self.size or 0)
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as e:
            raise PrinterFilesError(f"the download broke off: {e}", kind="transfer") from None

    async def aclose(self) -> None:
        self._resp.release()


class MoonrakerFiles:
    def __init__(
        self,
        base_url: str,
        session: Callable[[], aiohttp.ClientSession],
        headers: Callable[[], dict[str, str]],
        timeout: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._headers = headers
        self.timeout = timeout

    def __repr__(self) -> str:  # the API key never goes into logs
        return f"MoonrakerFiles({self.base_url})"

    def _url(self, route: str, **query: str) -> str:
        q = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url}{route}{q}"

    @staticmethod
    def _relative(path: str, *, file: bool = True) -> str:
        return normalize_remote_path(path, file=file).lstrip("/")

    async def _request(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                async with self._session().request(method, url, headers=self._headers(), **kwargs) as resp:
                    if resp.status >= 400:
                        raise await _error(resp, what)
                    return await resp.json(content_type=None)
        except PrinterFilesError:
            raise
        except TimeoutError:
            raise PrinterFilesError(f"{what}: no answer from Moonraker (timed out)", kind="timeout") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise PrinterFilesError(
                f"{what}: Moonraker cannot be reached ({e})", kind="unreachable"
            ) from None

    async def list(self, path: str = "/") -> builtins.list[RemoteFile]:
        folder = normalize_remote_path(path, file=False)
        rel = folder.strip("/")
        body = await self._request(
            "GET",
            self._url("/server/files/directory", path=f"{ROOT}/{rel}" if rel else ROOT),
            "listing files",
        )
        return parse_directory(body.get("result") if type(body) is dict else None, folder)

    async def metadata(self, filename: str) -> dict[str, Any]:
        body = await self._request(
            "GET", self._url("/server/files/metadata", filename=self._relative(filename)), "reading metadata"
        )
        result = body.get("result") if type(body) is dict else None
        return result if type(result) is dict else {}

    async def upload(
        self, local_path: str | os.PathLike[str], remote_path: str, progress: Progress | None = None
    ) -> None:
        size = os.stat(local_path).st_size

        async def chunks() -> AsyncIterator[bytes]:
            with open(local_path, "rb") as f:  # noqa: ASYNC230 - 64 KB reads from the local SD card
                while data := f.read(CHUNK):
                    yield data

        await self.upload_stream(remote_path, chunks(), progress, size=size)

    async def upload_stream(
        self,
        remote_path: str,
        chunks: AsyncIterable[bytes],
        progress: Progress | None = None,
        size: int | None = None,
    ) -> tuple[str, int]:
        """Stream ``chunks`` to ``remote_path``; returns the stored path and the bytes sent."""
        rel = self._relative(remote_path)
        folder, _, name = rel.rpartition("/")
        sent = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal sent
            async for chunk in chunks:
                sent += len(chunk)
                if progress:
                    progress(sent, size or 0)
                yield chunk

        with aiohttp.MultipartWriter("form-data") as form:
            part = form.append(aiohttp.payload.AsyncIterablePayload(counted()))
            part.set_content_disposition("form-data", name="file", filename=name)
            form.append(ROOT).set_content_disposition("form-data", name="root")
            if folder:
                form.append(folder).set_content_disposition("form-data", name="path")
        try:
            async with self._session().post(
                self._url("/server/files/upload"), data=form, headers=self._headers()
            ) as resp:
                if resp.status >= 400:
                    raise await _error(resp, "the upload")
                body = await resp.json(content_type=None)
        except PrinterFilesError:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as e:
            if isinstance(e, PrinterFilesError):
                raise
            raise PrinterFilesError(f"the upload broke off: {e}", kind="transfer") from None
        item = body.get("item") if type(body) is dict else None
        stored = text(item.get("path")) if type(item) is dict else None
        return "/" + (stored or rel), sent

    async def open_download(self, remote_path: str, progress: Progress | None = None) -> RemoteDownload:
        rel = self._relative(remote_path)
        url = f"{self.base_url}/server/files/{ROOT}/{urllib.parse.quote(rel)}"
        try:
            resp = await self._session().get(url, headers=self._headers())
        except (aiohttp.ClientError, OSError) as e:
            raise PrinterFilesError(
                f"downloading: Moonraker cannot be reached ({e})", kind="unreachable"
            ) from None
        if resp.status >= 400:
            err = await _error(resp, "the download")
            resp.release()
            raise err
        return RemoteDownload(resp, progress)

    async def read(self, remote_path: str, limit: int = MAX_THUMBNAIL) -> bytes:
        """A small file (a thumbnail) whole; PrinterFilesError past ``limit`` bytes."""
        download = await self.open_download(remote_path)
        data = bytearray()
        try:
            async for chunk in download:
                data += chunk
                if len(data) > limit:
                    raise PrinterFilesError(f"{remote_path} is larger than {limit} bytes", kind="transfer")
        finally:
            await download.aclose()
        return bytes(data)

    async def thumbnail(self, filename: str) -> bytes | None:
        """The largest thumbnail of a G-code file, from its metadata; None if it has none."""
        meta = await self.metadata(filename)
        rel = largest_thumbnail(meta, self._relative(filename))
        return None if rel is None else await self.read("/" + rel)

    async def delete(self, remote_path: str) -> None:
        rel = self._relative(remote_path)
        await self._request(
            "DELETE", f"{self.base_url}/server/files/{ROOT}/{urllib.parse.quote(rel)}", "deleting the file"
        )

    async def timelapses(self) -> builtins.list[RemoteFile]:
        return []  # Moonraker has no timelapse folder of its own (a plugin's, if any)


def parse_directory(result: Any, folder: str) -> list[RemoteFile]:
    """``/server/files/directory``'s ``dirs`` and ``files`` as file browser entries."""
    if type(result) is not dict:
        return []
    base = folder.rstrip("/")
    out: list[RemoteFile] = []
    for key, name_key, is_dir in (("dirs", "dirname", True), ("files", "filename", False)):
        items = result.get(key)
        for item in items[:5000] if type(items) is list else ():
            if type(item) is not dict:
                continue
            name = text(item.get(name_key), 255)
            if not name or "/" in name or name in (".", "..") or name.startswith("."):
                continue
            out.append(
                RemoteFile(
                    name=name,
                    path=f"{base}/{name}",
                    size=None if is_dir else integer(item.get("size"), 0),
                    modified=num(item.get("modified"), 0.0),
                    is_dir=is_dir,
                )
            )
    return out
