#!/usr/bin/env bash
# Absolute Zero (AZR) self-play on Qwen2.5-7B (base), with the reference's 7B settings: each step the model proposes
# 64 tasks and solves 64 buffer tasks for each of deduction, abduction and induction (384 rows, one rollout each),
# proposals are validated in the sandbox and rewarded by learnability (8 solver samples), and Task-Relative
# REINFORCE++ updates the one policy (verl_selfplay.azr, trainer.v1.trainer_mode=azr). No data set: the tasks come
# from the buffers, which a seeding phase fills from the hand-written seeds first.
#
# Data: only the validation set (held-out code-reasoning tasks; test_freq reports val-core/azr_*/acc), written here
# on the first run:  python3 -m verl_selfplay.azr.data --out "$DATA_DIR"
# Run (a node with 4 GPUs, `pip install -e ".[gpu]"`, the model downloaded: huggingface-cli download Qwen/Qwen2.5-7B):
#   MODEL_PATH=Qwen/Qwen2.5-7B DATA_DIR=~/data/azr bash recipes/run_azr_qwen7b.sh [overrides...]
# It first checks this machine (GPUs, the model, vLLM) and stops naming what is missing; SKIP_PREFLIGHT=1 skips that.
#
# Sources of the numbers:
#   [paper]  Zhao et al. 2025, "Absolute Zero: Reinforced Self-play Reasoning with Zero Data", arXiv 2505.03335,
#            Table 3 (hyperparameters, the same for every run) and §3.3.1 (seeding: |D_seed| = B x S).
#   [script] LeapLabTHU/Absolute-Zero-Reasoner scripts/selfplay/7b.sh at a82124e.
#   [yaml]   the same repository's absolute_zero_reasoner/configs/azr_ppo_trainer.yaml at a82124e: the defaults that
#            7b.sh does not override. Its first commit (477d6fa) had entropy_coeff 0.001, as in Table 3, and a
#            symmetric clip 0.2 with no clip_ratio_high; we follow a82124e, clip-higher and no entropy bonus included:
#            add actor_rollout_ref.actor.entropy_coeff=0.001 for the paper's value.
#   [verl]   verl 0.9.1's default, set here so that the script shows it.
#   [ours]   not from the reference: the reference uses fixed micro-batches (16 per GPU); we pack by tokens.
# The reference draws the 8 learnability samples with validation (greedy) settings; we use the training temperature,
# as the paper intends (verl_selfplay/azr/agent_loop.py).
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-7B}      # [script] actor_rollout_ref.model.path
DATA_DIR=${DATA_DIR:-$HOME/data/azr}
NNODES=${NNODES:-1}                            # [script] cluster shape, not a hyperparameter
GPUS_PER_NODE=${GPUS_PER_NODE:-4}              # [script] cluster shape, not a hyperparameter
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-azr_qwen7b}
RUN_DIR=${RUN_DIR:-$HOME/verl_selfplay_runs/$EXPERIMENT_NAME}   # verl's file-logger metrics, for the report

n_task_types=3                                 # [paper] deduction, abduction, induction
propose_per_type=64                            # [paper] batch 64 * 6; [script] data.train_batch_size=64
solve_per_type=64                              # [paper] batch 64 * 6; [script] data.train_batch_size=64
train_batch_size=$((n_task_types * (propose_per_type + solve_per_type)))  # [paper] 64 * 6 = 384 rows per step
n_references=6                                 # [paper] K references; [yaml] data_selection_strategy.io_n=6
n_learn=8                                      # [paper] N samples to estimate task accuracy; [script] n_samples=8
seed_batch_factor=4                            # [paper] §3.3.1 S = 4; [script] seed_batch_factor=4
seed_buffer_size=$((propose_per_type * seed_batch_factor))  # [paper] [script] |D_seed| = B x S = 256 per buffer
buffer_cap=16384                               # [paper] max programs; [script] max_programs=16384
induction_inputs=10                            # [yaml] data_selection_strategy.num_inputs=10
exec_timeout=10                                # [yaml] execute_max_timeout=10 seconds
zero_solve_reward=-0.5                         # [yaml] code: s in {0, 1} gives -0.5 (the paper's Eq. 4 gives 0)
rollout_n=1                                    # [paper] N rollouts 1; [script] rollout.n=1
lr=1e-6                                        # [paper] [script] constant ([yaml] warmup_style=constant)
lr_warmup_steps_ratio=0.0                      # [yaml]
weight_decay=0.0                               # [yaml] (verl's default is 0.01)
grad_clip=1.0                                  # [paper] [yaml]
temperature=1.0                                # [paper] [script]
top_p=1.0                                      # [paper] [yaml]
max_prompt_length=6144                         # [paper] [script]
max_response_length=8096                       # [paper] [script] (sic: not 8192)
ppo_mini_batch_size=128                        # [script]
ppo_epochs=1                                   # [paper] [yaml]
clip_ratio_low=0.2                             # [yaml]
clip_ratio_high=0.28                           # [yaml] clip-higher
entropy_coeff=0.0                              # [yaml] at a82124e; the paper's Table 3 says 0.001 (see above)
gamma=1.0                                      # [yaml] algorithm.gamma: REINFORCE++ returns = the outcome reward
use_dynamic_bsz=True                           # [ours] pack micro-batches by tokens
actor_max_tokens=16384                         # [yaml] ppo_max_token_len_per_gpu; >= 6144 + 8096, one full sequence
sp_size=4                                      # [script] Ulysses sequence parallel
gen_tp=2                                       # [script] rollout tensor parallel
gpu_memory_utilization=0.4                     # [script]
max_num_batched_tokens=16384                   # [script]
agent_workers=8                                # [verl] agent-loop workers: proposer sandboxing + learnability samples
reward_workers=8                               # [verl] reward workers: solver scoring in the sandbox
total_training_steps=500                       # [paper] total steps
test_freq=10                                   # [script]
save_freq=10                                   # [script]

