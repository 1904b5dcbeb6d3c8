#!/usr/bin/env bash
# Absolute Zero (AZR) self-play on Qwen2.5-Coder-7B (base), with the reference's coder-7B settings.
#
# The reference's scripts/selfplay/coder7b.sh (LeapLabTHU/Absolute-Zero-Reasoner at a82124e) differs from its 7b.sh
# only in the model, the experiment name and its seed-file names, so this recipe is run_azr_qwen7b.sh with those two
# defaults changed: every number, its source and the preflight are there.
# Run (a node with 4 GPUs, `pip install -e ".[gpu]"`, the model downloaded: huggingface-cli download Qwen/Qwen2.5-Coder-7B):
#   MODEL_PATH=Qwen/Qwen2.5-Coder-7B DATA_DIR=~/data/azr bash recipes/run_azr_coder7b.sh [overrides...]
set -euo pipefail

export MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-Coder-7B}   # [script] actor_rollout_ref.model.path
export EXPERIMENT_NAME=${EXPERIMENT_NAME:-azr_coder7b}
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_azr_qwen7b.sh" "$@"
