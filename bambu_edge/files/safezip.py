"""Reading untrusted ZIP archives (a 3MF file is one) without trusting anything they say.

What a hostile or broken archive could do, and what stops it here:

- **Zip bombs.** Every entry's declared sizes are checked against the limits *before* anything is
  decompressed: the total uncompressed size, the compression ratio (deflate tops out near 1032:1;
  real 3MF parts stay far below ``Limits.max_ratio``), overlapping entries (the "better zip bomb" reuses
  one compressed stream for many entries). While reading, the bytes that come out are counted and
  reading stops at the limit, whatever the headers claimed (CPython's ZipExtFile also never returns
  more than the declared size and then checks the CRC, which a lying header fails).
- **Path tricks.** Names that are absolute, contain ``..`` or ``.`` components, backslashes, NUL or
  other control characters, drive letters, empty components, or that repeat another name (compared
  the way OPC part names compare: case-insensitively, after Unicode NFC) are refused. Nothing is
  ever extracted to disk by this module, so a name is only ever a dictionary key; the checks keep it
  that way for any caller that might later use one as a path.
- **Broken files.** Not a ZIP at all, truncated, damaged (CRC, deflate errors), encrypted or using
  a compression method 3MF does not allow: a clean ``ArchiveError`` with a ``code`` for the API and
  a plain sentence as ``str()``.

Everything here is synchronous and bounded; callers on the event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

ArchiveErrorCode = Literal[
    "too_large", "zip_bomb", "unsafe_name", "not_a_zip", "truncated", "bad_xml", "not_3mf"
]

MiB = 1024 * 1024

# A real Bambu .gcode.3mf is a few MB to a few hundred MB (the G-code of a long multi-plate print);
# project files with large meshes likewise.
MAX_ARCHIVE_BYTES = 1024 * MiB
MAX_NAME_CHARS = 1024

CHUNK = 64 * 1024
ALLOWED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})  # the 3MF spec allows only these

_DRIVE = re.compile(r"^[A-Za-z]:")
_LOCAL_HEADER = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for reading one untrusted archive."""

    max_archive_bytes: int = MAX_ARCHIVE_BYTES
    max_entries: int = 10_000
    max_total_uncompressed: int = 4096 * MiB
    # Anything read into memory whole (XML/JSON configs, PNG thumbnails, relationship parts).
    max_member_bytes: int = 16 * MiB
    # Bambu's project_settings.config is a big JSON (G-code templates for every filament): typically
    # 100-500 kB. A bound of its own keeps one hostile config from costing more than this.
    max_settings_bytes: int = 8 * MiB
    max_image_bytes: int = 8 * MiB
    # Deflate on G-code or mesh XML gives 3-8:1, on repetitive JSON up to ~30:1. Small entries may
    # compress better (whitespace), so the ratio applies to entries above ratio_floor_bytes.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * MiB
    # The head of a plate's G-code (slicer header and config block) and of the 3D model (metadata).
    max_gcode_head_bytes: int = 512 * 1024
    max_gcode_tail_bytes: int = 512 * 1024
    max_model_head_bytes: int = 1 * MiB
    # lib3mf reads the whole model into memory: only below this size, and only for this long.
    max_geometry_bytes: int = 32 * MiB
    geometry_timeout_s: float = 5.0


DEFAULT_LIMITS = Limits()


class ArchiveError(Exception):
    """An archive that cannot be read safely. ``str(err)`` is a plain sentence for the user;
    ``code`` is a stable slug for the API (see ArchiveErrorCode)."""

    def __init__(self, message: str, code: ArchiveErrorCode):
        super().__init__(message)
        self.message = message
        self.code: ArchiveErrorCode = code

    def __repr__(self) -> str:
        return f"ArchiveError({self.message!r}, {self.code!r})"


def _mb(n: float) -> str:
    return f"{n / MiB:.0f} MB" if n >= MiB else f"{n / 1024:.0f} kB"


def _shown(name: str) -> str:
    """A name from the archive, safe to put in a message (no control characters, bounded)."""
    clean = "".join(c if unicodedata.category(c) != "Cc" else "?" for c in name)
    return repr(clean[:80] + ("..." if len(clean) > 80 else ""))


def check_name(name: str) -> str | None:
    """Why ``name`` is not acceptable as an archive entry name, or None if it is."""
    if not name:
        return "an entry has an empty name"
    if len(name) > MAX_NAME_CHARS:
        return "an entry name is too long"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return f"the entry name {_shown(name)} contains control characters"
    if "\\" in name:
        return f"the entry name {_shown(name)} contains a backslash"
    if name.startswith("/"):
        return f"the entry name {_shown(name)} is an absolute path"
    if _DRIVE.match(name):
        return f"the entry name {_shown(name)} starts with a drive letter"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if any(p in ("..", ".") for p in parts):
        return f"the entry name {_shown(name)} contains '..' or '.'"
    if any(p == "" for p in parts):
        return f"the entry name {_shown(name)} has an empty path component"
    return None


