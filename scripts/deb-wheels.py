#!/usr/bin/env python3
"""Fetch the wheels the Debian package carries, for one architecture: ``deb-wheels.py ARCH DIR``.

The only step of ``make deb`` that uses the network: the package build itself
(debian/rules) installs from DIR with ``--no-index``. Each pin in debian/vendor.txt and
debian/vendor-ARCH.txt is fetched as a binary wheel for CPython 3.11 on that architecture (a
pure-Python project that publishes only a source archive is built into a ``none-any`` wheel here;
anything native without a wheel is an error). Checks, each a failure with a plain message:

- every pin in pyproject.toml's dependencies is in the vendor lists with the same version, or is
  one of the packages Debian 12 provides (debian/control);
- the wheels' native code needs only libraries every Debian system has, and a glibc no newer
  than Debian 12's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = ROOT / "debian"
PLATFORM = {"amd64": "x86_64", "arm64": "aarch64"}
GLIBC_MAX = (2, 36)  # Debian 12
# Packages whose Debian 12 version serves (debian/control Depends:); everything else is vendored.
FROM_DEBIAN = {"pyyaml", "defusedxml", "pyudev", "systemd-python"}
# Libraries a manylinux wheel may link without bundling them, all in libc6 / libgcc-s1 / libstdc++6.
SYSTEM_LIBS = re.compile(
    r"^(libc|libm|libdl|librt|libpthread|libutil|libgcc_s|libstdc\+\+|ld-linux[-\w.]*)\.so(\.\d+)*$"
)
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)\s*(?:;\s*(.*))?$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.match(line)
        if not m:
            sys.exit(f"{path}:{n}: not an exact pin (name==version): {line}")
        pins[norm(m[1])] = m[2]
    return pins


def check_against_pyproject(arch: str, vendored: dict[str, str]) -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    problems = []
    for dep in deps:
        m = PIN.match(dep)
        if not m:
            problems.append(f"pyproject.toml: {dep!r} is not pinned with ==")
            continue
        name, version, marker = norm(m[1]), m[2], m[3] or ""
        if name in FROM_DEBIAN:
            continue
        machine = re.search(r"platform_machine\s*==\s*['\"](\w+)['\"]", marker)
        if machine and machine[1] != PLATFORM[arch]:
            continue
        if vendored.get(name) != version:
            problems.append(
                f"pyproject.toml pins {name}=={version}, the {arch} package carries "
                f"{vendored.get(name, 'nothing')} (debian/vendor*.txt)"
            )
    if problems:
        sys.exit("\n".join(problems))


def wheel_for(dest: Path, name: str, version: str) -> Path | None:
    for w in dest.glob("*.whl"):
        parts = w.name.split("-")
        if norm(parts[0]) == name and parts[1] == version:
            return w
    return None


def fetch(arch: str, dest: Path, name: str, version: str) -> Path:
    if (found := wheel_for(dest, name, version)) is not None:
        return found
    machine = PLATFORM[arch]
    platforms: list[str] = []
    for minor in range(17, GLIBC_MAX[1] + 1):
        platforms += ["--platform", f"manylinux_2_{minor}_{machine}"]
    platforms += ["--platform", f"manylinux2014_{machine}"]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    spec = f"{name}=={version}"
    got = subprocess.run(
        [*pip, "download", "--no-deps", "--only-binary=:all:", *platforms, "--python-version", "3.11",
         "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-d", str(dest), spec],
        capture_output=True, text=True,
    )  # fmt: skip
    if got.returncode != 0:
        # No wheel at all: acceptable only for pure Python, which we build here.
        with tempfile.TemporaryDirectory() as tmp:
            built = subprocess.run(
                [*pip, "wheel", "--no-deps", "--no-binary", name, "-w", tmp, spec],
                capture_output=True,
                text=True,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if built.returncode != 0 or len(wheels) != 1 or not wheels[0].name.endswith("-none-any.whl"):
                sys.exit(
                    f"{spec}: no wheel for {machine} on PyPI and not pure Python:\n{got.stderr}{built.stderr}"
                )
            wheels[0].rename(dest / wheels[0].name)
    found = wheel_for(dest, name, version)
    if found is None:
        sys.exit(f"{spec}: pip reported success but left no wheel in {dest}")
    return found


def check_native(wheel: Path) -> list[str]:
    """Problems with the native code inside one wheel: libraries it needs and does not bundle."""
    problems = []
    tags = wheel.name.removesuffix(".whl").split("-")[-1]
    for m in re.finditer(r"manylinux_(\d+)_(\d+)", tags):
        if (int(m[1]), int(m[2])) > GLIBC_MAX:
            problems.append(f"{wheel.name}: needs glibc {m[1]}.{m[2]}, Debian 12 has 2.36")
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        names = z.namelist()
        bundled = {Path(n).name for n in names if ".libs/" in n}
        for n in names:
            if not re.search(r"\.so(\.\d+)*$", n):
                continue
            z.extract(n, tmp)
            out = subprocess.run(["readelf", "-d", str(Path(tmp) / n)], capture_output=True, text=True).stdout
            for lib in re.findall(r"\(NEEDED\).*\[(.+)\]", out):
                if not SYSTEM_LIBS.match(lib) and lib not in bundled:
                    problems.append(f"{wheel.name}: {n} needs {lib}, which the wheel does not bundle")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in PLATFORM:
        sys.exit("usage: deb-wheels.py amd64|arm64 DIR")
    arch, dest = argv[0], Path(argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    pins = read_pins(DEBIAN / "vendor.txt") | read_pins(DEBIAN / f"vendor-{arch}.txt")
    check_against_pyproject(arch, pins)
    wheels = [fetch(arch, dest, name, version) for name, version in sorted(pins.items())]
    keep = {w.name for w in wheels}
    for stale in dest.glob("*.whl"):  # an old pin's wheel must not end up in the package
        if stale.name not in keep:
            stale.unlink()
    problems = [p for w in wheels for p in check_native(w)]
    if problems:
        sys.exit("\n".join(problems))
    size = sum(w.stat().st_size for w in wheels)
    print(f"{arch}: {len(wheels)} wheels, {size / 1e6:.1f} MB, in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
