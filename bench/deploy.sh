#!/usr/bin/env bash
# Deployment benchmark: N lab BMCs (default 50, 127.79.51.x), registered, one ISO, then one
# deployment on one server alone and N deployments in parallel; prints how long each took to
# reach `installing` (media inserted, boot once from Cd, reset) and the ratio (target < 2), and
# the BMC sessions left open. Each deployment waiting in `installing` holds a worker, so the
# server runs with MOJO_WORKERS=N+2. Plain HTTP on 127.0.0.1, SQLite.
#
#   bench/deploy.sh
#
# Settings: N (50), PORT (18585), PROFILE (release | debug), BUILD=0 to use the binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50}
PORT=${PORT:-18585}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"
LAB=../shared/redfish-lab/bmc-lab.sh

if [ "${BUILD:-1}" != 0 ]; then
    if [ "$PROFILE" = release ]; then cargo build --release --bin mojo-server; else cargo build --bin mojo-server; fi
fi
BIN="$TARGET/$PROFILE/mojo-server"

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
    MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 MOJO_WORKERS=$(( N + 2 )) MOJO_DB_POOL_SIZE=16 \
    "$BIN" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf "${BASE}/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)

bash "$LAB" start "$N" --base 127.79.51.1 --single-process >/dev/null
last=$(awk -F'\t' 'END {print $2}' "$BMCLAB_STATE/manifest.tsv")
range=$(json "{\"name\":\"lab\",\"ip_from\":\"127.79.51.1\",\"ip_to\":\"${last}\",\"ports\":[9443]}" \
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
servers=$(api "${BASE}/api/server/?page_size=1000" | jq -r '.results[].id')
head -c 1048576 /dev/urandom >"$dir/bench.iso"
os=$(api -F name=bench -F os_family=linux -F "file=@$dir/bench.iso" "${BASE}/api/os/" | jq .id)

# Starts deployments on the given servers; waits until every one reads installing; prints seconds.
run() {
    local t0 t1 ids=() d
    t0=$(date +%s.%N)
    for s in "$@"; do
        ids+=("$(json "{\"os\":${os}}" "/api/server/${s}/deploy/" | jq .id)")
    done
    for d in "${ids[@]}"; do
        for _ in $(seq 3000); do
            case "$(api "${BASE}/api/deployment/${d}/" | jq -r '.step + "/" + .status')" in
                installing/running) break ;;
                */queued|*/running) sleep 0.05 ;;
                *) api "${BASE}/api/deployment/${d}/" >&2; exit 1 ;;
            esac
        done
    done
    t1=$(date +%s.%N)
    for d in "${ids[@]}"; do json '{}' "/api/deployment/${d}/cancel/" >/dev/null; done
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
set -- $servers
first=$1
one=$(run "$first")
many=$(run $servers)
echo "== deployments reaching installing: 1 alone ${one} s; ${N} in parallel ${many} s"
awk -v a="$one" -v b="$many" 'BEGIN { printf "  ratio %.2f (target < 2)\n", b / a }'
open=0
while IFS=$'\t' read -r _ ip port _; do
    open=$(( open + $(curl -sk "https://${ip}:${port}/lab/state" | jq .sessions_open) ))
done <"$BMCLAB_STATE/manifest.tsv"
echo "  BMC sessions open afterwards: ${open}"
