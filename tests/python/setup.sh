#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the schema tests use: openapi-spec-validator and
# openapi-python-client at the versions pinned in requirements.txt. Idempotent: a stamp of
# requirements.txt's hash skips the install when nothing changed.
# Usage: tests/python/setup.sh [VENV_DIR]   (default: <repo>/target/pyvenv; env MOJO_PYVENV)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-${MOJO_PYVENV:-$repo/target/pyvenv}}"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
stamp="$venv/.requirements.sha256"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

command -v "$python" >/dev/null || { echo "setup.sh: $python not found" >&2; exit 1; }
if ! "$python" -m venv --clear "$venv"; then
    echo "setup.sh: cannot create a venv with $python (on Debian: apt-get install -y python3-venv)" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
echo "$want" > "$stamp"
echo "setup.sh: Python tools installed in $venv" >&2
