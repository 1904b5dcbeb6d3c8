#!/usr/bin/env bash
# Zero-RL of Qwen2.5-7B (base) on PromptCoT's synthetic math prompts, with the PromptCoT zero-RL settings:
# rollout n=16, lr 1e-6, clip-higher, acc-filter 0.1-0.8, response-length and repetition filters,
# token-level loss, GRPO or REINFORCE++-baseline (ADV=grpo | ADV=reinforce_plus_plus_baseline).
#
# Data (verl parquet, data source "math", R1 template; field names as in your copy of the data):
#   python -m verl_selfplay.data.math --input promptcot.jsonl --out "$DATA_DIR" \
#       --question-key prompt --solution-key completion --test-size 500
# Run:
#   MODEL_PATH=Qwen/Qwen2.5-7B DATA_DIR=~/data/promptcot bash recipes/run_promptcot_zero_rl_qwen7b.sh [overrides...]
#
# Sources of the numbers:
#   [seed]     PromptCoT zero-RL note (shared/seeds/000): Qwen2.5-7B base, rollout-num=16, learning-rate=1e-6,
#              clip-higher, acc-filter (0.1-0.8), response_length-filter, repeatness-filter, token-level loss,
#              GRPO and REINFORCE++-baseline; it calls the rest "the basic RL training configuration", i.e. DAPO's:
#   [DAPO]     Yu et al. 2025, arXiv 2503.14476 (§3.1 clip-higher 0.2/0.28, §3.4 overlong filtering masks the loss
#              of truncated samples), as configured for 7B in verl's recipe/dapo/test_dapo_7b_math.sh [DAPO-7B].
#   [DAPO-32B] verl's recipe/dapo/run_dapo_qwen2.5_32b.sh: max_num_gen_batches=10 for dynamic sampling.
#   [DJ]       Data-Juicer word_repetition_filter defaults (rep_len=10, max_ratio=0.5); the seed gives no numbers.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-7B}      # [seed] Qwen2.5-7B base
DATA_DIR=${DATA_DIR:-$HOME/data/promptcot}
NNODES=${NNODES:-1}                            # cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-8}              # cluster shape, not a hyperparameter
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
ADV=${ADV:-grpo}                               # [seed] grpo or reinforce_plus_plus_baseline
case "$ADV" in
    grpo | reinforce_plus_plus_baseline) ;;
    *) echo "ADV must be grpo or reinforce_plus_plus_baseline, got '$ADV'" >&2; exit 2 ;;
esac
EXPERIMENT_NAME=${EXPERIMENT_NAME:-promptcot_zero_rl_qwen7b_$ADV}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

rollout_n=16                                   # [seed] rollout-num=16
lr=1e-6                                        # [seed] learning-rate=1e-6
acc_low=0.1                                    # [seed] acc-filter 0.1-0.8
acc_high=0.8                                   # [seed] acc-filter 0.1-0.8
clip_ratio_low=0.2                             # [DAPO] §3.1 clip-higher, eps_low
clip_ratio_high=0.28                           # [DAPO] §3.1 clip-higher, eps_high
train_batch_size=512                           # [DAPO-7B] train_prompt_bsz
ppo_mini_batch_size=32                         # [DAPO-7B] train_prompt_mini_bsz
max_prompt_length=2048                         # [DAPO-7B] 1024 * 2
max_response_length=8192                       # [DAPO-7B] 1024 * 8
lr_warmup_steps=10                             # [DAPO-7B]
weight_decay=0.1                               # [DAPO-7B]
grad_clip=1.0                                  # [DAPO-7B]
temperature=1.0                                # [DAPO-7B]
val_top_p=0.7                                  # [DAPO-7B]
val_n=1                                        # [DAPO-7B]
sp_size=4                                      # [DAPO-7B] Ulysses sequence parallel
gen_tp=4                                       # [DAPO-7B] rollout tensor parallel
gpu_memory_utilization=0.8                     # [DAPO-7B]
actor_max_tokens=$(((max_prompt_length + max_response_length) * 2))  # [DAPO-7B] actor_ppo_max_token_len
infer_max_tokens=$(((max_prompt_length + max_response_length) * 3))  # [DAPO-7B] infer_ppo_max_token_len
total_epochs=10                                # [DAPO-7B]
test_freq=10                                   # [DAPO-7B]
save_freq=10                                   # [DAPO-7B]
max_extra_gen_rounds=9                         # [DAPO-32B] 10 generation batches per step = 1 + 9 refills
repetition_n=10                                # [DJ] rep_len
repetition_threshold=0.5                       # [DJ] max_ratio

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
    actor_rollout_ref.actor.optim.lr_warmup_steps=$lr_warmup_steps \
    actor_rollout_ref.actor.optim.weight_decay=$weight_decay \
    actor_rollout_ref.actor.optim.clip_grad=$grad_clip \
    actor_rollout_ref.actor.ppo_mini_batch_size=$ppo_mini_batch_size \
    actor_rollout_ref.actor.use_dynamic_bsz=True \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$actor_max_tokens \
    actor_rollout_ref.actor.clip_ratio_low=$clip_ratio_low \
    actor_rollout_ref.actor.clip_ratio_high=$clip_ratio_high \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.ulysses_sequence_parallel_size=$sp_size \
    actor_rollout_ref.actor.fsdp_config.param_offload=True \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=True \
    actor_rollout_ref.ref.log_prob_max_token_len_per_gpu=$infer_max_tokens \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=$rollout_n \
    actor_rollout_ref.rollout.temperature=$temperature \
    actor_rollout_ref.rollout.tensor_model_parallel_size=$gen_tp \
    actor_rollout_ref.rollout.gpu_memory_utilization=$gpu_memory_utilization \
    actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=$infer_max_tokens \
    actor_rollout_ref.rollout.val_kwargs.do_sample=True \
    actor_rollout_ref.rollout.val_kwargs.temperature=$temperature \
    actor_rollout_ref.rollout.val_kwargs.top_p=$val_top_p \
    actor_rollout_ref.rollout.val_kwargs.n=$val_n \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    algorithm.adv_estimator="$ADV" \
    algorithm.use_kl_in_reward=False \
    trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler \
    trainer.v1.sampler.custom_sampler.name=GroupFilterSampler \
    '+trainer.v1.sampler.sampler_kwargs.filters=[acc,length,repetition]' \
    +trainer.v1.sampler.sampler_kwargs.acc.low=$acc_low \
    +trainer.v1.sampler.sampler_kwargs.acc.high=$acc_high \
    +trainer.v1.sampler.sampler_kwargs.length.level=sample \
    +trainer.v1.sampler.sampler_kwargs.length.drop_truncated=True \
    +trainer.v1.sampler.sampler_kwargs.repetition.level=sample \
    +trainer.v1.sampler.sampler_kwargs.repetition.n=$repetition_n \
    +trainer.v1.sampler.sampler_kwargs.repetition.threshold=$repetition_threshold \
    +trainer.v1.sampler.sampler_kwargs.max_extra_gen_rounds=$max_extra_gen_rounds \
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
