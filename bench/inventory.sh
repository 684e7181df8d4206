#!/usr/bin/env bash
# Inventory benchmark: 10,000 servers (2 CPUs, 4 NICs, 1 controller with 8 drives, 20 firmware
# items each) in 50 pools, served by the release binary over plain HTTP on 127.0.0.1, measured
# with wrk on SQLite and on PostgreSQL.
#
#   bench/inventory.sh                 # both backends
#   BACKENDS=sqlite bench/inventory.sh # one backend
#
# Settings: DURATION (wrk run length, default 10s), WARMUP (unmeasured run before each, 2s),
# PORT (default 18580), MOJO_BENCH_PG_URL (server URL without database, default
# postgres://postgres@127.0.0.1:5432), SERVERS, POOLS, BUILD=0 to use the release binaries
# already built.
# Targets: filtered page >= 2,000 req/s with p99 < 50 ms on both backends; all 10,000 servers
# unpaginated < 120 ms; peak RSS < 150 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
PORT=${PORT:-18580}
SERVERS=${SERVERS:-10000}
POOLS=${POOLS:-50}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PG_BASE=${MOJO_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"

if [ "${BUILD:-1}" != 0 ]; then
    cargo build --release --bin mojo-server --example seed_inventory
fi
BIN="$TARGET/release/mojo-server"
SEED="$TARGET/release/examples/seed_inventory"

if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

# wrk --latency output -> "req/s p50 p99" (latencies in ms).
summarise() {
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
            return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx/ { bad = $NF }
        END { printf "%10.0f req/s  p50 %7.2f ms  p99 %7.2f ms%s\n", rps, p50, p99, (bad ? "  NON-2XX: " bad : "") }'
}

peak_rss() {
    awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/${SERVER_PID}/status"
}

measure() { # name connections path
    local out
    # A short unmeasured run first, so every request is measured warm.
    wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "$WARMUP" \
        -H "Authorization: Bearer ${TOKEN}" "${BASE}$3" >/dev/null
    out=$(wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "$DURATION" --latency \
        -H "Authorization: Bearer ${TOKEN}" "${BASE}$3")
    printf "  %-44s c=%-3s %s  (peak RSS so far %s)\n" "$1" "$2" "$(summarise <<<"$out")" "$(peak_rss)"
}

run_backend() {
    local backend=$1 dir url db="" pid
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        db="mojo_bench_$$"
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
    pid=$!
    SERVER_PID=$pid
    for _ in $(seq 100); do
        curl -sf "${BASE}/readyz" >/dev/null && break
        sleep 0.2
    done
    echo "== ${backend}: loading ${SERVERS} servers in ${POOLS} pools"
    "$SEED" "$url" "$SERVERS" "$POOLS" | sed 's/^/  /'
    TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)
    local pool server
    pool=$(curl -sf -H "Authorization: Bearer ${TOKEN}" "${BASE}/api/pool/?ordering=id&page_size=1" | jq '.results[0].id')
    server=$(curl -sf -H "Authorization: Bearer ${TOKEN}" "${BASE}/api/server/?page_size=1" | jq '.results[0].id')
    local total
    total=$(curl -sf -H "Authorization: Bearer ${TOKEN}" "${BASE}/api/server/" | jq '.count')
    echo "  unpaginated /api/server/ returns ${total} servers"
    measure "GET /api/server/?search=PowerEdge&pool&name" 64 \
        "/api/server/?search=PowerEdge&resource_pool=${pool}&ordering=name&page_size=50"
    measure "GET /api/server/{id}/storages/" 64 "/api/server/${server}/storages/"
    measure "GET /api/pool/{id}/" 64 "/api/pool/${pool}/"
    measure "GET /api/server/ (all ${total})" 1 "/api/server/"
    echo "  peak RSS: $(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/${pid}/status")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    if [ -n "$db" ]; then
        psql "${PG_BASE}/postgres" -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null
    fi
    rm -rf "$dir"
}

for b in $BACKENDS; do
    run_backend "$b"
done
