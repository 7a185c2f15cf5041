"""The store: migrations, users, tokens, certificate pins and the CLI commands built on them."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from bambu_edge.config import Config
from bambu_edge.store import cli
from bambu_edge.store.db import Database, Migration, SchemaTooNewError, Store, load_migrations, split_sql
from bambu_edge.store.pins import CertPins
from bambu_edge.store.tokens import Tokens
from bambu_edge.store.users import Users

REPO = Path(__file__).resolve().parents[2]
FP_A = "ab" * 32
FP_B = "cd" * 32
PEM_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
PEM_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def db(tmp_path: Path):
    database = await Database.open(tmp_path / "data" / "bambu-edge.db")
    await database.migrate()
    yield database
    await database.close()


def _db_bytes(path: Path) -> bytes:
    """The database as it sits on the SD card: main file plus WAL."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


# --- database and migrations ------------------------------------------------------------------------


async def test_migrations_apply_once_and_survive_reopen(tmp_path: Path):
    path = tmp_path / "new" / "dir" / "bambu-edge.db"  # parent folders are created
    database = await Database.open(path)
    assert await database.schema_version() == 0
    known = load_migrations()
    assert await database.migrate() == [m.version for m in known]
    assert await database.migrate() == []
    rows = await database.fetchall("SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in known]
    assert (1, "initial") in [(m.version, m.name) for m in known]
    assert rows[0]["applied_at"] > 0
    await database.close()

    again = await Database.open(path)
    assert await again.migrate() == []
    assert await again.schema_version() == known[-1].version
    tables = {r[0] for r in await again.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"printers", "users", "api_tokens", "printer_certs", "print_history"} <= tables
    await again.close()


async def test_wal_mode_durability_settings_and_private_file(db: Database):
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA synchronous"))[0] == 1  # NORMAL
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await db.fetchone("PRAGMA busy_timeout"))[0] >= 1000
    # Access codes and password hashes live here: nobody but the service user may read it.
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600


async def test_refuses_a_database_from_a_newer_version(db: Database):
    await db.execute("INSERT INTO schema_version VALUES (42, 'future', 0)")
    latest = load_migrations()[-1].version
    with pytest.raises(SchemaTooNewError, match=rf"schema version 42.*only up to version {latest}\b.*newer"):
        await db.migrate()


async def test_failed_migration_leaves_nothing_half_applied(db: Database):
    # Versions past the real ones: the fixture's database has those applied already.
    v = load_migrations()[-1].version
    good = Migration(v + 1, "good", "CREATE TABLE good (x INTEGER);")
    bad = Migration(v + 2, "bad", "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);")
    base = Migration(1, "initial", "")
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        await db.migrate([base, good, bad])
    assert await db.schema_version() == v + 1
    tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "good" in tables and "half" not in tables
    assert not db.conn.in_transaction
    # Fixed migration: applies on the next run.
    assert await db.migrate([base, good, Migration(v + 2, "bad", "CREATE TABLE half (x INTEGER);")]) == [
        v + 2
    ]


