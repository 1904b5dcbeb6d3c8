#!/usr/bin/env bash
# Math self-play on CPU: real vote-labelled self-play (azr.domain=math) with verl's own trainer, no GPU.
#
# One tiny model (a ~100k-parameter Qwen2 built locally with a short SFT on both roles: python -m verl_selfplay.tiny
# --selfplay-math) proposes addition problems and solves them. Every proposal passes the math domain's text checks,
# is labelled by a majority vote of selfplay_math.label_samples fresh solver answers through verl's inference server
# (here the CPU `hf` replica), and earns R-Zero's uncertainty reward 1 - 2|s - 1/2| minus a batch-similarity penalty
# (MiniLM); labelled problems are solved selfplay_math.solver_samples times per step against their labels, held-out
# seed problems measure the labels against gold answers, and one actor update per step trains both roles with
# Task-Relative REINFORCE++ (verl_selfplay.azr.domains.math). verl's v1 trainer, Ray, TransferQueue and FSDP2
# (gloo) run unchanged, through verl_selfplay's CPU preset (--config-name=cpu).
#
# Run (from a fresh clone):  bash scripts/setup.sh && bash recipes/run_selfplay_math_tiny_cpu.sh [overrides...]
# Environment: WORK_DIR, STEPS, SEED, MODEL_PATH, DATA_DIR (seeds.jsonl, train/test.parquet), PROJECT_NAME,
# EXPERIMENT_NAME (as run_azr_tiny_cpu.sh). It writes verl's file-logger metrics to $WORK_DIR/metrics.jsonl,
# checkpoints the last step (actor + the problem buffer, $WORK_DIR/checkpoints/global_step_N/azr_buffers/math.jsonl),
# prints a per-step table of the selfplay_math/* metrics and draws $WORK_DIR/selfplay_math_curves.png. On a loaded
# 2-core machine: about 1 minute to build the model (first run only), 2-3 minutes of start-up, 3-5 s per step.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK_DIR=${WORK_DIR:-$HOME/verl_selfplay_math_tiny_cpu}
MODEL_PATH=${MODEL_PATH:-$WORK_DIR/model}
DATA_DIR=${DATA_DIR:-$WORK_DIR/data}
SEED=${SEED:-0}
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-selfplay_math_tiny_cpu}
STEPS=${STEPS:-10}

# the math domain's structure at a CPU size (the 7B values are in recipes/run_selfplay_math_qwen7b.sh)
propose_per_type=4               # [ours] proposals per step
solve_per_type=4                 # [ours] labelled buffer problems solved per step
solver_samples=4                 # [ours] rows per solver problem (PromptCoT zero-RL: 16)
label_samples=4                  # [ours] votes that label a proposal (AZR's n_learn: 8)
probes_per_step=2                # [ours] held-out gold problems labelled per step (label_acc_on_gold)
relabel_per_step=2               # [ours] buffer problems re-labelled by the current policy per step
heldout=8                        # [ours] seed problems held out with their gold answers
acc_low=0.1                      # [seed] PromptCoT zero-RL acc-filter 0.1-0.8, on the solver groups (as at 7B)
acc_high=0.8                     # [seed] PromptCoT zero-RL acc-filter 0.1-0.8
n_references=2                   # [ours] reference problems in a proposer prompt (reference AZR: 6)
train_batch_size=$((propose_per_type + solve_per_type * solver_samples + probes_per_step + relabel_per_step))  # MathDomain.rows_per_step
lr=1e-4                          # [ours] a tiny model (as run_azr_tiny_cpu.sh); 7B runs use 1e-6
max_prompt_length=64             # [ours] a proposer prompt with 3 references is 32 tokens (verl_selfplay.tiny)
max_response_length=32           # [ours] an ideal response is 15 tokens
test_freq=5                      # [ours]

# use the repository's virtual environment when none is active (scripts/setup.sh creates it)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$REPO/.venv/bin/python3" ] && ! python3 -c "import verl" 2>/dev/null; then
    export PATH="$REPO/.venv/bin:$PATH"
fi

if [ ! -f "$MODEL_PATH/config.json" ] || [ ! -f "$DATA_DIR/seeds.jsonl" ] || [ ! -f "$DATA_DIR/test.parquet" ]; then
    echo "building the tiny math self-play model into $MODEL_PATH and its seeds and validation set into $DATA_DIR"
    python3 -m verl_selfplay.tiny --selfplay-math --out "$MODEL_PATH" --data-out "$DATA_DIR" --seed "$SEED"
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
    +reward.custom_reward_function.reward_kwargs.scheme=r1 \
    algorithm.adv_estimator=task_relative_reinforce_plus_plus \
    algorithm.use_kl_in_reward=False \
    trainer.v1.trainer_mode=azr \
    +azr.domain=math \
    +azr.propose_per_type=$propose_per_type \
    +azr.solve_per_type=$solve_per_type \
    +azr.n_references=$n_references \
    +azr.prompt_style=compact \
    +azr.sample_seed=$SEED \
    +selfplay_math.seed_file="$DATA_DIR/seeds.jsonl" \
    +selfplay_math.heldout=$heldout \
    +selfplay_math.probes_per_step=$probes_per_step \
    +selfplay_math.relabel_per_step=$relabel_per_step \
    +selfplay_math.label_samples=$label_samples \
    +selfplay_math.solver_samples=$solver_samples \
    "+selfplay_math.solver_acc_range=[$acc_low,$acc_high]" \
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

python3 -m verl_selfplay.azr.math_report "$VERL_FILE_LOGGER_PATH" --png "$WORK_DIR/selfplay_math_curves.png"
python3 -m verl_selfplay.report "$WORK_DIR" --out "$WORK_DIR/report"
echo "training report: python3 -m verl_selfplay.report $WORK_DIR --out $WORK_DIR/report"
