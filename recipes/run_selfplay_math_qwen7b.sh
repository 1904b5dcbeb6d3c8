#!/usr/bin/env bash
# Math self-play on Qwen2.5-7B (base), after the PromptCoT zero-RL settings (recipes/run_promptcot_zero_rl_qwen7b.sh):
# each step the model proposes 64 problems after K=6 buffer problems, each proposal is labelled by a majority vote of
# 8 fresh solver answers and rewarded 1 - 2|s - 1/2| (minus a batch-similarity penalty); 32 labelled buffer problems
# are solved 16 times each against their labels; held-out seed problems with gold answers measure the labels
# (selfplay_math/label_acc_on_gold); one Task-Relative REINFORCE++ update trains both roles (azr.domain=math,
# verl_selfplay.azr.domains.math). PromptCoT's acc-filter (0.1-0.8) applies to the solver groups (one per problem,
# solver accuracy against the label): groups outside it get zero advantage (selfplay_math.solver_acc_range).
#
# Data: SEED_FILE, the seed problems (JSON lines with "problem" and "answer", or a verl RL parquet; at least
# `heldout` of them with answers), e.g. PromptCoT's problems; VAL_FILE, validation problems with gold answers (e.g.
# MATH-500) that test_freq reports as val-core/math/acc/mean@1. The validation rows are written on the first run:
#   python3 -m verl_selfplay.azr.math_data --seeds "$SEED_FILE" --val "$VAL_FILE" --out "$DATA_DIR"
# Run (a node with 8 GPUs, `pip install -e ".[gpu]"`, the model downloaded: huggingface-cli download Qwen/Qwen2.5-7B):
#   SEED_FILE=~/data/selfplay_math/seeds.jsonl VAL_FILE=~/data/math500.jsonl bash recipes/run_selfplay_math_qwen7b.sh
# It first checks this machine (GPUs, the model, vLLM) and stops naming what is missing; SKIP_PREFLIGHT=1 skips that.
#
# Sources of the numbers:
#   [seed]     PromptCoT zero-RL note (shared/seeds/000), as in run_promptcot_zero_rl_qwen7b.sh: Qwen2.5-7B base,
#              rollout-num=16, learning-rate=1e-6, clip-higher, acc-filter (0.1-0.8), token-level loss.
#   [DAPO]     Yu et al. 2025, arXiv 2503.14476, §3.1 clip-higher 0.2/0.28.
#   [DAPO-7B]  verl's recipe/dapo/test_dapo_7b_math.sh, the rest of the PromptCoT recipe's basic configuration.
#   [AZR]      Zhao et al. 2025, arXiv 2505.03335, Table 3 (batch 64 per role and task type, K=6 references,
#              N=8 samples to estimate a task's solve rate, 500 steps) and run_azr_qwen7b.sh [script] values.
#   [verl]     verl 0.9.1's default, set here so that the script shows it.
#   [ours]     our choice (no source gives one for math self-play at this size).
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-7B}      # [seed] Qwen2.5-7B base
SEED_FILE=${SEED_FILE:-$HOME/data/selfplay_math/seeds.jsonl}
VAL_FILE=${VAL_FILE:-$HOME/data/selfplay_math/val.jsonl}
DATA_DIR=${DATA_DIR:-$HOME/data/selfplay_math}
NNODES=${NNODES:-1}                            # cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-8}              # cluster shape, not a hyperparameter (as the PromptCoT recipe)
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-selfplay_math_qwen7b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

propose_per_type=64                            # [AZR] batch 64 per role and task type
solve_per_type=32                              # [ours] labelled problems solved per step
solver_samples=16                              # [seed] rollout-num=16 (rows per solver problem)
acc_low=0.1                                    # [seed] acc-filter 0.1-0.8 (solver groups)
acc_high=0.8                                   # [seed] acc-filter 0.1-0.8 (solver groups)
label_samples=8                                # [AZR] N=8 solver samples per proposal
probes_per_step=32                             # [ours] held-out gold problems labelled per step
relabel_per_step=32                            # [ours] buffer problems re-labelled by the current policy per step
heldout=128                                    # [ours] seed problems held out with their gold answers
n_references=6                                 # [AZR] K=6 references in a proposer prompt
buffer_cap=16384                               # [AZR] max programs 16384
train_batch_size=$((propose_per_type + solve_per_type * solver_samples + probes_per_step + relabel_per_step))  # [ours] MathDomain.rows_per_step = 640
rollout_n=1                                    # [AZR] one rollout per row (votes and solver samples are rows)
lr=1e-6                                        # [seed] learning-rate=1e-6
clip_ratio_low=0.2                             # [DAPO] §3.1 clip-higher, eps_low
clip_ratio_high=0.28                           # [DAPO] §3.1 clip-higher, eps_high
ppo_mini_batch_size=128                        # [AZR] [script] ppo_mini_batch_size=128 (5 updates per step)
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
agent_workers=8                                # [verl] agent-loop workers: proposals, votes and their samples
reward_workers=8                               # [verl] reward workers
total_training_steps=500                       # [AZR] total steps
test_freq=10                                   # [DAPO-7B]
save_freq=10                                   # [DAPO-7B]

# GPUs, the model and vLLM present? (prints what is missing and exits; SKIP_PREFLIGHT=1 skips it)
python3 -m verl_selfplay.gpu_preflight --model "$MODEL_PATH" --gpus "$GPUS_PER_NODE" --need vllm

if [ ! -f "$DATA_DIR/train.parquet" ] || [ ! -f "$DATA_DIR/test.parquet" ]; then
    python3 -m verl_selfplay.azr.math_data --seeds "$SEED_FILE" --val "$VAL_FILE" --out "$DATA_DIR" --prompt-style reference
fi

mkdir -p "$RUN_DIR"
export VERL_FILE_LOGGER_PATH=${VERL_FILE_LOGGER_PATH:-$RUN_DIR/metrics.jsonl}

python3 -m verl.trainer.main_ppo \
    data.train_files="$DATA_DIR/train.parquet" \
    data.val_files="$DATA_DIR/test.parquet" \
    data.train_batch_size=$train_batch_size \
    data.max_prompt_length=$max_prompt_length \
    data.max_response_length=$max_response_length \
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
    actor_rollout_ref.rollout.agent.num_workers=$agent_workers \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.scheme=r1 \
    reward.num_workers=$reward_workers \
    algorithm.adv_estimator=task_relative_reinforce_plus_plus \
    algorithm.use_kl_in_reward=False \
    trainer.v1.trainer_mode=azr \
    trainer.logger='[console,wandb,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.total_training_steps=$total_training_steps \
    trainer.val_before_train=True \
    trainer.test_freq=$test_freq \
    trainer.save_freq=$save_freq \
    +azr.domain=math \
    +azr.propose_per_type=$propose_per_type \
    +azr.solve_per_type=$solve_per_type \
    +azr.n_references=$n_references \
    +azr.buffer_cap=$buffer_cap \
    +azr.prompt_style=reference \
    +selfplay_math.seed_file="$SEED_FILE" \
    +selfplay_math.heldout=$heldout \
    +selfplay_math.probes_per_step=$probes_per_step \
    +selfplay_math.relabel_per_step=$relabel_per_step \
    +selfplay_math.label_samples=$label_samples \
    +selfplay_math.solver_samples=$solver_samples \
    "+selfplay_math.solver_acc_range=[$acc_low,$acc_high]" \
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
