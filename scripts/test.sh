#!/usr/bin/env bash
# Install everything, then run the whole test suite (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# the web UI's browser tests (tests/ui) drive Debian's chromium: no browser download
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
exec .venv/bin/python -m pytest "$@"
