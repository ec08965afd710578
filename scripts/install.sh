#!/usr/bin/env bash
# Create .venv (if missing) and install the kernel, every plugin and every contrib backend into it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
packages=(-e ".[test]")
for dir in plugins/*/ contrib_backends/*/; do
    [ -f "${dir}pyproject.toml" ] || continue
    # with its test extra where it declares one
    if grep -q '^test *=' "${dir}pyproject.toml"; then packages+=(-e "${dir%/}[test]"); else packages+=(-e "${dir%/}"); fi
done
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${packages[@]}"
