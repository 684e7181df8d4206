#!/usr/bin/env bash
# Compliance benchmark: the inventory seed (10,000 servers with 20 firmware items each, 40 %
# Dell PowerEdge, the rest HPE ProLiant, in 50 pools), a baseline of three binaries (a BIOS and a
# BMC package for Dell, a BIOS package for any vendor), and the time of
# GET /api/firmware_baseline/{id}/compliance/ for every server, for one pool and for one
# server, served by the release binary over plain HTTP on 127.0.0.1.
#
#   bench/compliance.sh                  # both backends
#   BACKENDS=sqlite bench/compliance.sh  # one backend
#
# Settings: RUNS (timed requests per case, default 10; the median is printed), PORT (18581),
# MOJO_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), SERVERS, POOLS, BUILD=0 to
# use the release binaries already built. Target: all 10,000 servers < 200 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
PORT=${PORT:-18581}
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

upload() { # name type version manufacturer
    local f
    f=$(mktemp)
    printf 'VERSION=%s\n%s %s\n' "$3" "$1" "$RANDOM$RANDOM" >"$f"
    curl -sf -H "Authorization: Bearer ${TOKEN}" -F "name=$1" -F "firmware_type=$2" \
        -F "version=$3" -F "manufacturer=$4" -F "file=@$f;filename=$1.bin" \
        "${BASE}/api/firmware/" | jq .id
    rm -f "$f"
}

# Median of RUNS timed GETs of a path, in ms, plus the answer's size.
timed() { # label path
    local times=() t size
    curl -sf -o /dev/null -H "Authorization: Bearer ${TOKEN}" "${BASE}$2" # warm-up
    for _ in $(seq "$RUNS"); do
        t=$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' \
            -H "Authorization: Bearer ${TOKEN}" "${BASE}$2")
        size=${t#* }
        times+=("$(awk -v s="${t% *}" 'BEGIN {printf "%.1f", s * 1000}')")
    done
    printf "  %-34s median %7s ms  (%s runs, %s bytes)\n" "$1" \
        "$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
        "$RUNS" "$size"
}

run_backend() {
    local backend=$1 dir url db="" pid
    dir=$(mktemp -d)
    if [ "$backend" = postgres ]; then
        db="mojo_bench_c$$"
        psql "${PG_BASE}/postgres" -qc "CREATE DATABASE ${db}" >/dev/null
        url="${PG_BASE}/${db}"
    else
        url="sqlite://${dir}/mojo.db"
    fi
    MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir" DATABASE_URL="$url" \
        MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
        MOJO_SECRET_KEY=bench-jwt-secret-0123456789abcdef \
        MOJO_CREDENTIAL_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
        MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 "$BIN" >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -sf "${BASE}/readyz" >/dev/null && break
        sleep 0.2
    done
    echo "== ${backend}: loading ${SERVERS} servers in ${POOLS} pools"
    "$SEED" "$url" "$SERVERS" "$POOLS" | sed 's/^/  /'
    TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)
    local a b c baseline pool server
    a=$(upload dell-bios BIOS 2.19.1 Dell)
    b=$(upload dell-idrac BMC 7.10.30 Dell)
    c=$(upload any-bios BIOS 1.0.0 "")
    baseline=$(curl -sf -H "Authorization: Bearer ${TOKEN}" -H 'Content-Type: application/json' \
        -d "{\"name\":\"bench\",\"firmware_binaries\":[${a},${b},${c}]}" \
        "${BASE}/api/firmware_baseline/" | jq .id)
    pool=$(curl -sf -H "Authorization: Bearer ${TOKEN}" "${BASE}/api/pool/?ordering=id&page_size=1" | jq '.results[0].id')
    server=$(curl -sf -H "Authorization: Bearer ${TOKEN}" "${BASE}/api/server/?page_size=1" | jq '.results[0].id')
    echo "  servers in the report: $(curl -sf -H "Authorization: Bearer ${TOKEN}" \
        "${BASE}/api/firmware_baseline/${baseline}/compliance/" | jq '.servers | length')"
    timed "compliance, every server" "/api/firmware_baseline/${baseline}/compliance/"
    timed "compliance, one pool" "/api/firmware_baseline/${baseline}/compliance/?resource_pool=${pool}"
    timed "compliance, one server" "/api/firmware_baseline/${baseline}/compliance/?server=${server}"
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
