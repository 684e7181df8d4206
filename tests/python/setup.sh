#!/usr/bin/env bash
# Creates (or refreshes) a Python venv of pinned tools. Without a set name: the schema tests' venv
# (openapi-spec-validator and openapi-python-client, requirements.txt). With a set name NAME:
# NAME-requirements.txt (fuzz: schemathesis; generators: openapi-generator-cli and the generated
# Python client's runtime; ansible: ansible-core). Idempotent: a stamp of the requirements
# file's hash skips the install when nothing changed.
# Usage: tests/python/setup.sh [VENV_DIR] [NAME]
#   (default VENV_DIR: <repo>/target/pyvenv, env MOJO_PYVENV; with NAME: <repo>/target/pyvenv-NAME)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
set_name="${2:-}"
if [[ -n "$set_name" ]]; then
    venv="${1:-$repo/target/pyvenv-$set_name}"
    requirements="$here/$set_name-requirements.txt"
else
    venv="${1:-${MOJO_PYVENV:-$repo/target/pyvenv}}"
    requirements="$here/requirements.txt"
fi
[[ -f "$requirements" ]] || { echo "setup.sh: no $requirements" >&2; exit 1; }
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
