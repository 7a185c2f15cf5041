"""The queue API over real HTTPS with a real store and dispatcher: uploads (hostile ones too), jobs,
order, pause, beds. No printers here (see test_queue_end_to_end.py for the whole path)."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bambu_edge.bus import EventBus
from bambu_edge.config import Config, WebConfig
from bambu_edge.files.thumbnails import ThumbnailCache, key_for
from bambu_edge.jobs.dispatcher import Dispatcher
from bambu_edge.jobs.queue import QueueStore
from bambu_edge.store.db import Store
from tests.factories.threemf import HOSTILE, PlateSpec, make_3mf
from tests.integration.fakes import ADMIN, PASSWORD, FakeLink, FakeManager
from tests.integration.web_stack import WebStack

pytestmark = pytest.mark.integration


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str, data_dir: Path, queue: Dispatcher):
        self.http, self.base, self.data_dir, self.queue = http, base, data_dir, queue
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, headers=self.auth, **kw) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()

    async def upload(self, path: Path, name: str | None = None) -> tuple[int, Any]:
        return await self.call(
            "POST", "/api/queue/files", params={"name": name or path.name}, data=path.read_bytes()
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    data = tmp_path / "data"
    config = Config(data_dir=data, web=WebConfig(bind="127.0.0.1", https_port=0, http_port=None))
    store = Store(config)
    await store.start()
    await store.users.create(ADMIN, PASSWORD, "admin")
    bus = EventBus()
    manager = FakeManager(FakeLink("p1"))
    thumbnails = ThumbnailCache.in_data_dir(data)
    queue = Dispatcher(config, QueueStore(store.db), manager, bus, thumbnails=thumbnails, tick_s=3600)
    await queue.start()
    stack = WebStack(config, store, manager, bus, queue=queue)
    svc = stack.svc
    await stack.start()
    ctx = ssl.create_default_context(cafile=str(data / "tls" / "server.crt"))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))
    base = f"https://127.0.0.1:{svc.https_port}"
    try:
        async with http.post(base + "/api/auth/login", json={"username": ADMIN, "password": PASSWORD}) as r:
            token = (await r.json())["token"]
        yield Api(http, base, token, data, queue)
    finally:
        await http.close()
        await stack.stop()
        await queue.stop()
        await store.stop()


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def test_upload_reads_the_file_and_keeps_it_once(api: Api, tmp_path: Path):
    made = make_3mf(
        tmp_path / "cube.gcode.3mf",
        plates=[PlateSpec(prediction_s=1800, layers=50, filaments=[("PETG", "#FFFFFF", 9.5)])],
    )
    status, body = await api.upload(made.path)
    assert status == 201, body
    assert body["name"] == "cube.gcode.3mf" and body["size"] == made.path.stat().st_size
    assert body["meta"]["printer_model"] == "P1S" and body["meta"]["sliced"] is True
    plate = body["meta"]["plates"][0]
    assert plate["prediction_s"] == 1800 and plate["filaments"][0]["type"] == "PETG"
    stored = api.data_dir / "queue" / "files" / f"{body['sha256']}.3mf"
    assert stored.read_bytes() == made.path.read_bytes()
    # The same bytes again: the same file, not a second copy.
    again_status, again = await api.upload(made.path, "renamed.gcode.3mf")
    assert again_status == 200 and again["id"] == body["id"]
    assert len(list((api.data_dir / "queue" / "files").iterdir())) == 1
    status, listing = await api.call("GET", "/api/queue/files")
    assert [f["id"] for f in listing["files"]] == [body["id"]]
    status, png = await api.call("GET", f"/api/queue/files/{body['id']}/thumbnail", params={"plate": "1"})
    assert status == 200 and png == made.thumbnails[1]
    # Served from the shared thumbnail cache from now on (the history shows the same picture).
    assert api.queue.thumbnails.get(key_for(body["sha256"], 1)) == png
    status, err = await api.call("GET", f"/api/queue/files/{body['id']}/thumbnail", params={"plate": "7"})
    assert status == 404 and err["error"] == "not_found"


async def test_multipart_upload(api: Api, tmp_path: Path):
    made = make_3mf(tmp_path / "part.gcode.3mf")
    form = aiohttp.FormData()
    form.add_field("file", made.path.read_bytes(), filename="C:\\Users\\me\\part.gcode.3mf")
    status, body = await api.call("POST", "/api/queue/files", data=form)
    assert status == 201, body
    assert body["name"] == "part.gcode.3mf"


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_archives_are_refused_and_nothing_is_kept(api: Api, tmp_path: Path, case: str):
    maker, code = HOSTILE[case]
    evil = maker(tmp_path / "evil.gcode.3mf")
    outside_before = files_under(tmp_path) - files_under(api.data_dir)
    status, body = await api.upload(evil)
    assert 400 <= status < 500, body
    assert body["error"] == code and body["message"]
    assert list((api.data_dir / "queue" / "files").iterdir()) == []
    assert list((api.data_dir / "queue" / "tmp").iterdir()) == []
    # Nothing new anywhere outside the data folder (names like ../../etc/cron.d/owned went nowhere).
    assert files_under(tmp_path) - files_under(api.data_dir) == outside_before
    assert not Path("/etc/cron.d/owned").exists()
    status, listing = await api.call("GET", "/api/queue/files")
    assert listing["files"] == []


async def test_bad_uploads(api: Api, tmp_path: Path):
    unsliced = make_3mf(tmp_path / "project.3mf", plates=[PlateSpec(gcode=False)])
    status, body = await api.upload(unsliced.path)
    assert status == 422 and body["error"] == "not_sliced" and "slice" in body["message"]
    status, body = await api.upload(unsliced.path, "notes.txt")
    assert status == 400 and ".3mf" in body["message"]
    status, body = await api.call("POST", "/api/queue/files", data=b"x")
    assert status == 400 and "name" in body["message"]
    status, body = await api.call("POST", "/api/queue/files", params={"name": "empty.3mf"}, data=b"")
    assert status == 400
    assert list((api.data_dir / "queue" / "files").iterdir()) == []


async def test_upload_size_cap(api: Api, tmp_path: Path, monkeypatch):
    from bambu_edge.web import api_queue

    monkeypatch.setattr(api_queue, "MAX_UPLOAD_BYTES", 1024)
    made = make_3mf(tmp_path / "big.gcode.3mf", target_size=64 * 1024)

    async def chunked():  # no Content-Length: the cap must hold while streaming
        data = made.path.read_bytes()
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    status, body = await api.call(
        "POST", "/api/queue/files", params={"name": "big.gcode.3mf"}, data=chunked()
    )
    assert status == 413 and body["error"] == "too_large"
    status, body = await api.upload(made.path)
    assert status == 413
    assert list((api.data_dir / "queue" / "tmp").iterdir()) == []


async def test_gcode_upload(api: Api, tmp_path: Path):
    path = tmp_path / "benchy.gcode"
    path.write_text(
        "; HEADER_BLOCK_START\n; BambuStudio 02.01.01.52\n; model printing time: 40m 2s; total estimated time: 46m 9s\n"
        "; total layer number: 240\n; HEADER_BLOCK_END\nG28\n"
    )
    status, body = await api.upload(path)
    assert status == 201, body
    assert body["kind"] == "gcode"


async def test_jobs_order_pause_and_errors(api: Api, tmp_path: Path):
    made = make_3mf(tmp_path / "cube.gcode.3mf", plates=[PlateSpec(), PlateSpec(gcode=False)])
    _, f = await api.upload(made.path)
    status, a = await api.call("POST", "/api/queue", json={"file_id": f["id"]})
    assert status == 201, a
    assert a["state"] == "waiting" and a["target"] == "any" and a["copies"] == 1 and a["plate"] == 1
    assert a["reasons"]  # the one printer here is a stand-in without a model: it says why
    _, b = await api.call(
        "POST", "/api/queue", json={"file_id": f["id"], "copies": 3, "options": {"timelapse": True}}
    )
    _, c = await api.call("POST", "/api/queue", json={"file_id": f["id"], "priority": 10, "target": "p1"})
    status, q = await api.call("GET", "/api/queue")
    assert [j["id"] for j in q["jobs"]] == [c["id"], a["id"], b["id"]]
    assert q["paused"] is False and q["printers"][0]["id"] == "p1"
    status, moved = await api.call("POST", f"/api/queue/{b['id']}/move", json={"before": a["id"]})
    assert status == 200 and moved["position"] < a["position"] + 1
    _, q = await api.call("GET", "/api/queue")
    assert [j["id"] for j in q["jobs"]] == [c["id"], b["id"], a["id"]]
    status, changed = await api.call("PUT", f"/api/queue/{a['id']}", json={"copies": 2, "priority": 20})
    assert status == 200 and changed["copies"] == 2 and changed["priority"] == 20
    _, q = await api.call("GET", "/api/queue")
    assert q["jobs"][0]["id"] == a["id"]
    for payload in ({"copies": None}, {"priority": None}, {"plate": None}):
        status, body = await api.call("PUT", f"/api/queue/{a['id']}", json=payload)
        assert status == 400 and "whole number" in body["message"], (payload, body)

    status, body = await api.call("POST", "/api/queue/pause")
    assert status == 200 and body == {"paused": True}
    _, q = await api.call("GET", "/api/queue")
    assert q["paused"] is True and q["jobs"][0]["reasons"] == ["the queue is paused"]
    await api.call("POST", "/api/queue/resume")

    for payload, words in [
        ({"file_id": f["id"], "plate": 2}, "not sliced"),
        ({"file_id": f["id"], "plate": 9}, "no plate 9"),
        ({"file_id": f["id"], "copies": 0}, "copies"),
        ({"file_id": f["id"], "target": "nope"}, "no printer"),
        ({"file_id": f["id"], "options": {"turbo": True}}, "turbo"),
        ({"file_id": 999}, "no queue file"),
        ({}, "file_id"),
    ]:
        status, body = await api.call("POST", "/api/queue", json=payload)
        assert status == 400 and words in body["message"], (payload, body)

    status, body = await api.call("POST", f"/api/queue/{a['id']}/retry")
    assert status == 409
    status, body = await api.call("DELETE", f"/api/queue/files/{f['id']}")
    assert status == 409 and body["error"] == "in_use"
    for job in (a, b, c):
        status, _ = await api.call("DELETE", f"/api/queue/{job['id']}")
        assert status == 204
    status, _ = await api.call("GET", f"/api/queue/{a['id']}")
    assert status == 404
    await api.call("GET", f"/api/queue/files/{f['id']}/thumbnail")
    assert len(api.queue.thumbnails) == 1
    status, _ = await api.call("DELETE", f"/api/queue/files/{f['id']}")
    assert status == 204
    assert list((api.data_dir / "queue" / "files").iterdir()) == []
    assert len(api.queue.thumbnails) == 0  # its pictures go with it


async def test_bed_marks(api: Api):
    status, body = await api.call("GET", "/api/queue/printers")
    assert status == 200 and body["paused"] is False
    assert [(p["id"], p["bed_clear"]) for p in body["printers"]] == [("p1", False)]
    status, body = await api.call("POST", "/api/printers/p1/bed", json={"clear": True})
    assert status == 200 and body["id"] == "p1" and body["bed_clear"] is True
    # The readiness alone (what the printer cards fetch) says the same as the whole queue view.
    status, alone = await api.call("GET", "/api/queue/printers")
    assert status == 200 and alone["printers"][0]["bed_clear"] is True
    assert alone["printers"] == (await api.call("GET", "/api/queue"))[1]["printers"]
    status, _ = await api.call("POST", "/api/printers/zz/bed", json={"clear": True})
    assert status == 404
    status, _ = await api.call("POST", "/api/printers/p1/bed", json={"clear": "yes"})
    assert status == 400


async def test_queue_routes_need_a_login(api: Api):
    async with api.http.get(api.base + "/api/queue") as r:
        assert r.status == 401
    async with api.http.post(api.base + "/api/queue/files", params={"name": "x.3mf"}, data=b"x") as r:
        assert r.status == 401
    assert not os.listdir(api.data_dir / "queue" / "tmp")


async def test_large_uploads_are_streamed_raw_and_multipart(api: Api, tmp_path: Path):
    made = make_3mf(tmp_path / "large.gcode.3mf", target_size=3 * 1024 * 1024)  # past the 1 MB body limit
    status, body = await api.upload(made.path)
    assert status == 201, body
    assert body["size"] == made.path.stat().st_size
    other = make_3mf(tmp_path / "other.gcode.3mf", target_size=3 * 1024 * 1024, seed=2)
    form = aiohttp.FormData()
    form.add_field("note", "first a small field")
    form.add_field("file", other.path.read_bytes(), filename="other.gcode.3mf")
    status, body = await api.call("POST", "/api/queue/files", data=form)
    assert status == 201, body
    stored = api.data_dir / "queue" / "files" / f"{body['sha256']}.3mf"
    assert stored.read_bytes() == other.path.read_bytes()
