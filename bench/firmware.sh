#!/usr/bin/env bash
# Pool firmware update benchmark: N lab BMCs (default 100, 127.79.50.x) with --task-ms 2000,
# registered, put in one pool, and one POST /api/pool/{id}/firmware_update/; prints the job's
# wall time next to the bound ceil(N / MOJO_FIRMWARE_CONCURRENCY) * 2 s, and the BMC sessions
# left open. Plain HTTP on 127.0.0.1, SQLite.
#
#   bench/firmware.sh
#
# Settings: N (100), CONCURRENCY (MOJO_FIRMWARE_CONCURRENCY, default 8), TASK_MS (2000),
# PORT (18583), BUILD=0 to use the release binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100}
CONCURRENCY=${CONCURRENCY:-8}
TASK_MS=${TASK_MS:-2000}
PORT=${PORT:-18583}
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
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    bash "$LAB" stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
api() { curl -sf -H "Authorization: Bearer ${TOKEN}" "$@"; }
json() { api -H 'Content-Type: application/json' -d "$1" "${BASE}$2"; }

MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir/data" \
    MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
    MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 MOJO_FIRMWARE_CONCURRENCY="$CONCURRENCY" \
    "$BIN" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf "${BASE}/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)

bash "$LAB" start "$N" --base 127.79.50.1 --mockups public-rackmount1 --single-process \
    --task-ms "$TASK_MS" >/dev/null
last=$(awk -F'\t' 'END {print $2}' "$BMCLAB_STATE/manifest.tsv")
range=$(json "{\"name\":\"lab\",\"ip_from\":\"127.79.50.1\",\"ip_to\":\"${last}\",\"ports\":[9443]}" \
    /api/node_discovery/scan_range/ | jq .id)
json "{\"scan_ranges\":[${range}]}" /api/node_discovery/run_scan/ >/dev/null
for _ in $(seq 300); do
    [ "$(api "${BASE}/api/node_discovery/scan_range/${range}/" | jq -r .status)" != scanning ] && break
    sleep 0.2
done
profile=$(json '{"node_classification":"lab","bmc":"redfish"}' /api/node_discovery/auth_profile/ | jq .id)
json '{"username":"root","password":"calvin"}' "/api/node_discovery/auth_profile/${profile}/credentials/" >/dev/null
# 16 registrations at a time. (A bare `wait` here would also wait for the server, started in
# the background above, and never return: that was the hang in setup.)
api "${BASE}/api/node/?scan_range=${range}&page_size=1000" | jq '.results[].id' |
    xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer ${TOKEN}" \
        -H 'Content-Type: application/json' -d "{\"auth_profile\":${profile}}" \
        "${BASE}/api/node/{}/register/" >"$dir/codes"
registered=$(grep -c '^200$' "$dir/codes" || true)
if [ "$registered" != "$N" ]; then
    echo "only ${registered} of ${N} BMCs registered (answers: $(sort "$dir/codes" | uniq -c | xargs))" >&2
    exit 1
fi
pool=$(json '{"name":"bench","group":1}' /api/pool/ | jq .id)
servers=$(api "${BASE}/api/server/?page_size=1000" | jq -c '[.results[].id]')
json "{\"servers\":${servers}}" "/api/pool/${pool}/assign_servers/" >/dev/null
printf 'VERSION=7.7.7\nbench image\n' >"$dir/fw.bin"
fw=$(api -F name=bench -F firmware_type=BIOS -F version=7.7.7 -F "file=@$dir/fw.bin" "${BASE}/api/firmware/" | jq .id)

echo "== ${N} BMCs (--task-ms ${TASK_MS}), MOJO_FIRMWARE_CONCURRENCY=${CONCURRENCY}"
t0=$(date +%s.%N)
job=$(json "{\"firmware\":${fw}}" "/api/pool/${pool}/firmware_update/" | jq .id)
for _ in $(seq 6000); do
    st=$(api "${BASE}/api/job/${job}/" | jq -r .status)
    case "$st" in queued|running) sleep 0.1 ;; *) break ;; esac
done
t1=$(date +%s.%N)
api "${BASE}/api/job/${job}/" | jq -c '{status, progress, error}'
awk -v a="$t0" -v b="$t1" -v n="$N" -v c="$CONCURRENCY" -v t="$TASK_MS" 'BEGIN {
    bound = int((n + c - 1) / c) * t / 1000
    printf "  wall %.1f s; ceil(%d / %d) * %.1f s = %.1f s; ratio %.2f (target < 2)\n", b - a, n, c, t / 1000, bound, (b - a) / bound }'
open=0
while IFS=$'\t' read -r _ ip port _; do
    open=$(( open + $(curl -sk "https://${ip}:${port}/lab/state" | jq .sessions_open) ))
done <"$BMCLAB_STATE/manifest.tsv"
echo "  BMC sessions open afterwards: ${open}"
