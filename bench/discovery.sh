#!/usr/bin/env bash
# Discovery benchmark: scan a /24 holding 50 emulated BMCs (204 empty addresses) and a /20
# holding 200, then register the 50 with 50 parallel calls, and count BMC sessions left open.
#
#   cargo build --release && MOJO_BIN=target/release/mojo-server bench/discovery.sh
# Targets: the /24 scan under 1 s; 50 registrations with full inventory under 10 s; 0 sessions.
# Loopback only: 127.79.96.0/24 and 127.79.80.0/20.
set -euo pipefail

: "${MOJO_BIN:?set MOJO_BIN to the (release) mojo-server binary}"
HERE="$(cd "$(dirname "$0")" && pwd)"
LAB="${HERE}/../../shared/redfish-lab/bmc-lab.sh"
PORT_BMC="${BENCH_LAB_PORT:-9443}"
STATE_A="$(mktemp -d)"; STATE_B="$(mktemp -d)"; DATA_DIR="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "${SERVER_PID}" ]; then kill "${SERVER_PID}" 2>/dev/null || true; wait "${SERVER_PID}" 2>/dev/null || true; fi
    BMCLAB_STATE="${STATE_A}" bash "${LAB}" stop >/dev/null 2>&1 || true
    BMCLAB_STATE="${STATE_B}" bash "${LAB}" stop >/dev/null 2>&1 || true
    rm -rf "${DATA_DIR}" "${STATE_A}" "${STATE_B}"
}
trap cleanup EXIT
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

echo "starting labs (50 BMCs in 127.79.96.0/24, 200 in 127.79.80.0/20)..."
BMCLAB_STATE="${STATE_A}" bash "${LAB}" start 50 --persona dell --base 127.79.96.1 --port "${PORT_BMC}" >/dev/null
BMCLAB_STATE="${STATE_B}" bash "${LAB}" start 200 --single-process --base 127.79.80.1 --port "${PORT_BMC}" >/dev/null
# `start` may return a moment before the sockets accept.
wait_up() { for _ in $(seq 1 200); do curl -s -k -o /dev/null "https://$1:${PORT_BMC}/lab/state" && return; sleep 0.05; done; }
for i in $(seq 1 50); do wait_up "127.79.96.${i}"; done
for i in $(seq 0 199); do wait_up "127.79.$((80 + (i + 1) / 256)).$(((i + 1) % 256))"; done

PORT="${PORT:-18584}"
MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="${DATA_DIR}" MOJO_ADMIN_PASSWORD=bench-admin-password \
    MOJO_TLS=off MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_LOG="${MOJO_LOG:-warn}" \
    "${MOJO_BIN}" serve 2>"${DATA_DIR}/server.log" &
SERVER_PID=$!
H="http://127.0.0.1:${PORT}"
for _ in $(seq 1 100); do curl -s "${H}/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(curl -s -X POST -H "Content-Type: application/json" \
    -d '{"username": "admin", "password": "bench-admin-password"}' "${H}/api/token/" | jq -r .access)
api() { curl -s -H "Authorization: Bearer ${TOKEN}" -H "Content-Type: application/json" "$@"; }

scan() { # name from to -> prints "seconds probes found"
    local id t0 t1 st
    id=$(api -X POST -d "{\"name\":\"$1\",\"ip_from\":\"$2\",\"ip_to\":\"$3\",\"ports\":[${PORT_BMC}]}" \
        "${H}/api/node_discovery/scan_range/" | jq -r .id)
    t0=$(now)
    api -X POST -d "{\"scan_ranges\":[${id}]}" "${H}/api/node_discovery/run_scan/" >/dev/null
    while :; do
        st=$(api "${H}/api/node_discovery/scan_range/${id}/")
        [ "$(jq -r .status <<<"${st}")" != "scanning" ] && break
        sleep 0.02
    done
    t1=$(now)
    echo "$(elapsed "${t0}" "${t1}") $(jq -r .progress.total <<<"${st}") $(jq -r .progress.found <<<"${st}") ${id}"
}

read -r T24 P24 F24 R24 < <(scan "bench /24" 127.79.96.1 127.79.96.254)
echo "/24: ${P24} probes, ${F24} BMCs found in ${T24} s ($(python3 -c "print(round(${P24}/${T24}))") probes/s)"
read -r T20 P20 F20 _ < <(scan "bench /20" 127.79.80.1 127.79.95.254)
echo "/20: ${P20} probes, ${F20} BMCs found in ${T20} s ($(python3 -c "print(round(${P20}/${T20}))") probes/s)"

PROFILE=$(api -X POST -d '{"node_classification":"bench","bmc":"redfish"}' "${H}/api/node_discovery/auth_profile/" | jq -r .id)
api -X POST -d '{"username":"root","password":"calvin"}' "${H}/api/node_discovery/auth_profile/${PROFILE}/credentials/" >/dev/null
NODES=$(api "${H}/api/node/?scan_range=${R24}" | jq -r '.results[].id')
t0=$(now)
printf '%s\n' ${NODES} | xargs -P 50 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    -H "Authorization: Bearer ${TOKEN}" -H "Content-Type: application/json" \
    -X POST -d "{\"auth_profile\": ${PROFILE}}" "${H}/api/node/{}/register/" > "${DATA_DIR}/codes"
t1=$(now)
OK=$(grep -c '^200$' "${DATA_DIR}/codes" || true)
echo "registration: ${OK}/$(wc -l < "${DATA_DIR}/codes") nodes registered in $(elapsed "${t0}" "${t1}") s (50 parallel calls)"

SERVERS=$(api "${H}/api/server/?page_size=1" | jq -r .count)
echo "servers with full inventory: ${SERVERS}"
OPEN=0
for i in $(seq 1 50); do
    n=$(curl -s -k "https://127.79.96.${i}:${PORT_BMC}/lab/state" | jq -r '.sessions_open // 0')
    OPEN=$((OPEN + n))
done
echo "open BMC sessions afterwards: ${OPEN}"