python3 -m verl_selfplay.gpu_preflight --model "$MODEL_PATH" --gpus "$GPUS_PER_NODE" --need vllm

if [ ! -f "$DATA_DIR/train.parquet" ] || [ ! -f "$DATA_DIR/test.parquet" ]; then
    python3 -m verl_selfplay.azr.data --out "$DATA_DIR" --prompt-style reference
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
    actor_rollout_ref.actor.optim.lr_scheduler_type=constant \
    actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=$lr_warmup_steps_ratio \
    actor_rollout_ref.actor.optim.weight_decay=$weight_decay \
    actor_rollout_ref.actor.optim.clip_grad=$grad_clip \
    actor_rollout_ref.actor.ppo_mini_batch_size=$ppo_mini_batch_size \
    actor_rollout_ref.actor.ppo_epochs=$ppo_epochs \
    actor_rollout_ref.actor.use_dynamic_bsz=$use_dynamic_bsz \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$actor_max_tokens \
    actor_rollout_ref.actor.clip_ratio_low=$clip_ratio_low \
    actor_rollout_ref.actor.clip_ratio_high=$clip_ratio_high \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.actor.entropy_coeff=$entropy_coeff \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.actor.ulysses_sequence_parallel_size=$sp_size \
    actor_rollout_ref.actor.fsdp_config.param_offload=False \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=False \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=$rollout_n \
    actor_rollout_ref.rollout.temperature=$temperature \
    actor_rollout_ref.rollout.top_p=$top_p \
    actor_rollout_ref.rollout.tensor_model_parallel_size=$gen_tp \
    actor_rollout_ref.rollout.gpu_memory_utilization=$gpu_memory_utilization \
    actor_rollout_ref.rollout.max_num_batched_tokens=$max_num_batched_tokens \
    actor_rollout_ref.rollout.agent.num_workers=$agent_workers \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.scheme=azr \
    reward.num_workers=$reward_workers \
    algorithm.adv_estimator=task_relative_reinforce_plus_plus \
    algorithm.gamma=$gamma \
    algorithm.use_kl_in_reward=False \
    trainer.v1.trainer_mode=azr \
    trainer.logger='[console,wandb,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.nnodes="$NNODES" \
    trainer.n_gpus_per_node="$GPUS_PER_NODE" \
    trainer.total_training_steps=$total_training_steps \
    trainer.val_before_train=False \
    trainer.test_freq=$test_freq \
    trainer.save_freq=$save_freq \
    '+azr.task_types=[deduction,abduction,induction]' \
    +azr.propose_per_type=$propose_per_type \
    +azr.solve_per_type=$solve_per_type \
    +azr.n_references=$n_references \
    +azr.n_learn=$n_learn \
    +azr.seed_buffer_size=$seed_buffer_size \
    +azr.buffer_cap=$buffer_cap \
    +azr.induction_inputs=$induction_inputs \
    +azr.timeout=$exec_timeout \
    +azr.zero_solve_reward=$zero_solve_reward \
    +azr.prompt_style=reference \
    "$@"

echo "training report: python3 -m verl_selfplay.report $RUN_DIR --out $RUN_DIR/report"
