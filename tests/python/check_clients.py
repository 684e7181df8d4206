"""Checks the live schema of a running mojo-server with third-party tools.

1. Validates GET /api/schema/?format=json as OpenAPI 3.0 with openapi-spec-validator, and checks
   that the default YAML rendering is the same document.
2. Generates a Python client with openapi-python-client (warnings are failures).
3. Uses the generated client: logs in (POST /api/token/), lists users (GET /api/users/) with a
   search and a filter, reads /api/users/me/.

Usage: check_clients.py BASE_URL USERNAME PASSWORD WORKDIR  (run with the venv of setup.sh)
"""

import importlib
import json
import os
import subprocess
import sys
import urllib.request

import yaml
from openapi_spec_validator import OpenAPIV30SpecValidator, validate


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers.get("Content-Type"), response.read().decode("utf-8")


def step(message):
    print(f"check_clients: {message}", flush=True)


def work_around_unset_import(package_dir):
    """openapi-python-client 0.28+ annotates a required body with several content types (DRF
    accepts JSON, form and multipart) as `... | Unset` without importing `Unset` (upstream issue
    1451, still open), so the module fails to import. Add the import where it is missing; a
    fixed generator makes this a no-op. Returns how many modules were patched."""
    patched = 0
    for root, _, files in os.walk(package_dir):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                source = f.read()
            broken_import = "from ...types import Response, UNSET\n"
            if "| Unset" in source and broken_import in source:
                source = source.replace(
                    broken_import, "from ...types import Response, UNSET, Unset\n"
                )
                with open(path, "w", encoding="utf-8") as f:
                    f.write(source)
                patched += 1
    return patched


def main():
    base, username, password, workdir = sys.argv[1:5]

    content_type, text = fetch(f"{base}/api/schema/?format=json")
    assert content_type == "application/vnd.oai.openapi+json", content_type
    spec = json.loads(text)
    assert spec["openapi"] == "3.0.3", spec["openapi"]
    validate(spec, cls=OpenAPIV30SpecValidator)
    step(f"schema valid as OpenAPI 3.0 ({len(spec['paths'])} paths)")

    content_type, text = fetch(f"{base}/api/schema/")
    assert content_type == "application/vnd.oai.openapi; charset=utf-8", content_type
    assert yaml.safe_load(text) == spec, "YAML and JSON renderings differ"

    schema_file = os.path.join(workdir, "schema.json")
    with open(schema_file, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    config_file = os.path.join(workdir, "generator.yaml")
    with open(config_file, "w", encoding="utf-8") as f:
        f.write("post_hooks: []\n")
    package_dir = os.path.join(workdir, "mojo_api_client")
    generator = os.path.join(os.path.dirname(sys.executable), "openapi-python-client")
    subprocess.run(
        [generator, "generate", "--path", schema_file, "--output-path", package_dir,
         "--meta", "none", "--overwrite", "--config", config_file, "--fail-on-warning"],
        check=True,
    )
    patched = work_around_unset_import(package_dir)
    step(f"client generated ({patched} module(s) patched for openapi-python-client issue 1451)")

    sys.path.insert(0, workdir)
    client_mod = importlib.import_module("mojo_api_client")
    token_create = importlib.import_module("mojo_api_client.api.token.token_create")
    users_list = importlib.import_module("mojo_api_client.api.users.users_list")
    users_me = importlib.import_module("mojo_api_client.api.users.users_me_retrieve")
    models = importlib.import_module("mojo_api_client.models")

    anonymous = client_mod.Client(base_url=base)
    body = models.TokenObtainPairRequest(username=username, password=password)
    answer = token_create.sync_detailed(client=anonymous, body=body)
    # The generated function sends one multipart body with each field twice (it offers JSON,
    # form and multipart at once); like Django, the server takes the last value of a repeated key.
    assert answer.status_code == 200, (answer.status_code, answer.content)
    pair = answer.parsed
    assert isinstance(pair, models.TokenObtainPair), pair
    assert pair.access and pair.refresh
    step("logged in with the generated client")

    client = client_mod.AuthenticatedClient(
        base_url=base, token=pair.access, raise_on_unexpected_status=True
    )
    page = users_list.sync(client=client, search=username, is_active=True, page_size=10)
    assert page.count >= 1, page
    assert any(u.username == username for u in page.results), page.results
    me = users_me.sync(client=client)
    assert me.username == username, me
    step(f"listed {page.count} user(s) with the generated client")


if __name__ == "__main__":
    main()
