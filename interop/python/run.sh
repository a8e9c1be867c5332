#!/usr/bin/env bash
# Runs interop.py (the official Dapr Python SDK over gRPC against a reference-runtime binary),
# then app_grpc.py (the SDK's gRPC app server, dapr.ext.grpc, behind the binary run with
# --app-protocol grpc), then actors.py (the SDK's virtual actors hosted by dapr.ext.fastapi on
# uvicorn, over the actor HTTP API), then workflows.py (the SDK's workflow runtime and client,
# dapr.ext.workflow, over TaskHubSidecarService), in a venv kept at $HOME/.cache/certify/python-interop-venv
# and reused across runs; pip runs only when requirements.txt differs from the copy saved in the
# venv at the last install.
#
# Usage: bash interop/python/run.sh PATH_TO_REFERENCE_RUNTIME_BINARY
# Exit status: 0 when every check of every script passed (all always run), 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary="${1:?usage: bash interop/python/run.sh PATH_TO_REFERENCE_RUNTIME_BINARY}"
venv="$HOME/.cache/certify/python-interop-venv"
installed="$venv/certify-requirements.txt"

# A venv whose interpreter no longer runs (e.g. the base Python moved) is made anew.
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv"
fi

if ! cmp -s "$here/requirements.txt" "$installed"; then
  rm -f "$installed"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$installed"
fi

status=0
"$venv/bin/python" "$here/interop.py" "$binary" || status=1
"$venv/bin/python" "$here/app_grpc.py" "$binary" || status=1
"$venv/bin/python" "$here/actors.py" "$binary" || status=1
"$venv/bin/python" "$here/workflows.py" "$binary" || status=1
exit "$status"
