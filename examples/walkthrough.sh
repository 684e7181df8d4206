#!/usr/bin/env bash
# The guide's "API Training: End-to-End Walkthrough", run byte for byte with curl and jq against a
# fresh mojo-server and a lab of 10 emulated Dell BMCs on one loopback /24. Only MOJOHOST, the
# credentials and the scan range body differ from the guide.
#
#   MOJO_BIN=target/debug/mojo-server examples/walkthrough.sh
# Optional: DATABASE_URL (a fresh PostgreSQL database), WALK_NET (default 127.0.100: the /24 of
# the lab), WALK_LAB_PORT (default 9443).
set -euo pipefail

: "${MOJO_BIN:?set MOJO_BIN to the mojo-server binary}"
HERE="$(cd "$(dirname "$0")" && pwd)"
LAB="${BMCLAB:-${HERE}/../../shared/redfish-lab/bmc-lab.sh}"
WALK_NET="${WALK_NET:-127.0.100}"
WALK_LAB_PORT="${WALK_LAB_PORT:-9443}"
ADMIN_PASSWORD="walkthrough-admin-password"

export BMCLAB_STATE="$(mktemp -d)"
DATA_DIR="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "${SERVER_PID}" ]; then kill "${SERVER_PID}" 2>/dev/null || true; wait "${SERVER_PID}" 2>/dev/null || true; fi
    bash "${LAB}" stop >/dev/null 2>&1 || true
    rm -rf "${DATA_DIR}" "${BMCLAB_STATE}"
}
trap cleanup EXIT

bash "${LAB}" start 10 --persona dell --base "${WALK_NET}.1" --port "${WALK_LAB_PORT}" >/dev/null
# `start` may return a moment before the sockets accept.
for i in $(seq 1 10); do
    for _ in $(seq 1 200); do
        curl -s -k -o /dev/null "https://${WALK_NET}.${i}:${WALK_LAB_PORT}/lab/state" && break
        sleep 0.05
    done
done

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [ -n "${DATABASE_URL:-}" ]; then
    export MOJO_SECRET_KEY="${MOJO_SECRET_KEY:-walkthrough-jwt-secret-0123456789}"
    export MOJO_CREDENTIAL_KEY="${MOJO_CREDENTIAL_KEY:-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff}"
fi
MOJO_LISTEN="127.0.0.1:${PORT}" MOJO_DATA_DIR="${DATA_DIR}" MOJO_ADMIN_PASSWORD="${ADMIN_PASSWORD}" \
    MOJO_DISCOVERY_ALLOWED_NETWORKS=127.0.0.0/8 MOJO_LOG="${MOJO_LOG:-warn}" \
    "${MOJO_BIN}" serve 2>"${DATA_DIR}/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -k "https://127.0.0.1:${PORT}/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# ---- 1. Authenticate ------------------------------------------------------------------------
export MOJOHOST="https://127.0.0.1:${PORT}"
export TOKEN=$(curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -d '{"username": "admin", "password": "walkthrough-admin-password"}' \
    ${MOJOHOST}/api/token/ | jq -r '.access')

# Verify authentication
curl -s -k -H "Authorization: Bearer ${TOKEN}" \
    ${MOJOHOST}/api/users/me/ | jq '.username'

# ---- 2. Create an Authentication Profile for BMC Access --------------------------------------
# Create the profile
PROFILE_ID=$(curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d '{"node_classification": "Dell DC Rack 5", "bmc": "redfish"}' \
    ${MOJOHOST}/api/node_discovery/auth_profile/ | jq -r '.id')

echo "Created auth profile: ${PROFILE_ID}"

# Add BMC credentials
curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d '{"username": "root", "password": "calvin"}' \
    ${MOJOHOST}/api/node_discovery/auth_profile/${PROFILE_ID}/credentials/

# ---- 3. Create a Scan Range and Discover -----------------------------------------------------
# Create scan range for the new rack
SCAN_ID=$(curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d '{
        "name": "DC Rack 5",
        "ip_from": "'"${WALK_NET}"'.1",
        "ip_to": "'"${WALK_NET}"'.254",
        "ports": ['"${WALK_LAB_PORT}"']
    }' \
    ${MOJOHOST}/api/node_discovery/scan_range/ | jq -r '.id')

