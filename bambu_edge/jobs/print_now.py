"""Print a file already on a printer's storage (the file browser's "Print"): the 3MF is read once
(fetched over FTPS to a temp file) to match its filaments to what the printer has loaded, and what
it says (grams, plate picture) is announced to the history service with the print, so the record
is labelled by that announcement and the file is not read a second time for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bambu_edge.files.meta import PrintFileMeta
from bambu_edge.files.safezip import ArchiveError
from bambu_edge.files.thumbnails import ThumbnailCache, ThumbnailError, key_for
from bambu_edge.jobs import dispatch
from bambu_edge.jobs.dispatch import FilamentMatch, PrinterSnapshot
from bambu_edge.jobs.errors import QueueError
from bambu_edge.jobs.library import threemf
from bambu_edge.jobs.records import ExpectedPrint
from bambu_edge.jobs.run import job_name, planned_filament
from bambu_edge.printers.bambu import commands
from bambu_edge.printers.bambu.protocol import ACTIVE_PRINT_STATES
from bambu_edge.printers.base import CommandError, PrinterUpdate

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            h.update(chunk)
    return h.hexdigest()


class PrintNow:
    def __init__(
        self,
        manager: Any,
        history: Any,
        thumbnails: ThumbnailCache | None,
        *,
        temp_path: Callable[[], Path],
        last_update: Callable[[str], PrinterUpdate | None],
    ):
        self.manager = manager
        self.history = history
        self.thumbnails = thumbnails
        self.temp_path = temp_path
        self.last_update = last_update

    async def print_now(
        self,
        printer_id: str,
        path: str,
        *,
        plate: int = 1,
        options: Mapping[str, Any] | None = None,
        ams_mapping: list[int] | None = None,
    ) -> dict[str, Any]:
        """Start a file on the printer's storage. Without an ``ams_mapping`` a 3MF is read and its
        filaments matched to what the printer has loaded."""
        link = self.manager.get(printer_id)
        if link is None:
            raise QueueError(404, "not_found", "No such printer.")
        update = self.last_update(printer_id)
        view: Mapping[str, Any] = update.view if update is not None else {"id": printer_id}
        name = view.get("name") or printer_id
        if (view.get("link") or {}).get("state") != "connected":
            raise QueueError(409, "offline", f"{name} is not connected.")
        state = (view.get("print") or {}).get("state")
        if state in ACTIVE_PRINT_STATES:
            raise QueueError(409, "busy", f"{name} is busy ({state}).")
        try:
            remote = commands.storage_path(path)
        except CommandError as e:
            raise QueueError(400, "bad_request", e.message) from None
        params: dict[str, Any] = {"path": remote}
        opts = dict(options or {})
        expected: ExpectedPrint | None = None
        if remote.lower().endswith(".3mf"):
            if ams_mapping is None:
                match, thumbnail = await self._match_remote(
                    link, remote, plate, view, bool(opts.get("use_ams", True))
                )
                ams_mapping = dispatch.shape_ams_mapping(match.ams_mapping)
                opts["use_ams"] = match.use_ams
                job = job_name(remote)
                params["subtask_name"] = job
                # What the file said, for the history record: it need not be read again.
                expected = ExpectedPrint(
                    job=job,
                    file=remote,
                    plate=plate,
                    filament=planned_filament(match.sources),
                    thumbnail=thumbnail,
                )
            params.update(plate=plate, options=opts, ams_mapping=ams_mapping)
        try:
            seq = await link.send_command(commands.PRINT_ACTION, params)
        except CommandError as e:
            raise QueueError(409 if e.code == "offline" else 400, e.code, e.message) from None
        log.info("printer %s: print of %s requested (sequence_id %s)", printer_id, remote, seq)
        if expected is not None and self.history is not None:
            try:
                self.history.expect(printer_id, expected)
            except Exception:
                log.exception(
                    "printer %s: the history service did not take the print's announcement", printer_id
                )
        return {"sequence_id": seq, "ams_mapping": ams_mapping}

    async def _match_remote(
        self, link: Any, remote: str, plate: int, view: Mapping[str, Any], use_ams: bool
    ) -> tuple[FilamentMatch, str | None]:
        """The trays for the file's filaments, and its plate picture's key in the thumbnail cache."""
        files = getattr(link, "files", None)
        if files is None:
            raise QueueError(400, "bad_request", "This printer's files cannot be read; give 'ams_mapping'.")
        temp = self.temp_path()
        try:
            try:
                await files.download(remote, temp)
            except FileNotFoundError as e:
                raise QueueError(500, "internal", str(e)) from None
            except Exception as e:  # PrinterFilesError: plain words and a kind
                status = 404 if getattr(e, "kind", None) == "not_found" else 502
                raise QueueError(
                    status, getattr(e, "kind", "storage"), f"Could not read {remote}: {e}"
                ) from None
            try:
                meta = await asyncio.to_thread(threemf().read_3mf, temp, geometry=False)
            except ArchiveError as e:
                raise QueueError(400, e.code, f"{remote}: {e}") from None
            match = self._match(meta, remote, plate, view, use_ams)
            thumbnail = await self._thumbnail(temp, plate)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)
        return match, thumbnail

    @staticmethod
    def _match(
        meta: PrintFileMeta, remote: str, plate: int, view: Mapping[str, Any], use_ams: bool
    ) -> FilamentMatch:
        problem = dispatch.plate_problem(meta, plate)
        if problem:
            raise QueueError(400, "bad_request", f"{remote}: {problem}.")
        snap = PrinterSnapshot.from_view(view, bed_clear=True)
        incompatible = dispatch.compatibility(meta, plate, snap)
        if incompatible:
            raise QueueError(409, "incompatible", f"{snap.name}: {incompatible}.")
        match = dispatch.match_filaments(dispatch.plate_filaments(meta, plate), snap, use_ams)
        if isinstance(match, str):
            raise QueueError(409, "filament", f"{snap.name}: {match}.")
        return match

    async def _thumbnail(self, temp: Path, plate: int) -> str | None:
        """The plate's picture into the shared cache (keyed like the history service's reader)."""
        if self.thumbnails is None:
            return None
        cache = self.thumbnails

        def put() -> str | None:
            key = key_for(_sha256(temp), plate)
            return key if cache.ensure(key, lambda: threemf().read_thumbnail(temp, plate)) else None

        try:
            return await asyncio.to_thread(put)
        except (ArchiveError, OSError, ThumbnailError) as e:
            log.info("no thumbnail for %s plate %d: %s", temp.name, plate, e)
            return None
