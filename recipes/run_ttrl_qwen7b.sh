#!/usr/bin/env bash
# Test-Time RL (TTRL) of Qwen2.5-Math-7B: no labels in training. Rows with data source "vote" are relabelled online by
# majority vote over their 64 rollouts (verl_selfplay's GroupFilterSampler), every rollout is re-scored against the
# pseudo-label, and the policy trains on the first 32 rollouts of each prompt. A "vote" row is never scored against a
# gold answer: a true label, if any, sits in extra_info.eval_ground_truth (what the data CLI below writes) and only feeds
# training/vote/label_agreement and training/vote/true_acc. Validation uses the true labels.
#
# Data (the same test set twice: unlabelled "vote" rows to train on, labelled "math" rows to evaluate):
#   python -m verl_selfplay.data.math --input aime2024.jsonl --out "$DATA_DIR" --question-key problem \
#       --answer-key answer --data-source vote --test-input aime2024.jsonl --test-data-source math
# Run:
#   MODEL_PATH=Qwen/Qwen2.5-Math-7B DATA_DIR=~/data/aime_ttrl bash recipes/run_ttrl_qwen7b.sh [overrides...]
#
# Sources of the numbers:
#   [paper]  Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning", arXiv 2504.16084: Qwen2.5-Math-7B, GRPO,
#            64 votes per prompt with 32 of those rollouts trained on.
#   [script] PRIME-RL/TTRL verl/examples/ttrl/aime.sh: DATA_TRAIN_BATCH_SIZE=8, N_VOTES_PER_PROMPT=64,
#            N_SAMPLES_PER_PROMPT=32, MINI_BATCH_SIZE=1, MAX_PROMPT_LENGTH=512, MAX_RESPONSE_LENGTH=3072,
#            lr 5e-7 with cosine schedule and 3% warm-up, KL loss on (coefficient 0.001, its config default),
#            rollout temperature 1.0, validation n=16 / temperature 0.6 / top-p 0.95, rollout TP 1,
#            gpu_memory_utilization 0.8, test_freq 2, EPISODE=80 epochs, MICRO_BATCH_SIZE=2.
#            TTRL's mini-batch is 1 prompt x 32 trained rollouts; verl counts a mini-batch as ppo_mini_batch_size x
#            rollout.n = 1 x 64 samples, i.e. two prompts' 32 trained rollouts.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-Math-7B}   # [paper]
DATA_DIR=${DATA_DIR:-$HOME/data/aime_ttrl}
NNODES=${NNODES:-1}                              # cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-8}                # cluster shape, not a hyperparameter
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-ttrl_qwen_math7b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

n_votes=64                                       # [paper] [script] N_VOTES_PER_PROMPT
n_train=32                                       # [paper] [script] N_SAMPLES_PER_PROMPT
train_batch_size=8                               # [script]
ppo_mini_batch_size=1                            # [script]
micro_batch_size_per_gpu=2                       # [script]
max_prompt_length=512                            # [script]
max_response_length=3072                         # [script] 1024 * K, K=3
lr=5e-7                                          # [script]
lr_warmup_steps_ratio=0.03                       # [script]
kl_loss_coef=0.001                               # [script] TTRL's config default
temperature=1.0                                  # [script]
val_n=16                                         # [script]
val_temperature=0.6                              # [script]
val_top_p=0.95                                   # [script]
gen_tp=1                                         # [script]
gpu_memory_utilization=0.8                       # [script]
total_epochs=80                                  # [script] EPISODE=80 on AIME
test_freq=2                                      # [script]

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
    data.filter_overlong_prompts=True \
    data.truncation=error \
    actor_rollout_ref.model.path="$MODEL_PATH" \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.actor.optim.lr=$lr \
    actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=$lr_warmup_steps_ratio \
    actor_rollout_ref.actor.optim.lr_scheduler_type=cosine \
    actor_rollout_ref.actor.ppo_mini_batch_size=$ppo_mini_batch_size \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$micro_batch_size_per_gpu \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef=$kl_loss_coef \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=$micro_batch_size_per_gpu \
    actor_rollout_ref.ref.fsdp_config.param_offload=True \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=$n_votes \
    actor_rollout_ref.rollout.temperature=$temperature \
    actor_rollout_ref.rollout.tensor_model_parallel_size=$gen_tp \
    actor_rollout_ref.rollout.gpu_memory_utilization=$gpu_memory_utilization \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$micro_batch_size_per_gpu \
    actor_rollout_ref.rollout.val_kwargs.do_sample=True \
    actor_rollout_ref.rollout.val_kwargs.n=$val_n \
    actor_rollout_ref.rollout.val_kwargs.temperature=$val_temperature \
    actor_rollout_ref.rollout.val_kwargs.top_p=$val_top_p \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler \
    trainer.v1.sampler.custom_sampler.name=GroupFilterSampler \
    '+trainer.v1.sampler.sampler_kwargs.filters=[]' \
    +trainer.v1.sampler.sampler_kwargs.vote.enable=True \
    '+trainer.v1.sampler.sampler_kwargs.vote.data_sources=[vote]' \
    +trainer.v1.sampler.sampler_kwargs.vote.train_n=$n_train \
    trainer.logger='[console,wandb,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.total_epochs=$total_epochs \
    trainer.test_freq=$test_freq \
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
