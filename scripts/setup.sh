#!/usr/bin/env bash
# Create ./.venv (if missing) and install verl-selfplay with verl and the test tools, CPU-only.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned: 2.13.0 is a CPU build available locally; a plain `torch` (or a range admitting newer
# releases) would pull a multi-GB CUDA build. verl-core's torch requirement is then already satisfied.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[verl,test]"
python -m pip check
