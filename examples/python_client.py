"""The guide's discovery and registration flow with the Python client that openapi-generator
generates from a server's schema (`-g python --additional-properties=packageName=mojo_client`).

    openapi-generator-cli generate -i mojo-openapi.yaml -g python -o ./mojo-python-client \
        --additional-properties=packageName=mojo_client
    PYTHONPATH=./mojo-python-client python3 examples/python_client.py \
        https://localhost:8443 admin PASSWORD 10.50.5.1 10.50.5.254 443 root BMC_PASSWORD

Logs in, creates an auth profile with one credential and a scan range, runs a scan and waits for
it, registers every discovered node, then lists the servers with a search, page by page.
Prints `python client OK: N servers` at the end. TLS certificates are not verified (as `curl -k`).
"""

import sys
import time

import mojo_client
from mojo_client.models import (
    AuthProfileRequest,
    CredentialRequest,
    RegisterRequest,
    RunScanRequest,
    ScanRangeRequest,
    TokenObtainPairRequest,
)


def main():
    (base, username, password, ip_from, ip_to, port, bmc_user, bmc_password) = sys.argv[1:9]
    expected = int(sys.argv[9]) if len(sys.argv) > 9 else None

    config = mojo_client.Configuration(host=base)
    config.verify_ssl = False
    anonymous = mojo_client.ApiClient(config)
    pair = mojo_client.TokenApi(anonymous).token_create(
        TokenObtainPairRequest(username=username, password=password)
    )
    print("logged in", flush=True)

    config = mojo_client.Configuration(host=base, access_token=pair.access)
    config.verify_ssl = False
    client = mojo_client.ApiClient(config)
    discovery = mojo_client.NodeDiscoveryApi(client)
    nodes = mojo_client.NodeApi(client)
    servers = mojo_client.ServerApi(client)

    me = mojo_client.UsersApi(client).users_me_retrieve()
    assert me.username == username, me

    profile = discovery.node_discovery_auth_profile_create(
        AuthProfileRequest(node_classification="Python client rack", bmc="redfish")
    )
    discovery.node_discovery_auth_profile_credentials_create(
        profile.id, CredentialRequest(username=bmc_user, password=bmc_password)
    )
    scan_range = discovery.node_discovery_scan_range_create(
        ScanRangeRequest(name="Python client rack", ip_from=ip_from, ip_to=ip_to, ports=[int(port)])
    )
    print(f"created auth profile {profile.id} and scan range {scan_range.id}", flush=True)

    discovery.node_discovery_run_scan_create(RunScanRequest(scan_ranges=[scan_range.id]))
    deadline = time.monotonic() + 300
    while True:
        status = discovery.node_discovery_scan_range_retrieve(scan_range.id).status
        if status != "scanning":
            break
        if time.monotonic() > deadline:
            sys.exit("scan did not finish within 300 s")
        time.sleep(1)
    print(f"scan finished: {status}", flush=True)

    found = nodes.node_list(status="discovered", scan_range=scan_range.id)
    for node in found.results:
        nodes.node_register_create(node.id, RegisterRequest(auth_profile=profile.id))
    print(f"registered {len(found.results)} node(s)", flush=True)

    # Registration may finish after the call returns: wait until no node is still registering.
    deadline = time.monotonic() + 300
    while nodes.node_list(status="registering").count > 0:
        if time.monotonic() > deadline:
            sys.exit("registration did not finish within 300 s")
        time.sleep(1)

    names = []
    page = 1
    while True:
        answer = servers.server_list(search="PowerEdge", ordering="id", page=page, page_size=2)
        names.extend(s.name for s in answer.results)
        if answer.next is None:
            break
        page += 1
    print(f"listed {len(names)} server(s) in {page} page(s): {names}", flush=True)
    if expected is not None and len(names) != expected:
        sys.exit(f"expected {expected} servers, listed {len(names)}")
    print(f"python client OK: {len(names)} servers")


if __name__ == "__main__":
    main()
