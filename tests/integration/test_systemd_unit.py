"""The service files in systemd/, checked by systemd's own tools, and the daemon under the unit's
W^X rule.

What this machine cannot do: start the unit itself (systemd is not PID 1 here, so there is no
manager to run it, apply its sandbox or fire its watchdog) and run udev on a GPIO chip (there is
none). So: ``systemd-analyze verify`` and ``security`` on the unit, ``systemd-sysusers`` and
``systemd-tmpfiles`` on a Debian 12 root and a Raspberry Pi OS root made in a temp dir, and the real
daemon under the kernel's ``PR_SET_MDWE`` (what ``MemoryDenyWriteExecute=`` is); the watchdog is in
test_watchdog.py.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shutil
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ACCESS_CODE, SERIAL
from tests.integration.daemon_proc import DaemonProcess, NotifySocket, printer_entry, write_config
from tests.integration.running_daemon import PASSWORD, add_admin
from tests.integration.waiting import dashboard_tls

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "bambu-edge.service"
SYSUSERS = SYSTEMD / "bambu-edge.sysusers"
TMPFILES = SYSTEMD / "bambu-edge.tmpfiles"
UDEV_RULE = SYSTEMD / "99-bambu-edge-gpio.rules"

needs_systemd_tools = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze missing: scripts/system-deps.sh test"
)


def _service() -> configparser.SectionProxy:
    # strict=False: DeviceAllow= and SystemCallFilter= are given more than once (the last one wins
    # here, which is all these tests read them for).
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser["Service"]


def _run(*argv: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    with open(stdin) if stdin else open("/dev/null") as f:
        return subprocess.run(argv, stdin=f, capture_output=True, text=True, timeout=60, check=False)


def _installable_unit(tmp_path: Path) -> Path:
    """The unit with its /usr/bin/bambu-edge pointed at this checkout's (verify wants a real one)."""
    exe = Path(sys.executable).with_name("bambu-edge")
    assert exe.is_file(), f"{exe}: the package is not installed in this venv (make venv)"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/bin/bambu-edge", str(exe)))
    return unit


@needs_systemd_tools
def test_unit_verifies_clean(tmp_path):
    done = _run("systemd-analyze", "verify", str(_installable_unit(tmp_path)))
    assert done.returncode == 0, done.stderr
    # An unknown or misspelt setting is only a warning: verify must say nothing at all.
    assert done.stderr.strip() == "" and done.stdout.strip() == ""


