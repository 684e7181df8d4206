#!/usr/bin/env bash
# The per-request floor: what an authenticated request costs before any handler work, as
# `GET /api/users/me/` (token check, cached identity, one user read, tiny JSON) against
# `GET /healthz` (no auth, no database), served by the release binary over plain HTTP on
# 127.0.0.1 and measured with wrk at 64 connections. Also prints the server's CPU time per
# request (from /proc, user + system), which is steadier than req/s on a shared machine.
#
#   bench/floor.sh                  # both backends
#   BACKENDS=sqlite bench/floor.sh  # one backend
#
# Settings: DURATION (default 10s), WARMUP (2s), CONNECTIONS (64), PORT (18481),
# MOJO_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), BUILD=0 to use the release
# binary already built.
# Target: users/me >= 15,000 req/s at c=64 on this machine (2 cores, wrk on the same cores).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18481}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_BASE=${MOJO_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"

if [ "${BUILD:-1}" != 0 ]; then
    cargo build --release --bin mojo-server
fi
BIN="$TARGET/release/mojo-server"
if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # name path
    local out c0 c1 rps p50 p99
    wrk -t 2 -c "$CONNECTIONS" -d "$WARMUP" -H "Authorization: Bearer ${TOKEN}" "${BASE}$2" >/dev/null
    c0=$(cpu_ticks "$SERVER_PID")
    out=$(wrk -t 2 -c "$CONNECTIONS" -d "$DURATION" --latency -H "Authorization: Bearer ${TOKEN}" "${BASE}$2")
    c1=$(cpu_ticks "$SERVER_PID")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    local total
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    printf "  %-22s %10.0f req/s  p50 %8s  p99 %8s  server CPU %6.1f us/request%s\n" "$1" "$rps" "$p50" "$p99" \
        "$(awk -v c="$((c1 - c0))" -v n="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {print n ? c * 1e6 / hz / n : 0}')" \
        "$(grep -q 'Non-2xx' <<<"$out" && echo "  NON-2XX: $(awk '/Non-2xx/ {print $NF}' <<<"$out")")"
}

run_backend() {
    local backend=$1 dir url db=""
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        db="mojo_floor_$$"
        psql "${PG_BASE}/postgres" -qc "CREATE DATABASE ${db}" >/dev/null
        url="${PG_BASE}/${db}"
    else
        url="sqlite://${dir}/mojo.db"
    fi
    MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir" DATABASE_URL="$url" \
        MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
        MOJO_SECRET_KEY=bench-jwt-secret-0123456789abcdef \
        MOJO_CREDENTIAL_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
        MOJO_LOGIN_THROTTLE=off MOJO_LOG=warn "$BIN" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -sf "${BASE}/readyz" >/dev/null && break
        sleep 0.2
    done
    TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)
    echo "== ${backend}"
    measure "GET /healthz" /healthz
    measure "GET /api/users/me/" /api/users/me/
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    if [ -n "$db" ]; then
        psql "${PG_BASE}/postgres" -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null
    fi
    rm -rf "$dir"
}

for b in $BACKENDS; do
    run_backend "$b"
done