echo "Created scan range: ${SCAN_ID}"

# Start discovery
curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d "{\"scan_ranges\": [${SCAN_ID}]}" \
    ${MOJOHOST}/api/node_discovery/run_scan/

# ---- 4. Wait for Discovery to Complete -------------------------------------------------------
# Poll scan status until complete
while true; do
    STATUS=$(curl -s -k \
        -H "Authorization: Bearer ${TOKEN}" \
        ${MOJOHOST}/api/node_discovery/scan_range/${SCAN_ID}/ | jq -r '.status')
    echo "Scan status: ${STATUS}"
    if [ "${STATUS}" != "scanning" ]; then
        break
    fi
    sleep 10
done

# ---- 5. Register Discovered Nodes ------------------------------------------------------------
# List discovered (unregistered) nodes
NODES=$(curl -s -k \
    -H "Authorization: Bearer ${TOKEN}" \
    "${MOJOHOST}/api/node/?status=discovered" | jq -r '.results[] | .id')

echo "Found nodes: ${NODES}"

# Register each node with our auth profile
for NODE_ID in ${NODES}; do
    echo "Registering node ${NODE_ID}..."
    curl -s -k -X POST \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer ${TOKEN}" \
        -d "{\"auth_profile\": ${PROFILE_ID}}" \
        ${MOJOHOST}/api/node/${NODE_ID}/register/
done

# ---- 6. Create a Pool and Assign Servers -----------------------------------------------------
# Create a resource pool
POOL_ID=$(curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d '{
        "name": "Production - Rack 5",
        "description": "Dell PowerEdge servers in DC Rack 5",
        "group": 1
    }' \
    ${MOJOHOST}/api/pool/ | jq -r '.id')

echo "Created pool: ${POOL_ID}"

# Get list of newly registered server IDs
SERVER_IDS=$(curl -s -k \
    -H "Authorization: Bearer ${TOKEN}" \
    "${MOJOHOST}/api/server/?search=PowerEdge&ordering=-id&page_size=10" \
    | jq '[.results[].id]')

echo "Assigning servers: ${SERVER_IDS}"

# Assign all servers to the pool in one call
curl -s -k -X POST \
    -H "Content-Type: application/json" \
    -H "Authorization: Bearer ${TOKEN}" \
    -d "{\"servers\": ${SERVER_IDS}}" \
    ${MOJOHOST}/api/pool/${POOL_ID}/assign_servers/

# ---- 7. Verify the Result --------------------------------------------------------------------
# Check the pool now has our servers
curl -s -k \
    -H "Authorization: Bearer ${TOKEN}" \
    ${MOJOHOST}/api/pool/${POOL_ID}/ | jq '{name, servers_count, description}'

# List servers in the pool with their details
curl -s -k \
    -H "Authorization: Bearer ${TOKEN}" \
    "${MOJOHOST}/api/server/?resource_pool=${POOL_ID}" \
    | jq '.results[] | {id, name, model, manufacturer, power_state}'

# ---- Checks (not part of the guide) ----------------------------------------------------------
echo
COUNT=$(curl -s -k -H "Authorization: Bearer ${TOKEN}" ${MOJOHOST}/api/pool/${POOL_ID}/ | jq -r '.servers_count')
IN_POOL=$(curl -s -k -H "Authorization: Bearer ${TOKEN}" "${MOJOHOST}/api/server/?resource_pool=${POOL_ID}" | jq -r '.count')
OPEN=0
for i in $(seq 1 10); do
    n=$(curl -s -k "https://${WALK_NET}.${i}:${WALK_LAB_PORT}/lab/state" | jq -r '.sessions_open')
    OPEN=$((OPEN + n))
done
echo "walkthrough: pool ${POOL_ID} holds ${COUNT} servers (${IN_POOL} listed), ${OPEN} BMC sessions open"
if [ "${COUNT}" != "10" ] || [ "${IN_POOL}" != "10" ] || [ "${OPEN}" != "0" ]; then
    echo "walkthrough FAILED" >&2
    tail -n 30 "${DATA_DIR}/server.log" >&2 || true
    exit 1
fi
echo "walkthrough OK"
