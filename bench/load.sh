#!/usr/bin/env bash
# Mixed load: CLIENTS concurrent clients for DURATION seconds (lists/filters/details, PATCH of
# servers, assign/remove, token refreshes) against SERVERS seeded servers, on SQLite and on
# PostgreSQL, with the release binary over plain HTTP on 127.0.0.1. Fails on any 5xx, transport
# error, lost write, or `database is locked` in the server log.
#
#   bench/load.sh                                  # 200 clients, 60 s, 10,000 servers, both backends
#   CLIENTS=64 DURATION=30 BACKENDS=sqlite bench/load.sh
#   bench/load.sh ci                               # .ci/run's variant: 64 clients, 30 s, debug build
#
# The `ci` mode runs 64 clients for 30 s against 2,000 servers on both backends with debug
# binaries (PROFILE=debug, PORT 18571; `cargo build` of the server and the two examples is cheap
# after the tests, which do not refresh target/debug/examples/load themselves): it checks
# correctness under concurrency (5xx, lost writes, `database is locked`), its numbers are not
# benchmarks.
#
# Settings: CLIENTS (200), DURATION (60), SERVERS (10000), POOLS (50), BACKENDS, PORT (18570),
# MOJO_BENCH_PG_URL (postgres://postgres@127.0.0.1:5432), PROFILE (release | debug), BUILD=0 to
# reuse the binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = ci ]; then
    CLIENTS=64 DURATION=30 SERVERS=2000 POOLS=20 PROFILE=debug PORT=${PORT:-18571}
fi
CLIENTS=${CLIENTS:-200}
DURATION=${DURATION:-60}
SERVERS=${SERVERS:-10000}
POOLS=${POOLS:-50}
PORT=${PORT:-18570}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_BASE=${MOJO_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"

if [ "${BUILD:-1}" != 0 ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release --bin mojo-server --example seed_inventory --example load
    else
        cargo build --bin mojo-server --example seed_inventory --example load
    fi
fi
BIN="$TARGET/$PROFILE/mojo-server"

run_backend() {
    local backend=$1 dir url db="" pid rc=0
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        db="mojo_load_$$"
        psql "${PG_BASE}/postgres" -qc "CREATE DATABASE ${db}" >/dev/null
        url="${PG_BASE}/${db}"
    else
        url="sqlite://${dir}/mojo.db"
    fi
    if curl -s -o /dev/null "${BASE}/readyz"; then
        echo "something already answers on ${BASE}: pick another PORT" >&2
        return 1
    fi
    echo "== ${backend}: seeding ${SERVERS} servers in ${POOLS} pools"
    "$TARGET/$PROFILE/examples/seed_inventory" "$url" "$SERVERS" "$POOLS" | sed 's/^/  /'
    MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir" DATABASE_URL="$url" \
        MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
        MOJO_SECRET_KEY=bench-jwt-secret-0123456789abcdef \
        MOJO_CREDENTIAL_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
        MOJO_LOGIN_THROTTLE=off MOJO_LOG=warn "$BIN" >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 150); do
        curl -sf "${BASE}/readyz" >/dev/null && break
        sleep 0.2
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "  the server exited at start-up:" >&2
        tail -5 "$dir/server.log" >&2
        return 1
    fi
    RUST_BACKTRACE=0 MOJO_LOAD_PASSWORD=bench-admin-password \
        "$TARGET/$PROFILE/examples/load" "$BASE" "$CLIENTS" "$DURATION" "$pid" || rc=$?
    local locked
    locked=$(grep -c "database is locked" "$dir/server.log" || true)
    echo "  'database is locked' in the server log: ${locked}"
    [ "$locked" = 0 ] || rc=1
    if ! kill "$pid" 2>/dev/null; then
        echo "  the server died during the run; the end of its log:"
        tail -20 "$dir/server.log"
        rc=1
    fi
    wait "$pid" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        echo "  server log lines at WARN or above: $(grep -cE ' (WARN|ERROR) ' "$dir/server.log" || true)"
        grep -E ' (WARN|ERROR) ' "$dir/server.log" | sort | uniq -c | sort -rn | head -5 | cut -c1-300
    fi
    if [ -n "$db" ]; then
        psql "${PG_BASE}/postgres" -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null
    fi
    rm -rf "$dir"
    return "$rc"
}

status=0
for b in $BACKENDS; do
    run_backend "$b" || status=1
done
exit "$status"
