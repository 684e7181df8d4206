#!/usr/bin/env bash
# Zero-touch onboarding benchmark: a /24 (127.79.1.0/24) with N lab BMCs (default 100, from
# 127.79.1.1, started with --lockout 3) and one scan range over the whole /24 created with
# `rescan_interval`, `auth_profile`, `auto_register` and `resource_pool`. No API call follows the
# range's creation: the scheduler starts the scan, the scan registers what it finds and puts the
# servers in the pool. Prints the time from the range's creation until the scan started (the
# scheduler's tick), until all N servers were in the pool and until the range was ready again,
# then the BMC sessions left open and the lockouts triggered (both must be 0). Plain HTTP on
# 127.0.0.1, SQLite.
#
#   bench/onboarding.sh
#
# Settings: N (100), TICK_MS (MOJO_SCHEDULER_TICK_MS, the scheduler's period; default 5000, the
# server's default), PORT (18586), BUILD=0 to use the release binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100}
TICK_MS=${TICK_MS:-5000}
PORT=${PORT:-18586}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"
LAB=../shared/redfish-lab/bmc-lab.sh

if [ "${BUILD:-1}" != 0 ]; then
    cargo build --release --bin mojo-server
fi
BIN="$TARGET/release/mojo-server"

dir=$(mktemp -d)
export BMCLAB_STATE="$dir/lab"
cleanup() {
    if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    bash "$LAB" stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
api() { curl -sf -H "Authorization: Bearer ${TOKEN}" "$@"; }
json() { api -H 'Content-Type: application/json' -d "$1" "${BASE}$2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

bash "$LAB" start "$N" --base 127.79.1.1 --single-process --lockout 3 >/dev/null

MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir/data" \
    MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
    MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 MOJO_SCHEDULER_TICK_MS="$TICK_MS" \
    "$BIN" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 150); do
    curl -sf "${BASE}/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)

pool=$(json '{"name":"onboarding","group":1}' /api/pool/ | jq .id)
profile=$(json '{"node_classification":"onboarding","bmc":"redfish"}' /api/node_discovery/auth_profile/ | jq .id)
json '{"username":"root","password":"calvin"}' "/api/node_discovery/auth_profile/${profile}/credentials/" >/dev/null

echo "== /24 with ${N} BMCs (--lockout 3), MOJO_SCHEDULER_TICK_MS=${TICK_MS}, MOJO_BMC_CONCURRENCY default"
t0=$(now)
range=$(json "{\"name\":\"rack\",\"ip_from\":\"127.79.1.1\",\"ip_to\":\"127.79.1.254\",\"ports\":[9443],
    \"rescan_interval\":3600,\"auth_profile\":${profile},\"auto_register\":true,\"resource_pool\":${pool}}" \
    /api/node_discovery/scan_range/ | jq .id)
t_start="" t_pool="" t_ready="" in_pool=0
for _ in $(seq 3000); do
    r=$(api "${BASE}/api/node_discovery/scan_range/${range}/")
    st=$(jq -r .status <<<"$r")
    if [ -z "$t_start" ] && [ "$st" = scanning ]; then t_start=$(now); fi
    if [ -z "$t_pool" ]; then
        in_pool=$(api "${BASE}/api/server/?resource_pool=${pool}&page_size=1" | jq .count)
        if [ "$in_pool" -ge "$N" ]; then t_pool=$(now); fi
    fi
    if [ -n "$t_start" ] && [ "$st" != scanning ]; then t_ready=$(now); fi
    if [ -n "$t_pool" ] && [ -n "$t_ready" ]; then break; fi
    sleep 0.1
done
api "${BASE}/api/node_discovery/scan_range/${range}/" | jq -c '{status, progress, last_error}'
if [ -z "$t_pool" ]; then
    echo "  only ${in_pool} of ${N} servers reached the pool within 300 s" >&2
    exit 1
fi
t_start=${t_start:-$t0}
echo "  from the range's creation: scan started $(since "$t0" "$t_start") s (the scheduler's tick)," \
    "all ${in_pool} servers in the pool $(since "$t0" "$t_pool") s, range ready $(since "$t0" "${t_ready:-$t_pool}") s"
echo "  from the scan's start: all ${in_pool} servers in the pool $(since "$t_start" "$t_pool") s"
open=0 locked=0
while IFS=$'\t' read -r _ ip port _; do
    s=$(curl -sk "https://${ip}:${port}/lab/state")
    open=$(( open + $(jq .sessions_open <<<"$s") ))
    locked=$(( locked + $(jq .lockout.times_triggered <<<"$s") ))
done <"$BMCLAB_STATE/manifest.tsv"
echo "  BMC sessions open afterwards: ${open}; lockouts triggered: ${locked}"
