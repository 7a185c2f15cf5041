"""`GET /api/auth/status` on the real daemon: the public session probe answers 200 whoever asks,
saying whether the request is logged in, and then exactly what `GET /api/session` says."""

from __future__ import annotations


async def test_the_session_probe_answers_everyone_with_200(spine: dict) -> None:
    http, base = spine["http"], spine["base"]
    for headers in ({}, {"Authorization": "Bearer be_not_a_token"}, {"Cookie": "bambu_edge_session=nope"}):
        async with http.get(base + "/api/auth/status", headers=headers) as r:
            assert r.status == 200
            assert await r.json() == {"authenticated": False}
    async with http.get(base + "/api/session", headers=spine["auth"]) as r:
        session = await r.json()
    async with http.get(base + "/api/auth/status", headers=spine["auth"]) as r:
        assert r.status == 200
        assert await r.json() == {"authenticated": True, **session}
    assert session["user"]["name"] == "admin" and session["csrf"]
    # The old probe keeps its answer (DESIGN §4): 401 when nobody is logged in.
    async with http.get(base + "/api/session") as r:
        assert r.status == 401
    async with http.get(base + "/api/openapi.json", headers=spine["auth"]) as r:
        op = (await r.json())["paths"]["/api/auth/status"]["get"]
    assert op["security"] == [] and "401" not in op["responses"]