def test_split_sql_keeps_semicolons_in_strings_comments_and_triggers():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; SELECT 1; END;
    /* trailing; comment */
    """
    statements = split_sql(script)
    assert len(statements) == 2
    assert statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_sql("CREATE TABLE t (x INTEGER); SELECT 1")


async def test_transaction_rolls_back_on_error(db: Database):
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO printer_certs (printer_id, fingerprint, pem, pinned_at) VALUES (?, ?, ?, 0)",
                ("p1", FP_A, PEM_A),
            )
            raise RuntimeError("boom")
    assert await db.fetchone("SELECT * FROM printer_certs") is None


async def test_cancelled_transaction_leaves_nothing_behind(db: Database):
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO printer_certs (printer_id, fingerprint, pem, pinned_at) VALUES (?, ?, ?, 0)",
                ("p1", FP_A, PEM_A),
            )
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not db.conn.in_transaction
    assert await db.fetchone("SELECT * FROM printer_certs") is None
    assert (await CertPins(db).pin("p2", PEM_B, FP_B)).fingerprint == FP_B  # the database still works


async def test_concurrent_writers_do_not_mix_transactions(db: Database):
    pins = CertPins(db)

    async def failing_transaction() -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO printer_certs (printer_id, fingerprint, pem, pinned_at) VALUES ('tx', ?, '', 0)",
                (FP_A,),
            )
            await asyncio.sleep(0.05)  # others try to write meanwhile
            raise RuntimeError("abort")

    results = await asyncio.gather(
        failing_transaction(), *(pins.pin(f"p{i}", PEM_A, FP_A) for i in range(10)), return_exceptions=True
    )
    assert isinstance(results[0], RuntimeError)
    rows = await db.fetchall("SELECT printer_id FROM printer_certs ORDER BY printer_id")
    # The rollback took only its own row, not the pins written by the others meanwhile.
    assert sorted(r[0] for r in rows) == sorted(f"p{i}" for i in range(10))


async def test_schema_rejects_bad_rows(db: Database):
    uid = "ab" * 16
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO print_history (uid, printer_id, started_at, outcome, created_at, updated_at)"
            " VALUES (?, 'p1', 1, 'exploded', 1, 1)",
            (uid,),
        )
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO printers (id, name, host, created_at, updated_at) VALUES ('Bad Id', 'x', 'h', 1, 1)"
        )
    await db.execute(
        "INSERT INTO print_history (uid, printer_id, started_at, ended_at, outcome, filament_json,"
        " created_at, updated_at) VALUES (?, 'p1', 1, 2, 'success', '[{\"type\": \"PLA\"}]', 1, 1)",
        (uid,),
    )


async def test_klipper_materials_are_kept_by_migration_0009(tmp_path: Path):
    """A Klipper printer's nozzle and filament (set in the dashboard) survive a restart; an unset
    printer reads as nothing set; the schema refuses a nozzle no printer has."""
    from bambu_edge.printers.moonraker.status import Materials
    from bambu_edge.store.materials import StoredMaterials

    path = tmp_path / "data" / "bambu-edge.db"
    database = await Database.open(path)
    assert 9 in await database.migrate()
    stored = StoredMaterials(database)
    assert await stored.get("voron") == Materials()
    await stored.set("voron", Materials(0.6, "PETG", "#FF8800FF"))
    await stored.set("voron", Materials(0.4, "PLA", "#101010FF"))
    with pytest.raises(sqlite3.IntegrityError):
        await stored.set("ender", Materials(5.0, "PLA", None))
    await database.close()
    again = await Database.open(path)
    try:
        assert await again.migrate() == []
        assert await StoredMaterials(again).get("voron") == Materials(0.4, "PLA", "#101010FF")
        assert await StoredMaterials(again).get("ender") == Materials()
    finally:
        await again.close()


# --- users ------------------------------------------------------------------------------------------


async def test_user_create_and_verify(db: Database):
    users = Users(db)
    alice = await users.create("alice", "correct horse", role="admin")
    assert (alice.name, alice.role) == ("alice", "admin")
    assert not hasattr(alice, "password_hash")
    assert await users.verify("alice", "correct horse") == alice
    assert await users.verify("ALICE", "correct horse") == alice  # names ignore case
    assert await users.verify("alice", "wrong horse!") is None
    assert await users.verify("nobody", "correct horse") is None
    assert await users.verify("bad name!", "correct horse") is None
    assert await users.count() == 1
    assert await users.get(alice.id) == alice
    assert await users.get_by_name("Alice") == alice
    assert await users.list() == [alice]

    row = await db.fetchone("SELECT password_hash FROM users")
    assert "correct horse" not in row[0]
    assert row[0].startswith("$argon2id$") and "m=19456,t=2,p=1" in row[0]


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("bob", "short", "at least 8 characters"),
        ("bob", "x" * 2000, "at most"),
        ("bob smith", "long enough", "no spaces"),
        ("", "long enough", "1 to 32"),
        ("b" * 33, "long enough", "1 to 32"),
    ],
)
async def test_user_create_rejects_bad_input_plainly(db: Database, name: str, password: str, message: str):
    with pytest.raises(ValueError, match=message):
        await Users(db).create(name, password)
    assert await Users(db).count() == 0


async def test_duplicate_user_is_refused(db: Database):
    users = Users(db)
    await users.create("alice", "password-1")
    with pytest.raises(ValueError, match="already exists"):
        await users.create("Alice", "password-2")
    assert await users.verify("alice", "password-1") is not None


async def test_old_hash_parameters_are_upgraded_at_login(db: Database):
    weak = Users(db, hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    await weak.create("alice", "password-1")
    users = Users(db)
    assert await users.verify("alice", "password-1") is not None
    row = await db.fetchone("SELECT password_hash FROM users")
    assert "m=19456,t=2,p=1" in row[0]
    assert await users.verify("alice", "password-1") is not None


async def test_set_password_and_delete(db: Database):
    users = Users(db)
    admin = await users.create("admin", "password-1")
    bob = await users.create("bob", "password-2", role="user")
    assert await users.set_password(bob.id, "password-3")
    assert await users.verify("bob", "password-2") is None
    assert await users.verify("bob", "password-3") == bob
    with pytest.raises(ValueError, match="at least 8"):
        await users.set_password(bob.id, "short")
    assert not await users.set_password(999, "password-4")

    with pytest.raises(ValueError, match="last admin"):
        await users.delete(admin.id)
    assert await users.delete(bob.id)
    assert not await users.delete(bob.id)
    assert await users.list() == [admin]


# --- tokens -----------------------------------------------------------------------------------------


async def test_token_create_and_resolve(db: Database):
    user = await Users(db).create("alice", "password-1")
    tokens = Tokens(db)
    token, info = await tokens.create(user.id, "home-assistant")
    assert token.startswith("be_") and len(token) > 40
    assert (info.name, info.kind, info.user) == ("home-assistant", "api", user)
    resolved = await tokens.resolve(token)
    assert resolved is not None and resolved.id == info.id and resolved.user == user
    # Other processes (the web server restarted) resolve it too.
    assert (await Tokens(db).resolve(token)).user.name == "alice"
    assert await tokens.resolve(token + "x") is None
    assert await tokens.resolve("be_" + "A" * 43) is None
    assert await tokens.resolve("not-a-token") is None
    assert await tokens.resolve("") is None


async def test_token_is_never_stored_in_clear(db: Database):
    user = await Users(db).create("alice", "password-1")
    tokens = Tokens(db)
    token, _ = await tokens.create(user.id, "ha")
    session, _ = await tokens.create(user.id, "browser", kind="session", ttl_s=3600)
    await tokens.resolve(token)
    data = _db_bytes(db.path)
    assert token.encode() not in data and token[3:].encode() not in data
    assert session.encode() not in data
    assert hashlib.sha256(token.encode()).hexdigest().encode() in data  # it is really in there


async def test_token_expires(db: Database):
    user = await Users(db).create("alice", "password-1")
    tokens = Tokens(db)
    token, info = await tokens.create(user.id, "browser", kind="session", ttl_s=0.3)
    assert info.expires_at == pytest.approx(info.created_at + 0.3)
    assert await tokens.resolve(token) is not None  # now cached
    await asyncio.sleep(0.4)
    assert await tokens.resolve(token) is None  # the cache does not outlive the token
    assert await tokens.purge_expired() == 1
    assert await tokens.list(user.id, kind=None) == []


async def test_token_revoke(db: Database):
    users = Users(db)
    alice = await users.create("alice", "password-1")
    bob = await users.create("bob", "password-2", role="user")
    tokens = Tokens(db)
    token, info = await tokens.create(alice.id, "ha")
    assert await tokens.resolve(token) is not None
    assert not await tokens.revoke(info.id, user_id=bob.id)  # not bob's to revoke
    assert await tokens.resolve(token) is not None
    assert await tokens.revoke(info.id, user_id=alice.id)
    assert await tokens.resolve(token) is None  # at once, despite the cache
    assert not await tokens.revoke(info.id)
    assert await tokens.list(alice.id) == []
    assert [t.id for t in await tokens.list(alice.id, include_revoked=True)] == [info.id]


async def test_revoke_from_another_process_bites_within_the_cache_ttl(db: Database):
    user = await Users(db).create("alice", "password-1")
    daemon = Tokens(db, cache_ttl_s=0.2)
    token, info = await daemon.create(user.id, "ha")
    assert await daemon.resolve(token) is not None
    assert await Tokens(db).revoke(info.id)  # e.g. `bambu-edge token revoke` from a shell
    await asyncio.sleep(0.3)
    assert await daemon.resolve(token) is None


async def test_sessions_end_but_api_tokens_stay(db: Database):
    user = await Users(db).create("alice", "password-1")
    tokens = Tokens(db)
    api, _ = await tokens.create(user.id, "ha")
    s1, i1 = await tokens.create(user.id, "laptop", kind="session", ttl_s=3600)
    s2, _ = await tokens.create(user.id, "phone", kind="session", ttl_s=3600)
    for t in (api, s1, s2):
        assert await tokens.resolve(t) is not None
    assert await tokens.revoke_all_sessions(user.id, except_token_id=i1.id) == 1
    assert await tokens.resolve(s2) is None
    assert await tokens.resolve(s1) is not None
    assert await tokens.resolve(api) is not None
    assert await tokens.revoke_all_sessions(user.id) == 1
    assert await tokens.resolve(s1) is None
    assert [t.name for t in await tokens.list(user.id)] == ["ha"]  # API tokens only by default


async def test_deleting_a_user_ends_its_tokens_at_once(tmp_path: Path):
    store = Store(Config(data_dir=tmp_path))
    await store.start()
    try:
        await store.users.create("admin", "password-1")
        bob = await store.users.create("bob", "password-2", role="user")
        token, _ = await store.tokens.create(bob.id, "script")
        assert await store.tokens.resolve(token) is not None
        assert await store.users.delete(bob.id)
        assert await store.tokens.resolve(token) is None
        assert await store.db.fetchone("SELECT * FROM api_tokens") is None
    finally:
        await store.stop()


async def test_last_used_is_written_at_most_hourly(db: Database):
    user = await Users(db).create("alice", "password-1")
    tokens = Tokens(db, cache_ttl_s=0)  # every resolve reads the database
    token, info = await tokens.create(user.id, "ha")
    assert info.last_used_at is None
    first = (await tokens.resolve(token)).last_used_at
    assert first is not None
    await asyncio.sleep(0.01)
    assert (await tokens.resolve(token)).last_used_at == first
    row = await db.fetchone("SELECT last_used_at FROM api_tokens")
    assert row[0] == first
    await db.execute("UPDATE api_tokens SET last_used_at = last_used_at - 3700")
    assert (await tokens.resolve(token)).last_used_at > first


async def test_token_for_unknown_user_or_bad_input(db: Database):
    tokens = Tokens(db)
    with pytest.raises(ValueError, match="no user"):
        await tokens.create(99, "ha")
    user = await Users(db).create("alice", "password-1")
    with pytest.raises(ValueError, match="name"):
        await tokens.create(user.id, "  ")
    with pytest.raises(ValueError, match="kind"):
        await tokens.create(user.id, "x", kind="root")
    with pytest.raises(ValueError, match="positive"):
        await tokens.create(user.id, "x", ttl_s=0)


# --- certificate pins ---------------------------------------------------------------------------------


async def test_pin_on_first_use_then_accept_a_changed_certificate(db: Database):
    pins = CertPins(db)
    assert await pins.get("x1c") is None
    with pytest.raises(ValueError, match="no pinned"):
        await pins.set_pending("x1c", PEM_B, FP_B)

    pin = await pins.pin("x1c", PEM_A, ":".join(FP_A[i : i + 2].upper() for i in range(0, 64, 2)))
    assert (pin.fingerprint, pin.pem, pin.pending_fingerprint) == (FP_A, PEM_A, None)

    pending = await pins.set_pending("x1c", PEM_B, FP_B)
    assert pending.fingerprint == FP_A  # still refusing the new one
    assert (pending.pending_fingerprint, pending.pending_pem) == (FP_B, PEM_B)
    assert pending.pending_seen_at is not None

    assert await pins.accept_pending("x1c")
    accepted = await pins.get("x1c")
    assert (accepted.fingerprint, accepted.pem, accepted.pending_fingerprint) == (FP_B, PEM_B, None)
    assert not await pins.accept_pending("x1c")

    # The pinned certificate offered again clears a stale pending one.
    await pins.set_pending("x1c", PEM_A, FP_A)
    assert (await pins.set_pending("x1c", PEM_B, FP_B)).pending_fingerprint is None

    assert await pins.forget("x1c")
    assert await pins.get("x1c") is None
    assert not await pins.forget("x1c")
    with pytest.raises(ValueError, match="SHA-256"):
        await pins.pin("x1c", PEM_A, "deadbeef")


async def test_a_late_retry_does_not_mark_the_accepted_certificate_pending_again(db, monkeypatch):
    """The link's retry read the old pin, then the user accepted the new certificate, then the
    retry's handshake failed against the old pin and reports the new certificate as offered: it is
    the pinned one now, so nothing is pending (the link connects with it at once)."""
    pins = CertPins(db)
    old = await pins.pin("x1c", PEM_A, FP_A)
    await pins.set_pending("x1c", PEM_B, FP_B)
    assert await pins.accept_pending("x1c")
    real_get = pins.get

    async def stale_get(printer_id: str):
        return old  # what the retry read before the accept

    monkeypatch.setattr(pins, "get", stale_get)
    await pins.set_pending("x1c", PEM_B, FP_B)
    monkeypatch.setattr(pins, "get", real_get)
    pin = await pins.get("x1c")
    assert (pin.fingerprint, pin.pending_fingerprint) == (FP_B, None)


# --- service ------------------------------------------------------------------------------------------


async def test_store_service_keeps_data_across_restarts(tmp_path: Path):
    config = Config(data_dir=tmp_path / "var")
    store = Store(config)
    with pytest.raises(RuntimeError, match="not started"):
        _ = store.users
    await store.start()
    await store.users.create("admin", "password-1")
    await store.pins.pin("p1", PEM_A, FP_A)
    await store.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = store.db

    await store.start()
    try:
        assert config.db_path.exists()
        assert await store.users.verify("admin", "password-1") is not None
        assert (await store.pins.get("p1")).fingerprint == FP_A
    finally:
        await store.stop()


# --- CLI ----------------------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _verify(config: Config, name: str, password: str):
    database = await Database.open(config.db_path)
    try:
        return await Users(database).verify(name, password)
    finally:
        await database.close()


def test_cli_user_add_reads_the_password_from_stdin(tmp_path: Path, capsys):
    config = Config(data_dir=tmp_path)
    assert cli.user_add_cmd(config, "admin", "admin", io.StringIO("s3cret-pass\nignored\n")) == 0
    out, _ = capsys.readouterr()
    assert "admin" in out and "s3cret-pass" not in out
    assert asyncio.run(_verify(config, "admin", "s3cret-pass")) is not None

    assert cli.user_add_cmd(config, "admin", "admin", io.StringIO("other-pass\n")) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.user_add_cmd(config, "bob", "user", io.StringIO("short\n")) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    assert cli.user_add_cmd(config, "bob", "user", io.StringIO("")) == 1
    assert "no password" in capsys.readouterr().err
    assert cli.user_add_cmd(config, "bob smith", "user", io.StringIO("long enough\n")) == 1
    assert "no spaces" in capsys.readouterr().err

    assert cli.user_list_cmd(config) == 0
    out = capsys.readouterr().out
    assert "admin" in out and "bob" not in out


def test_cli_user_add_on_a_terminal_asks_twice(tmp_path: Path, capsys, monkeypatch):
    config = Config(data_dir=tmp_path)
    answers = iter(["password-1", "password-2", "password-3", "password-3"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(cli.getpass, "getpass", fake_getpass)
    assert cli.user_add_cmd(config, "admin", "admin", _Tty()) == 1
    assert "do not match" in capsys.readouterr().err
    assert cli.user_add_cmd(config, "admin", "admin", _Tty()) == 0
    assert prompts == ["Password: ", "Repeat password: "] * 2
    assert asyncio.run(_verify(config, "admin", "password-3")) is not None


def test_cli_tokens(tmp_path: Path, capsys):
    config = Config(data_dir=tmp_path)
    assert cli.token_create_cmd(config, "ha", None) == 1
    assert "no admin user yet" in capsys.readouterr().err

    cli.user_add_cmd(config, "admin", "admin", io.StringIO("password-1\n"))
    capsys.readouterr()
    assert cli.token_create_cmd(config, "home-assistant", None) == 0
    token = capsys.readouterr().out
    assert token.count("\n") == 1 and token.startswith("be_")  # only the token: scripts capture it
    token = token.strip()

    cli.user_add_cmd(config, "admin2", "admin", io.StringIO("password-2\n"))
    capsys.readouterr()
    assert cli.token_create_cmd(config, "other", None) == 1
    assert "--user" in capsys.readouterr().err
    assert cli.token_create_cmd(config, "other", "nobody") == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert cli.token_create_cmd(config, "other", "admin2") == 0
    capsys.readouterr()

    assert cli.token_list_cmd(config, "admin") == 0
    out = capsys.readouterr().out
    assert "home-assistant" in out and "other" not in out and token not in out

    async def resolve():
        database = await Database.open(config.db_path)
        try:
            return await Tokens(database).resolve(token)
        finally:
            await database.close()

    info = asyncio.run(resolve())
    assert info.user.name == "admin"
    assert cli.token_revoke_cmd(config, info.id) == 0
    capsys.readouterr()
    assert asyncio.run(resolve()) is None
    assert cli.token_revoke_cmd(config, info.id) == 1
    assert "no active token" in capsys.readouterr().err


def test_cli_migrate_and_newer_database(tmp_path: Path, capsys):
    config = Config(data_dir=tmp_path)
    assert cli.migrate_cmd(config) == 0
    assert "applied 0001" in capsys.readouterr().out
    assert cli.migrate_cmd(config) == 0
    assert "up to date" in capsys.readouterr().out

    with sqlite3.connect(config.db_path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    assert cli.migrate_cmd(config) == 1
    assert cli.user_list_cmd(config) == 1
    err = capsys.readouterr().err
    assert "newer bambu-edge" in err and "Traceback" not in err


def test_bambu_edge_user_add_and_token_create_from_a_shell(tmp_path: Path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bambu_edge", "--config", str(cfg), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    added = run("user", "add", "admin", stdin="password-1\n")
    assert added.returncode == 0, added.stderr
    assert "password-1" not in added.stdout + added.stderr
    weak = run("user", "add", "bob", stdin="short\n")
    assert weak.returncode == 1 and "at least 8 characters" in weak.stderr
    created = run("token", "create", "ha")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("be_") and len(created.stdout.split()) == 1
