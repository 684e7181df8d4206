#!/usr/bin/env bash
# Deployment benchmark: N lab BMCs (default 50, 127.79.51.x), registered, one ISO, then one
# deployment on one server alone and N deployments in parallel (the N POSTs sent at once, the
# deployment list read once per round); prints how long each took to reach `installing` (media
# inserted, boot once from Cd, reset), the CPU the server and the lab used meanwhile, the ratio
# (target < 2), and the BMC sessions left open. A deployment waiting in `installing` holds no
# job worker (the queue's waiting state), so the server runs with its default MOJO_WORKERS.
# Plain HTTP on 127.0.0.1, SQLite.
#
#   bench/deploy.sh
#
# Settings: N (50), WORKERS (MOJO_WORKERS; the server's default when unset), LAB_OPTS
# (`--single-process`: one Python process for the N BMCs; empty: one process per BMC),
# PORT (18585), PROFILE (release | debug), BUILD=0 to use the binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50}
PORT=${PORT:-18585}
WORKERS=${WORKERS:-}
LAB_OPTS=${LAB_OPTS---single-process}
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
    MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 MOJO_DB_POOL_SIZE=16 \
    env ${WORKERS:+"MOJO_WORKERS=$WORKERS"} "$BIN" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf "${BASE}/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)

# shellcheck disable=SC2086
bash "$LAB" start "$N" --base 127.79.51.1 $LAB_OPTS >/dev/null
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

cpu() { # pid... -> CPU seconds (user + system) of those processes
    local t=0 p
    for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done
    awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}
lab_pids=$(xargs <"$BMCLAB_STATE/pids")
# Starts deployments on the given servers (all requests at once), then reads the deployment
# list (one request per round) until every one is `installing`; prints "seconds server-CPU lab-CPU".
run() {
    local t0 t1 n=$# c0 l0 got state
    c0=$(cpu "$pid"); l0=$(cpu $lab_pids)
    t0=$(date +%s.%N)
    printf '%s\n' "$@" | xargs -P 64 -I{} curl -sf -H "Authorization: Bearer ${TOKEN}" \
        -H 'Content-Type: application/json' -d "{\"os\":${os}}" "${BASE}/api/server/{}/deploy/" |
        jq .id >"$dir/ids"
    for _ in $(seq 6000); do
        state=$(api "${BASE}/api/deployment/?page_size=1000" | jq -c --slurpfile ids "$dir/ids" \
            '[.results[] | select(.id as $i | $ids | index($i))] |
             {installing: map(select(.step == "installing" and .status == "running")) | length,
              failed: map(select(.status != "running" and .status != "queued"))}')
        got=$(jq .installing <<<"$state")
        [ "$(jq '.failed | length' <<<"$state")" = 0 ] || { jq -c .failed <<<"$state" >&2; exit 1; }
        [ "$got" -ge "$n" ] && break
        sleep 0.02
    done
    [ "$got" -ge "$n" ] || { echo "only ${got} of ${n} deployments reached installing" >&2; exit 1; }
    t1=$(date +%s.%N)
    printf '%s\n' $(cat "$dir/ids") | xargs -P 16 -I{} curl -sf -o /dev/null -H "Authorization: Bearer ${TOKEN}" \
        -H 'Content-Type: application/json' -d '{}' "${BASE}/api/deployment/{}/cancel/"
    awk -v a="$t0" -v b="$t1" -v c="$(cpu "$pid")" -v c0="$c0" -v l="$(cpu $lab_pids)" -v l0="$l0" \
        'BEGIN { printf "%.2f %.2f %.2f\n", b - a, c - c0, l - l0 }'
}
set -- $servers
first=$1
read -r one one_cpu one_lab < <(run "$first")
sleep 1 # the cancel's eject settles
read -r many many_cpu many_lab < <(run $servers)
echo "== deployments reaching installing (MOJO_WORKERS=${WORKERS:-default}, lab ${LAB_OPTS:-one process per BMC}):"
echo "  1 alone ${one} s (server CPU ${one_cpu} s, lab CPU ${one_lab} s)"
echo "  ${N} in parallel ${many} s (server CPU ${many_cpu} s, lab CPU ${many_lab} s)"
awk -v a="$one" -v b="$many" 'BEGIN { printf "  ratio %.2f (target < 2)\n", b / a }'
open=0
while IFS=$'\t' read -r _ ip port _; do
    open=$(( open + $(curl -sk "https://${ip}:${port}/lab/state" | jq .sessions_open) ))
done <"$BMCLAB_STATE/manifest.tsv"
echo "  BMC sessions open afterwards: ${open}"
