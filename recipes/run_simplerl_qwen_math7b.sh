#!/usr/bin/env bash
# SimpleRL-Zoo zero-RL of Qwen2.5-Math-7B on MATH-style data (levels 3-5): GRPO with the SimpleRL reward scheme
# (+1 correct and boxed, -0.5 boxed but wrong, -1 no boxed answer) and SimpleRL's "simple" prompt.
#
# Data (MATH-style rows: the answer is the last \boxed{} of the reference solution):
#   python -m verl_selfplay.data.math --input math_level3to5.jsonl --out "$DATA_DIR" \
#       --question-key problem --solution-key solution --template simplerl --test-size 500
# Run:
#   MODEL_PATH=Qwen/Qwen2.5-Math-7B DATA_DIR=~/data/simplerl bash recipes/run_simplerl_qwen_math7b.sh [overrides...]
#
# Sources of the numbers:
#   [paper]  Zeng et al. 2025, "SimpleRL-Zoo", arXiv 2503.18892: Qwen2.5-Math-7B, MATH levels 3-5, GRPO, 2 nodes of 8 GPUs.
#   [readme] hkust-nlp/simpleRL-reason README, 7B command: --train_batch_size 1024 --rollout_n 8
#            --kl_loss_coef 0.0001 (models up to 14B) --entropy_coeffient 0.001 --rollout_gpu_memory_util 0.75
#            --rollout_tp 2 --save_freq 5.
#   [script] hkust-nlp/simpleRL-reason train_grpo_math_tune_ray.sh defaults: MAX_PROMPT_LENGTH=1024,
#            MAX_RESPONSE_LENGTH=3072 (Qwen2.5-Math's 4K context), LEARNING_RATE=5e-7, PPO_MINI_BATCH_SIZE=256,
#            PPO_MICRO_BATCH_SIZE=2 per GPU, LOG_PROB_MICRO_BATCH_SIZE=160, CLIP_RATIO=0.2, KL_LOSS_TYPE=low_var_kl,
#            TEMPERATURE=1.0, TOTAL_EPOCHS=20, TEST_FREQ=5.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-Math-7B}     # [paper]
DATA_DIR=${DATA_DIR:-$HOME/data/simplerl}
NNODES=${NNODES:-2}                                # [paper] 2 x 8 GPUs (cluster shape)
GPUS_PER_NODE=${GPUS_PER_NODE:-8}                  # [paper] 2 x 8 GPUs (cluster shape)
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-simplerl_qwen_math7b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

train_batch_size=1024                              # [readme]
rollout_n=8                                        # [readme]
kl_loss_coef=0.0001                                # [readme] models up to 14B
entropy_coeff=0.001                                # [readme]
gpu_memory_utilization=0.75                        # [readme]
gen_tp=2                                           # [readme]
save_freq=5                                        # [readme]
max_prompt_length=1024                             # [script]
max_response_length=3072                           # [script]
lr=5e-7                                            # [script]
ppo_mini_batch_size=256                            # [script]
ppo_micro_batch_size_per_gpu=2                     # [script]
log_prob_micro_batch_size_per_gpu=10               # [script] LOG_PROB_MICRO_BATCH_SIZE=160 over 16 GPUs
clip_ratio=0.2                                     # [script]
temperature=1.0                                    # [script]
total_epochs=20                                    # [script]
test_freq=5                                        # [script]

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
    actor_rollout_ref.actor.clip_ratio=$clip_ratio \
    actor_rollout_ref.actor.entropy_coeff=$entropy_coeff \
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
    +reward.custom_reward_function.reward_kwargs.scheme=simplerl \
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
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
