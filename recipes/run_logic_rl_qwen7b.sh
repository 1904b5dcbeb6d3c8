#!/usr/bin/env bash
# Logic-RL on Knights & Knaves puzzles: REINFORCE++, the Logic-RL reward scheme (format +-1, answer +2/-1.5/-2),
# lr 4e-7, temperature 0.7, and a curriculum over 3 to 7 people in one run (the training rows are ordered by
# number of people and verl's dataloader keeps that order: data.shuffle=False).
#
# The prompts use the model's chat template, so the model opens <think> itself: think_prefilled=false makes the
# score equal Logic-RL's scorer on the same text (reward_fns.logic.score_kk_logic).
# Data (data source "knights_knaves", scored with the logicrl scheme by default):
#   python -m verl_selfplay.data.knights_knaves --out "$DATA_DIR" --people 3-7 --train 5000 --test 500 --curriculum
# Run:
#   MODEL_PATH=Qwen/Qwen2.5-7B-Instruct-1M DATA_DIR=~/data/kk bash recipes/run_logic_rl_qwen7b.sh [overrides...]
#
# Sources of the numbers:
#   [paper]  Xie et al. 2025, "Logic-RL", arXiv 2502.14768: Qwen2.5-7B-Instruct-1M, REINFORCE++, constant
#            learning rate 4e-7, rollout temperature 0.7, K&K puzzles with 3 to 7 people.
#   [script] Logic-RL's curriculum script (Unakar/Logic-RL, curriculm_final.sh): train_batch_size=8, rollout.n=8,
#            max_prompt_length=512, max_response_length=4096, KL loss 0.001 (low_var_kl), rollout TP 2,
#            gpu_memory_utilization 0.6, test_freq 10, save_freq 60, one epoch per difficulty.
#            Its ppo_mini_batch_size=256 exceeds the 8-prompt batch (one update per step); verl 0.9 requires
#            mini <= batch, so the mini-batch here is the whole batch, which is the same single update.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-7B-Instruct-1M}   # [paper]
DATA_DIR=${DATA_DIR:-$HOME/data/kk}
NNODES=${NNODES:-1}                                     # cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-8}                       # cluster shape, not a hyperparameter
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-logic_rl_kk_qwen7b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

lr=4e-7                                                 # [paper]
temperature=0.7                                         # [paper]
train_batch_size=8                                      # [script]
ppo_mini_batch_size=$train_batch_size                   # [script] one update per step (see above)
rollout_n=8                                             # [script]
max_prompt_length=512                                   # [script]
max_response_length=4096                                # [script]
kl_loss_coef=0.001                                      # [script]
gen_tp=2                                                # [script]
gpu_memory_utilization=0.6                              # [script]
ppo_micro_batch_size_per_gpu=8                          # [script] ppo_micro_batch_size=64 over 8 GPUs
log_prob_micro_batch_size_per_gpu=20                    # [script] log_prob_micro_batch_size=160 over 8 GPUs
total_epochs=1                                          # [script] one pass over the ordered 3..7-people curriculum
test_freq=10                                            # [script]
save_freq=60                                            # [script]

# GPUs, the model and vLLM present? (prints what is missing and exits; SKIP_PREFLIGHT=1 skips it)
python3 -m verl_selfplay.gpu_preflight --model "$MODEL_PATH" --gpus "$GPUS_PER_NODE" --need vllm

mkdir -p "$RUN_DIR"
export VERL_FILE_LOGGER_PATH=${VERL_FILE_LOGGER_PATH:-$RUN_DIR/metrics.jsonl}

python3 -m verl.trainer.main_ppo \
    data.train_files="$DATA_DIR/train.parquet" \
    data.val_files="$DATA_DIR/test.parquet" \
    data.train_batch_size=$train_batch_size \
    data.max_prompt_length=$max_prompt_length \
    data.max_response_length=$max_response_length \
    data.shuffle=False \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    actor_rollout_ref.model.path="$MODEL_PATH" \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.actor.optim.lr=$lr \
    actor_rollout_ref.actor.ppo_mini_batch_size=$ppo_mini_batch_size \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$ppo_micro_batch_size_per_gpu \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef=$kl_loss_coef \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=$log_prob_micro_batch_size_per_gpu \
    actor_rollout_ref.ref.fsdp_config.param_offload=True \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=$rollout_n \
    actor_rollout_ref.rollout.temperature=$temperature \
    actor_rollout_ref.rollout.tensor_model_parallel_size=$gen_tp \
    actor_rollout_ref.rollout.gpu_memory_utilization=$gpu_memory_utilization \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$log_prob_micro_batch_size_per_gpu \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.scheme=logicrl \
    +reward.custom_reward_function.reward_kwargs.think_prefilled=false \
    algorithm.adv_estimator=reinforce_plus_plus \
    algorithm.use_kl_in_reward=False \
    trainer.logger='[console,wandb,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.total_epochs=$total_epochs \
    trainer.test_freq=$test_freq \
    trainer.save_freq=$save_freq \
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
