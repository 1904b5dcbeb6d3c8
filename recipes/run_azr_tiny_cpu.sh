#!/usr/bin/env bash
# The CPU main job: real Absolute Zero self-play with verl's own trainer on a machine without a GPU.
#
# One tiny model (a ~200k-parameter Qwen2 built locally, with a few seconds of SFT on AZR-format proposals and
# answers: python -m verl_selfplay.tiny --azr) proposes code tasks (deduction, abduction, induction) and solves them.
# Every proposal is validated in the sandbox (static rules, runs, deterministic), its learnability is measured with
# azr.n_learn fresh solver samples through verl's inference server (here the CPU `hf` replica), valid tasks enter
# the buffers, and one actor update per step trains both roles with Task-Relative REINFORCE++. verl's v1 trainer,
# Ray, TransferQueue and FSDP2 (gloo) run unchanged, through verl_selfplay's CPU preset (--config-name=cpu).
#
# Run (from a fresh clone):  bash scripts/setup.sh && bash recipes/run_azr_tiny_cpu.sh [overrides...]
# Environment: WORK_DIR, STEPS, SEED, MODEL_PATH, DATA_DIR, PROJECT_NAME, EXPERIMENT_NAME (as run_tiny_cpu.sh).
# It writes verl's file-logger metrics to $WORK_DIR/metrics.jsonl, checkpoints the last step (actor + the task
# buffers as JSON lines, $WORK_DIR/checkpoints/global_step_N/azr_buffers/*.jsonl), prints a per-step table of the
# azr/* metrics and writes the training report ($WORK_DIR/report/report.md and its PNGs: python -m
# verl_selfplay.report). About 2 minutes of start-up and ~3 s per step on 2 cores.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK_DIR=${WORK_DIR:-$HOME/verl_selfplay_azr_tiny_cpu}
MODEL_PATH=${MODEL_PATH:-$WORK_DIR/model}
DATA_DIR=${DATA_DIR:-$WORK_DIR/data}
SEED=${SEED:-0}
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-azr_tiny_cpu}
STEPS=${STEPS:-10}

# AZR's structure at a CPU size (the reference's values are in recipes/run_azr_qwen7b.sh)
propose_per_type=4               # [ours] reference: 64
solve_per_type=4                 # [ours] reference: 64
train_batch_size=$((3 * (propose_per_type + solve_per_type)))   # one row per proposer/solver prompt, rollout.n=1
n_learn=4                        # [ours] reference: 8 learnability samples per valid proposal
n_references=1                   # [ours] reference: K=6 (the tiny model's context is short)
induction_inputs=4               # [ours] reference: 10 (verl_selfplay.tiny.TINY_AZR_INDUCTION_INPUTS)
induction_visible=2              # [ours] reference: 5
exec_timeout=2                   # [ours] seconds per program run; reference: 10
lr=1e-4                          # [ours] a tiny model; the reference uses 1e-6 at 7B
max_prompt_length=256            # compact prompts with one reference fit in ~150 tokens
max_response_length=96
test_freq=5

# use the repository's virtual environment when none is active (scripts/setup.sh creates it)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$REPO/.venv/bin/python3" ] && ! python3 -c "import verl" 2>/dev/null; then
    export PATH="$REPO/.venv/bin:$PATH"
fi

if [ ! -f "$MODEL_PATH/config.json" ] || [ ! -f "$DATA_DIR/test.parquet" ]; then
    echo "building the tiny AZR model into $MODEL_PATH and the validation tasks into $DATA_DIR"
    python3 -m verl_selfplay.tiny --azr --out "$MODEL_PATH" --data-out "$DATA_DIR" --seed "$SEED"
fi

mkdir -p "$WORK_DIR"
export VERL_FILE_LOGGER_PATH=${VERL_FILE_LOGGER_PATH:-$WORK_DIR/metrics.jsonl}
rm -f "$VERL_FILE_LOGGER_PATH"
cd "$WORK_DIR"

python3 -m verl.trainer.main_ppo \
    --config-path=pkg://verl_selfplay.config \
    --config-name=cpu \
    data.train_files="$DATA_DIR/train.parquet" \
    data.val_files="$DATA_DIR/test.parquet" \
    data.train_batch_size=$train_batch_size \
    data.max_prompt_length=$max_prompt_length \
    data.max_response_length=$max_response_length \
    actor_rollout_ref.model.path="$MODEL_PATH" \
    actor_rollout_ref.actor.optim.lr=$lr \
    actor_rollout_ref.actor.ppo_mini_batch_size=$train_batch_size \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$train_batch_size \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.rollout.n=1 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$train_batch_size \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=$train_batch_size \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.scheme=azr \
    algorithm.adv_estimator=task_relative_reinforce_plus_plus \
    algorithm.use_kl_in_reward=False \
    trainer.v1.trainer_mode=azr \
    +azr.propose_per_type=$propose_per_type \
    +azr.solve_per_type=$solve_per_type \
    +azr.n_learn=$n_learn \
    +azr.n_references=$n_references \
    +azr.induction_inputs=$induction_inputs \
    +azr.induction_visible=$induction_visible \
    +azr.timeout=$exec_timeout \
    +azr.prompt_style=compact \
    +azr.sample_seed=$SEED \
    trainer.logger='[console,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.default_local_dir="$WORK_DIR/checkpoints" \
    trainer.total_training_steps=$STEPS \
    trainer.val_before_train=True \
    trainer.test_freq=$test_freq \
    trainer.save_freq=$STEPS \
    hydra.run.dir="$WORK_DIR/hydra" \
    "$@" 2>&1 | tee "$WORK_DIR/run.log"

python3 -m verl_selfplay.azr.report "$VERL_FILE_LOGGER_PATH"
python3 -m verl_selfplay.report "$WORK_DIR" --out "$WORK_DIR/report"
echo "training report: python3 -m verl_selfplay.report $WORK_DIR --out $WORK_DIR/report"
