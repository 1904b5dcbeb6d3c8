#!/usr/bin/env bash
# Prompt Curriculum Learning (PCL) on MATH-style data with Qwen3-8B-Base: each step scores k*m candidate prompts
# with a value model, keeps the m whose predicted pass rate is closest to tau, and trains GRPO on those
# (verl_selfplay.pcl.trainer, trainer.v1.trainer_mode=pcl).
#
# Data (MATH rows; the answer is the last \boxed{} of the reference solution; scored by reward_fns, R1 scheme):
#   python -m verl_selfplay.data.math --input math.jsonl --out "$DATA_DIR" \
#       --question-key problem --solution-key solution --test-size 500
# Run:
#   MODEL_PATH=Qwen/Qwen3-8B-Base DATA_DIR=~/data/math bash recipes/run_pcl_qwen3_8b.sh [overrides...]
#
# Sources of the numbers:
#   [paper]  Gao et al. 2025, "Prompt Curriculum Learning for Efficient LLM Post-Training", arXiv 2510.01135:
#            Qwen3-8B-Base trained on MATH with GRPO; k*m candidates with k = 4, tau = 0.5; purely on-policy.
#            (Abstract plus summaries of the paper: a Chinese digest, shared/seeds/001 (project notes), and reviews; the
#            full text, with the value model's size, initialisation and learning rate, was not accessible to us.)
#   [batch]  the paper's batch-size study: about 8K samples per step is best, e.g. (m, n) = (512, 16),
#            (256, 32) or (128, 64) (read from a review of the paper, themoonlight.io; the full text was not
#            accessible to us). We use (512, 16).
#   [len]    experiments use at most 4096 tokens (paper summary, shared/seeds/001 (project notes)).
#   [ours]   not from the paper. The paper's value model is an LLM; here the default is the cheap embedding value
#            model on the driver's CPU. For the paper's kind add, e.g.:  +pcl.value_model=llm
#            +pcl.value_model_kwargs.model_path=Qwen/Qwen3-1.7B-Base critic.use_dynamic_bsz=True
#            critic.fsdp.param_offload=True critic.fsdp.optimizer_offload=True  (on verl's worker groups beside the
#            actor; verl_selfplay/pcl/value_worker.py; not yet run on GPUs). V is fitted to the 0/1 `acc` of reward_fns, not to the R1
#            score (format + answer), so that tau = 0.5 means a 50 % pass rate.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-8B-Base}            # [paper]
DATA_DIR=${DATA_DIR:-$HOME/data/math}
NNODES=${NNODES:-1}                                     # cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-8}                       # cluster shape, not a hyperparameter
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-pcl_math_qwen3_8b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

pcl_k=4                                                 # [paper]
pcl_tau=0.5                                             # [paper]
train_batch_size=512                                    # [batch] m
rollout_n=16                                            # [batch] n
ppo_mini_batch_size=512                                 # [paper] on-policy: one update per step (mini = m)
max_response_length=4096                                # [len]
max_prompt_length=1024                                  # [ours]
lr=1e-6                                                 # [ours]
temperature=1.0                                         # [ours]
ppo_micro_batch_size_per_gpu=4                          # [ours] memory, not a hyperparameter
log_prob_micro_batch_size_per_gpu=8                     # [ours] memory, not a hyperparameter
gen_tp=2                                                # [ours] memory, not a hyperparameter
gpu_memory_utilization=0.6                              # [ours] memory, not a hyperparameter
total_epochs=10                                         # [ours]
test_freq=10                                            # [ours]
save_freq=20                                            # [ours]

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
    actor_rollout_ref.actor.ppo_mini_batch_size=$ppo_mini_batch_size \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$ppo_micro_batch_size_per_gpu \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=$rollout_n \
    actor_rollout_ref.rollout.temperature=$temperature \
    actor_rollout_ref.rollout.tensor_model_parallel_size=$gen_tp \
    actor_rollout_ref.rollout.gpu_memory_utilization=$gpu_memory_utilization \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$log_prob_micro_batch_size_per_gpu \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    trainer.logger='[console,wandb,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.total_epochs=$total_epochs \
    trainer.test_freq=$test_freq \
    trainer.save_freq=$save_freq \
    trainer.v1.trainer_mode=pcl \
    +pcl.enable=True \
    +pcl.k=$pcl_k \
    +pcl.tau=$pcl_tau \
    +pcl.value_model=embedding \
    +pcl.metric=acc \
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
