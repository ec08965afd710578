#!/usr/bin/env bash
# Install everything, install the default models, then serve on 127.0.0.1:8080 (extra args go to `kernai serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/kernai serve "$@"