@needs_systemd_tools
def test_security_exposure_below_5(tmp_path):
    done = _run("systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT))
    found = re.search(r"Overall exposure level for bambu-edge\.service: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    exposure = float(found.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure < 5.0, done.stdout
    # No capability at all: the ports (3000, 3443, SSDP's 1990/2021) are unprivileged.
    assert "✗ CapabilityBoundingSet" not in done.stdout
    service = _service()
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""


def _debian12_root(tmp_path: Path, extra_groups: str = "") -> Path:
    """/etc/passwd and /etc/group of a fresh Debian 12 (base-passwd), plus ``extra_groups``."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    master = Path("/usr/share/base-passwd")
    (root / "etc/passwd").write_text((master / "passwd.master").read_text())
    groups = (master / "group.master").read_text()
    assert not re.search(r"^gpio:", groups, re.M)  # the 216/GROUP trap: Debian has no gpio group
    (root / "etc/group").write_text(groups + extra_groups)
    return root


def _groups(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for line in (root / "etc/group").read_text().splitlines():
        name, _, gid, members = line.split(":")
        out[name] = (int(gid), members)
    return out


def _sysusers(root: Path) -> None:
    done = _run("systemd-sysusers", f"--root={root}", "-", stdin=SYSUSERS)
    assert done.returncode == 0, done.stderr


@needs_systemd_tools
@pytest.mark.skipif(not Path("/usr/share/base-passwd/group.master").exists(), reason="not Debian")
def test_every_group_the_unit_names_exists_on_debian_12(tmp_path):
    root = _debian12_root(tmp_path)
    _sysusers(root)
    groups = _groups(root)
    # systemd refuses to start a service with an unknown group (216/GROUP): each one exists now.
    for name in [_service()["Group"], *_service()["SupplementaryGroups"].split()]:
        assert name in groups, f"{name} missing after sysusers on Debian 12"
    user = next(u for u in (root / "etc/passwd").read_text().splitlines() if u.startswith("bambu-edge:"))
    _, _, uid, gid, _, home, shell = user.split(":")
    assert int(uid) < 1000 and groups["bambu-edge"][0] == int(gid)  # a system user with its own group
    assert home == "/var/lib/bambu-edge" and shell.endswith("nologin")
    _sysusers(root)  # run again (every package upgrade does): nothing changes
    assert _groups(root) == groups


@needs_systemd_tools
@pytest.mark.skipif(not Path("/usr/share/base-passwd/group.master").exists(), reason="not Debian")
def test_raspberry_pi_os_gpio_group_is_left_alone(tmp_path):
    # Raspberry Pi OS has its own gpio group, with the desktop user in it.
    root = _debian12_root(tmp_path, "gpio:x:997:pi\n")
    _sysusers(root)
    assert _groups(root)["gpio"] == (997, "pi")


# One key of a udev rule: KEY or KEY{attribute}, an operator, a double-quoted value (udev(7)).
UDEV_KEY = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


def _udev_rules(text: str) -> list[list[tuple[str, str, str]]]:
    """Each rule of a udev rules file as (key, operator, value), comments and continuations as
    udev reads them; ValueError for a line that is not made of such keys."""
    rules = []
    for line in text.replace("\\\n", "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keys, pos = [], 0
        while pos < len(line):
            m = UDEV_KEY.match(line, pos)
            if m is None:
                raise ValueError(f"not a udev key at column {pos}: {line!r}")
            key = m[1] if m[2] is None else f"{m[1]}{{{m[2]}}}"
            keys.append((key, m[3], m[4]))
            pos = m.end()
            if pos < len(line):
                if line[pos] != ",":
                    raise ValueError(f"keys must be separated by commas: {line!r}")
                pos += 1
        rules.append(keys)
    return rules


def test_udev_rule_parser_reads_what_udev_reads():
    text = '# comment\nSUBSYSTEM=="gpio" ,KERNEL!="x*",\\\n  ATTR{dev}=="1", MODE:="0600"\n'
    assert _udev_rules(text) == [
        [
            ("SUBSYSTEM", "==", "gpio"),
            ("KERNEL", "!=", "x*"),
            ("ATTR{dev}", "==", "1"),
            ("MODE", ":=", "0600"),
        ]
    ]
    with pytest.raises(ValueError, match="commas"):
        _udev_rules('SUBSYSTEM=="gpio" GROUP="gpio"\n')
    with pytest.raises(ValueError, match="not a udev key"):
        _udev_rules("SUBSYSTEM==gpio\n")


def test_udev_rule_gives_gpio_chips_to_the_group_sysusers_makes():
    # udev cannot be run here (no GPIO chip): the rule's keys are read as udev reads them, and must
    # match every GPIO chip, nothing else, and give it to the group sysusers creates, read-write.
    (rule,) = _udev_rules(UDEV_RULE.read_text())
    matches = {k: v for k, op, v in rule if op == "=="}
    assigns = {k: v for k, op, v in rule if op in ("=", ":=")}
    assert len(matches) + len(assigns) == len(rule), rule  # no !=, += or -= keys
    assert matches.keys() == {"SUBSYSTEM", "KERNEL"} and matches["SUBSYSTEM"] == "gpio"
    chips = ("gpiochip0", "gpiochip4", "gpiochip12", "gpio17", "gpiomem", "spidev0.0")
    assert [n for n in chips if fnmatch.fnmatchcase(n, matches["KERNEL"])] == list(chips[:3])
    assert assigns.keys() == {"GROUP", "MODE"} and assigns["GROUP"] == "gpio"
    assert int(assigns["MODE"], 8) == 0o660  # the group reads and writes; others nothing
    assert "g gpio -" in SYSUSERS.read_text().splitlines()
    assert "gpio" in _service()["SupplementaryGroups"].split()


@needs_systemd_tools
@pytest.mark.skipif(not Path("/usr/share/base-passwd/group.master").exists(), reason="not Debian")
def test_config_with_access_codes_is_not_world_readable(tmp_path):
    root = _debian12_root(tmp_path)
    _sysusers(root)
    config = root / "etc/bambu-edge/config.yaml"
    config.parent.mkdir()
    config.write_text("printers: []\n")
    config.chmod(0o644)  # as a package or an editor leaves it
    done = _run("systemd-tmpfiles", f"--root={root}", "--create", "-", stdin=TMPFILES)
    assert done.returncode == 0, done.stderr
    gid = _groups(root)["bambu-edge"][0]
    uid = next(
        int(u.split(":")[2])
        for u in (root / "etc/passwd").read_text().splitlines()
        if u.startswith("bambu-edge:")
    )
    for path, mode, owner in (
        (config.parent, 0o750, 0),
        (config, 0o640, 0),
        # The data directory exists before the first start: the CLI, run as the service's user,
        # can create the database there.
        (root / "var/lib/bambu-edge", 0o750, uid),
    ):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, owner, gid), path
    # The same modes in the unit: systemd would warn at every start about a different one.
    assert int(_service()["ConfigurationDirectoryMode"], 8) == 0o750
    assert int(_service()["StateDirectoryMode"], 8) == 0o750


def _login(port: int) -> int:
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}/api/auth/login",
        data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, context=dashboard_tls(), timeout=10) as r:
        return r.status


def test_daemon_runs_with_memory_deny_write_execute(tmp_path, broker):
    """MemoryDenyWriteExecute=yes breaks code that writes then runs machine code (cffi callbacks,
    JITs): the real daemon, under the kernel's W^X rule from its first instruction, makes its TLS
    certificate (a child process), hashes a password (argon2-cffi), connects a printer over MQTT/TLS
    and answers a login."""
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, tmp_path / "data", [printer_entry(broker, SERIAL, ACCESS_CODE)])
    add_admin(cfg_path)  # argon2 hashing in the CLI: outside the rule, checked in the daemon below
    sock = NotifySocket(tmp_path / "notify.sock")
    d = DaemonProcess(
        cfg_path,
        env={"NOTIFY_SOCKET": str(sock.path), "PYTHONPATH": str(ROOT)},
        module="tests.integration.write_xor_execute",
    )
    try:
        try:
            sock.wait_for("READY=1", timeout=30)
        except AssertionError:
            if d.proc.poll() == 77:
                pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
            raise
        sock.wait_for("STATUS=1 printers, 1 connected")
        assert _login(d.https_port) == 200
    finally:
        d.stop()
        sock.close()
    assert "Traceback" not in d.output
