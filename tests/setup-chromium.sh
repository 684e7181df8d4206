#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages for tests/docs_ui.rs, if it is missing.
# Idempotent: does nothing when `chromium` (or $MOJO_CHROMIUM) already runs.
set -euo pipefail

bin="${MOJO_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
    sudo=sudo
else
    sudo=
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$bin" --version >&2
