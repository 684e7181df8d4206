#!/usr/bin/env bash
# Media benchmark: a 1 GiB firmware image uploaded, downloaded through the streamed file path
# that /media/ URLs and /api/firmware/{id}/download/ share, fetched by a lab BMC through a signed
# media URL (SimpleUpdate), and pushed to a lab BMC as a streamed multipart body; prints the time
# of each and the server's RSS growth over its idle RSS (peak RSS is reset before each phase).
# Plain HTTP on 127.0.0.1, SQLite, lab BMCs on 127.79.40.x.
#
#   bench/media.sh
#
# Settings: SIZE (default 1GiB, any `truncate -s` size), PORT (18582), BUILD=0 to use the
# release binary already built. Target: RSS growth < 50 MB for the download and the push.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1G}
PORT=${PORT:-18582}
TARGET=${CARGO_TARGET_DIR:-target}
BASE="http://127.0.0.1:${PORT}"
LAB=../shared/redfish-lab/bmc-lab.sh

if [ "${BUILD:-1}" != 0 ]; then
    cargo build --release --bin mojo-server
fi
BIN="$TARGET/release/mojo-server"

dir=$(mktemp -d)
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    BMCLAB_STATE="$dir/lab1" bash "$LAB" stop >/dev/null 2>&1 || true
    BMCLAB_STATE="$dir/lab2" bash "$LAB" stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

rss() { awk '/VmRSS/ {print $2}' "/proc/${pid}/status"; }
peak() { awk '/VmHWM/ {print $2}' "/proc/${pid}/status"; }
# Peak RSS is reset before each phase; growth is that phase's peak over the RSS it started at.
reset_peak() { echo 5 >"/proc/${pid}/clear_refs"; START_RSS=$(rss); }
growth() { awk -v p="$(peak)" -v b="$START_RSS" 'BEGIN {printf "%.1f MB", (p - b) / 1024}'; }
api() { curl -sf -H "Authorization: Bearer ${TOKEN}" "$@"; }
wait_job() {
    local st
    for _ in $(seq 3000); do
        st=$(api "${BASE}/api/job/$1/" | jq -r .status)
        case "$st" in queued|running) sleep 0.2 ;; *) echo "$st"; return ;; esac
    done
    echo timeout
}

MOJO_TLS=off MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="$dir/data" \
    MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_ADMIN_PASSWORD=bench-admin-password \
    MOJO_LOGIN_THROTTLE=off MOJO_POWER_POLL_SECS=0 MOJO_MAX_UPLOAD=8GiB "$BIN" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf "${BASE}/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"bench-admin-password"}' "${BASE}/api/token/" | jq -r .access)

mkimage() { # file version
    printf 'VERSION=%s\n' "$2" >"$1"
    truncate -s "$SIZE" "$1"
}
mkimage "$dir/a.bin" 9.0.1
mkimage "$dir/b.bin" 9.0.2
head -c 64 /dev/urandom >>"$dir/b.bin" # another sha256
IDLE=$(rss)
echo "== idle RSS $(awk -v b="$IDLE" 'BEGIN {printf "%.1f MB", b / 1024}'), image size $(stat -c %s "$dir/a.bin") bytes"

reset_peak
t0=$(date +%s.%N)
id_a=$(api -F name=a -F firmware_type=BIOS -F version=9.0.1 -F "file=@$dir/a.bin" "${BASE}/api/firmware/" | jq .id)
id_b=$(api -F name=b -F firmware_type=BIOS -F version=9.0.2 -F "file=@$dir/b.bin" "${BASE}/api/firmware/" | jq .id)
echo "  upload x2            $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%6.1f s", b - a}')  RSS growth $(growth)"

reset_peak
out=$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' -H "Authorization: Bearer ${TOKEN}" \
    "${BASE}/api/firmware/${id_a}/download/")
echo "  download             $(awk -v t="${out% *}" 'BEGIN {printf "%6.1f s", t}')  ${out#* } bytes  RSS growth $(growth)"

# Lab BMCs: one fetching through SimpleUpdate, one taking a multipart push.
BMCLAB_STATE="$dir/lab1" bash "$LAB" start 1 --base 127.79.40.1 --mockups public-rackmount1 --task-ms 400 >/dev/null
BMCLAB_STATE="$dir/lab2" bash "$LAB" start 1 --base 127.79.41.1 --mockups public-rackmount1 --task-ms 400 \
    --multipart-push --no-simple-update --seed mediabench2 >/dev/null
register() { # ip -> server id
    local range node profile
    range=$(api -H 'Content-Type: application/json' -d "{\"name\":\"$1\",\"ip_from\":\"$1\",\"ip_to\":\"$1\",\"ports\":[9443]}" \
        "${BASE}/api/node_discovery/scan_range/" | jq .id)
    api -H 'Content-Type: application/json' -d "{\"scan_ranges\":[${range}]}" "${BASE}/api/node_discovery/run_scan/" >/dev/null
    for _ in $(seq 100); do
        [ "$(api "${BASE}/api/node_discovery/scan_range/${range}/" | jq -r .status)" != scanning ] && break
        sleep 0.2
    done
    profile=$(api -H 'Content-Type: application/json' -d "{\"node_classification\":\"$1\",\"bmc\":\"redfish\"}" \
        "${BASE}/api/node_discovery/auth_profile/" | jq .id)
    api -H 'Content-Type: application/json' -d '{"username":"root","password":"calvin"}' \
        "${BASE}/api/node_discovery/auth_profile/${profile}/credentials/" >/dev/null
    node=$(api "${BASE}/api/node/?scan_range=${range}" | jq '.results[0].id')
    api -H 'Content-Type: application/json' -d "{\"auth_profile\":${profile}}" "${BASE}/api/node/${node}/register/" | jq .server
}
s1=$(register 127.79.40.1)
s2=$(register 127.79.41.1)
reset_peak
t0=$(date +%s.%N)
job=$(api -H 'Content-Type: application/json' -d "{\"firmware\":${id_a}}" "${BASE}/api/server/${s1}/firmware_update/" | jq .id)
st=$(wait_job "$job")
echo "  BMC fetch (media URL) $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%5.1f s", b - a}')  job ${st}  RSS growth $(growth)"
reset_peak
t0=$(date +%s.%N)
job=$(api -H 'Content-Type: application/json' -d "{\"firmware\":${id_b}}" "${BASE}/api/server/${s2}/firmware_update/" | jq .id)
st=$(wait_job "$job")
echo "  multipart push       $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%6.1f s", b - a}')  job ${st}  RSS growth $(growth)"
api "${BASE}/api/job/${job}/" | jq -c '.results'
