"""The dashboard's files from memory: gzip to browsers, the same bytes plain to a client without it,
304 on a matching ETag, and content types from our own table."""

from __future__ import annotations

import gzip
from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from bambu_edge.web.static import StaticFiles


def _site(tmp_path: Path) -> Path:
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>" + "<p>hello</p>" * 200)
    (tmp_path / "js" / "main.js").write_text("export const a = 1;\n" * 300)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return tmp_path


async def _get(files: StaticFiles, path: str, **headers: str):
    return await files.handle(make_mocked_request("GET", path, headers=headers))


async def test_gzip_for_browsers_and_the_same_bytes_plain_without(tmp_path: Path) -> None:
    root = _site(tmp_path)
    files = StaticFiles(root)
    zipped = await _get(files, "/js/main.js", **{"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.content_type == "text/javascript"
    assert gzip.decompress(zipped.body) == (root / "js" / "main.js").read_bytes()
    plain = await _get(files, "/js/main.js")
    assert "Content-Encoding" not in plain.headers
    assert plain.body == (root / "js" / "main.js").read_bytes()
    assert plain.headers["ETag"] == zipped.headers["ETag"]
    again = await _get(files, "/js/main.js", **{"If-None-Match": plain.headers["ETag"]})
    assert again.status == 304


async def test_index_and_binary_files_have_their_types(tmp_path: Path) -> None:
    files = StaticFiles(_site(tmp_path))
    index = await _get(files, "/", **{"Accept-Encoding": "gzip"})
    assert index.content_type == "text/html" and index.charset == "utf-8"
    png = await _get(files, "/logo.png", **{"Accept-Encoding": "gzip"})
    assert png.content_type == "image/png" and "Content-Encoding" not in png.headers
    assert png.body == (tmp_path / "logo.png").read_bytes()