def name_key(name: str) -> str:
    """How OPC compares part names: case-insensitive, Unicode-normalised."""
    return unicodedata.normalize("NFC", name).casefold()


def _starts_like_zip(fp: BinaryIO) -> bool:
    fp.seek(0)
    head = fp.read(4)
    fp.seek(0)
    return head == _LOCAL_HEADER


class SafeZip:
    """An untrusted ZIP archive, checked when opened; entries are read only within the limits.

    >>> with SafeZip(path) as z:
    ...     data = z.read("Metadata/slice_info.config")
    """

    def __init__(self, path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS):
        self.path = Path(path)
        self.limits = limits
        self._fp: BinaryIO | None = None
        self._zf: zipfile.ZipFile | None = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- opening and checking ---------------------------------------------------------------------

    def _open(self) -> None:
        limits = self.limits
        try:
            fp = open(self.path, "rb")  # closed in close()
        except FileNotFoundError:
            raise ArchiveError("The file does not exist (any more).", "not_a_zip") from None
        except IsADirectoryError:
            raise ArchiveError("This is a folder, not a file.", "not_a_zip") from None
        self._fp = fp
        size = os.fstat(fp.fileno()).st_size
        if size > limits.max_archive_bytes:
            raise ArchiveError(
                f"The file is {_mb(size)}; at most {_mb(limits.max_archive_bytes)} can be read.",
                "too_large",
            )
        if size == 0:
            raise ArchiveError("The file is empty.", "not_a_zip")
        try:
            self._zf = zipfile.ZipFile(fp)
        except zipfile.LargeZipFile:
            raise ArchiveError("The archive is too large to be read.", "too_large") from None
        except NotImplementedError:
            raise ArchiveError(
                "The archive uses ZIP features that 3MF files do not use.", "not_3mf"
            ) from None
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, OverflowError) as exc:
            if _starts_like_zip(fp):
                raise ArchiveError(
                    "The archive is incomplete or damaged (its table of contents is missing or broken); "
                    "was the upload cut off?",
                    "truncated",
                ) from exc
            raise ArchiveError(
                "The file is not a ZIP archive, so it cannot be a 3MF file.", "not_a_zip"
            ) from exc
        self._check_entries(size)

    def _check_entries(self, archive_size: int) -> None:
        limits = self.limits
        assert self._zf is not None
        infos = self._zf.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveError(
                f"The archive has {len(infos)} entries; at most {limits.max_entries} are accepted.",
                "too_large",
            )
        seen: dict[str, str] = {}
        total = 0
        for info in infos:
            # zipfile cuts a name at its first NUL; the name as stored is orig_filename.
            raw = info.orig_filename
            problem = check_name(raw)
            if problem:
                raise ArchiveError(f"The archive is unsafe: {problem}.", "unsafe_name")
            key = name_key(raw)
            if key in seen:
                raise ArchiveError(
                    f"The archive is unsafe: the entry {_shown(raw)} appears more than once.", "unsafe_name"
                )
            seen[key] = raw
            if info.flag_bits & 0x41:  # encrypted, or strongly encrypted
                raise ArchiveError("The archive is encrypted; a 3MF file never is.", "not_3mf")
            if info.flag_bits & 0x20 or info.extract_version > zipfile.MAX_EXTRACT_VERSION:
                raise ArchiveError(
                    f"The entry {_shown(raw)} uses ZIP features that 3MF files do not use.", "not_3mf"
                )
            if info.compress_type not in ALLOWED_METHODS:
                raise ArchiveError(
                    f"The entry {_shown(raw)} uses a compression method that 3MF files do not use.",
                    "not_3mf",
                )
            if info.file_size < 0 or info.compress_size < 0:
                raise ArchiveError("The archive's table of contents is damaged.", "truncated")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise ArchiveError(
                    f"The archive is unsafe: the entry {_shown(raw)} claims sizes that do not match.",
                    "zip_bomb",
                )
            if info.header_offset + info.compress_size > archive_size:
                raise ArchiveError(
                    f"The archive is incomplete: the entry {_shown(raw)} runs past the end of the file.",
                    "truncated",
                )
            if info.file_size > limits.ratio_floor_bytes and (
                info.compress_size == 0 or info.file_size > limits.max_ratio * info.compress_size
            ):
                ratio = info.file_size / max(1, info.compress_size)
                raise ArchiveError(
                    f"The archive looks like a zip bomb: the entry {_shown(raw)} would expand "
                    f"{ratio:.0f} times, to {_mb(info.file_size)}.",
                    "zip_bomb",
                )
            total += info.file_size
        if total > limits.max_total_uncompressed:
            raise ArchiveError(
                f"The archive would expand to {_mb(total)}; at most "
                f"{_mb(limits.max_total_uncompressed)} are accepted.",
                "zip_bomb",
            )
        self._check_overlap(infos)
        self._names = {name_key(i.orig_filename): i for i in infos}

    @staticmethod
    def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
        """Entries whose data overlap reuse one compressed stream many times (a zip bomb trick)."""
        # The end is a lower bound (local extra fields and data descriptors are not counted), so
        # this never refuses a sound archive.
        spans = sorted(
            (
                (i.header_offset, i.header_offset + 30 + len(i.orig_filename) + i.compress_size, i)
                for i in infos
            ),
            key=lambda span: span[0],
        )
        for (_, end, _), (next_start, _, info) in itertools.pairwise(spans):
            if next_start < end:
                raise ArchiveError(
                    f"The archive looks like a zip bomb: the entry {_shown(info.orig_filename)} "
                    "overlaps another one.",
                    "zip_bomb",
                )

    # -- access -----------------------------------------------------------------------------------

    def close(self) -> None:
        zf, self._zf = self._zf, None
        fp, self._fp = self._fp, None
        if zf is not None:
            zf.close()
        if fp is not None:
            fp.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        return [i.orig_filename for i in self._names.values()]

    def info(self, name: str) -> zipfile.ZipInfo | None:
        """The entry called ``name`` (compared as OPC does, case-insensitively), or None.
        A leading '/' (as in relationship targets) is ignored."""
        return self._names.get(name_key(name.lstrip("/")))

    def has(self, name: str) -> bool:
        return self.info(name) is not None

    def size(self, name: str) -> int | None:
        info = self.info(name)
        return info.file_size if info is not None else None

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The whole entry, at most ``max_bytes`` (default ``limits.max_member_bytes``); too_large
        beyond. KeyError if there is no such entry."""
        info = self.info(name)
        if info is None:
            raise KeyError(name)
        limit = self.limits.max_member_bytes if max_bytes is None else max_bytes
        if info.file_size > limit:
            raise ArchiveError(
                f"The part {_shown(info.orig_filename)} is {_mb(info.file_size)}; at most {_mb(limit)} "
                "is read.",
                "too_large",
            )
        # One byte past the declared size, so that _chunks notices an entry that is longer.
        return b"".join(self._chunks(info, info.file_size + 1))

    def read_head(self, name: str, max_bytes: int) -> bytes:
        """At most the first ``max_bytes`` of an entry; decompression stops there."""
        info = self.info(name)
        if info is None:
            raise KeyError(name)
        return b"".join(self._chunks(info, max_bytes))

    def iter_chunks(self, name: str, max_bytes: int | None = None) -> Iterator[bytes]:
        """The entry's bytes in chunks, stopping after ``max_bytes`` (the whole entry if None)."""
        info = self.info(name)
        if info is None:
            raise KeyError(name)
        limit = info.file_size if max_bytes is None else max_bytes
        return self._chunks(info, limit)

    def _chunks(self, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
        assert self._zf is not None, "archive is closed"
        produced = 0
        try:
            with self._zf.open(info) as stream:
                while produced < limit:
                    chunk = stream.read(min(CHUNK, limit - produced))
                    if not chunk:
                        return
                    produced += len(chunk)
                    # Never more than the header said: CPython enforces it; this is the backstop.
                    if produced > info.file_size:
                        raise ArchiveError(
                            f"The part {_shown(info.orig_filename)} is larger than its header says.",
                            "zip_bomb",
                        )
                    yield chunk
        except ArchiveError:
            raise
        except zipfile.BadZipFile as exc:
            text = str(exc)
            if "Overlapped" in text:
                raise ArchiveError(
                    "The archive looks like a zip bomb: its entries overlap.", "zip_bomb"
                ) from None
            if "CRC" in text:
                raise ArchiveError(
                    f"The part {_shown(info.orig_filename)} is damaged (its checksum does not match).",
                    "truncated",
                ) from None
            raise ArchiveError(
                f"The part {_shown(info.orig_filename)} is damaged or incomplete.", "truncated"
            ) from None
        except NotImplementedError:
            raise ArchiveError(
                f"The part {_shown(info.orig_filename)} uses ZIP features that 3MF files do not use.",
                "not_3mf",
            ) from None
        except (EOFError, zlib.error, OSError, ValueError, OverflowError) as exc:
            raise ArchiveError(
                f"The part {_shown(info.orig_filename)} is damaged or incomplete ({type(exc).__name__}).",
                "truncated",
            ) from None
