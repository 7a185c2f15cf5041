#!/usr/bin/env bash
# The real Moonraker (Klipper's API server, from PyPI) in a venv of its own, for the Klipper tests
# and the demo's virtual Klipper printer. Idempotent: does nothing when the venv is ready.
#   scripts/moonraker-venv.sh [DIR]   (default .venv-moonraker next to this repository's .venv)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/.venv-moonraker}
version=0.11.0
stamp=$dir/.moonraker-$version
[ -f "$stamp" ] && exit 0
python3 -m venv "$dir"
"$dir/bin/python" -m pip install -q "moonraker==$version" 2>&1 | grep -v "is ignored" || true
"$dir/bin/python" -c "import moonraker.server" 
touch "$stamp"
