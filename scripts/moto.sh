#!/usr/bin/env bash
# Installs moto's S3 server (`moto[server]` from PyPI, pinned) into the project's venv and
# prints the path of its `moto_server`. The export tests (testkit/src/s3.rs) and
# bench/export.sh start it on a free loopback port; `make test` runs this script first.
set -euo pipefail
VENV=${EYE_MOTO_VENV:-$HOME/.cache/the-eye/moto-venv}
PIN='moto[server]>=5.1,<6'
if [ ! -x "$VENV/bin/moto_server" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q "$PIN" >&2
fi
echo "$VENV/bin/moto_server"
