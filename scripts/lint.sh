#!/usr/bin/env bash
# ruff (lint and format) and mypy over the kernel, the plugins, the tests and the benchmarks, in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(kernel plugins contrib_backends tests bench)
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
.venv/bin/mypy
