#!/usr/bin/env bash
# PCL on CPU: a short, real run of verl's own trainer with PCL's prompt selection (trainer mode `pcl`).
#
# The same CPU path as run_tiny_cpu.sh (verl's v1 trainer, Ray, TransferQueue, FSDP2 over gloo, the `hf` rollout,
# the tiny addition model, reward_fns.compute_score). Each step PCL draws k * train_batch_size candidate prompts,
# predicts each one's pass rate with its value model, trains on the train_batch_size closest to tau = 0.5, then
# fits the value model to the observed pass rates (metric `acc`).
#
# VALUE_MODEL=llm (default): the paper's kind of value model, here the tiny model itself with a value head, on
#   verl's TrainingWorker group beside the actor (verl_selfplay/pcl/value_worker.py); configured by verl's
#   critic.* keys (the critic itself stays off: GRPO). The driver process holds no value-model weights.
# VALUE_MODEL=embedding: a frozen MiniLM sentence encoder plus a small online head, in the driver (CPU).
#
# Run (from a fresh clone):  bash scripts/setup.sh && bash recipes/run_pcl_tiny_cpu.sh [overrides...]
# verl's per-step metrics, the pcl/* ones included (pcl/value_loss: the value model's MSE on each step's prompts
# before its update; pcl/value_mse, pcl/calibration_error, pcl/effective_ratio, pcl/time/*), go to
# $WORK_DIR/metrics.jsonl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK_DIR=${WORK_DIR:-$HOME/verl_selfplay_pcl_tiny_cpu}
MODEL_PATH=${MODEL_PATH:-$WORK_DIR/model}
DATA_DIR=${DATA_DIR:-$WORK_DIR/data}
SEED=${SEED:-0}
PROJECT_NAME=${PROJECT_NAME:-verl_selfplay}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-pcl_tiny_cpu}
STEPS=${STEPS:-20}
VALUE_MODEL=${VALUE_MODEL:-llm}  # llm | embedding

lr=1e-4                          # as run_tiny_cpu.sh (measured there on this model)
train_batch_size=8               # prompts per step (PCL's m)
pcl_k=4                          # candidates per trained prompt [PCL, Gao et al. 2025: k=4]
pcl_tau=0.5                      # target pass rate [PCL: tau=0.5]
rollout_n=4                      # GRPO group size
max_prompt_length=32             # "What is 3+4?" in ChatML is 15 tokens
max_response_length=24           # "<think>3+4=7</think><answer>7</answer>" is 11 tokens
value_lr=1e-3                    # [ours] the tiny value model; a 1.5B model wants ~1e-5 (verl's critic default)
value_max_token_len=512          # [ours] tokens per micro-batch of the value model (dynamic batch sizes)
test_freq=5

case "$VALUE_MODEL" in
    llm)
        value_model_args=(
            +pcl.value_model=llm
            critic.use_dynamic_bsz=True
            critic.ppo_max_token_len_per_gpu=$value_max_token_len
            critic.optim.lr=$value_lr
        ) ;;
    embedding)
        value_model_args=(+pcl.value_model=embedding) ;;
    *)
        echo "VALUE_MODEL=$VALUE_MODEL; valid: embedding, llm" >&2
        exit 2 ;;
esac

# use the repository's virtual environment when none is active (scripts/setup.sh creates it)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$REPO/.venv/bin/python3" ] && ! python3 -c "import verl" 2>/dev/null; then
    export PATH="$REPO/.venv/bin:$PATH"
fi

if [ ! -f "$MODEL_PATH/config.json" ] || [ ! -f "$DATA_DIR/train.parquet" ]; then
    echo "building the tiny model into $MODEL_PATH and the addition data into $DATA_DIR"
    python3 -m verl_selfplay.tiny --out "$MODEL_PATH" --data-out "$DATA_DIR" --seed "$SEED"
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
    actor_rollout_ref.rollout.n=$rollout_n \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=$train_batch_size \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=$train_batch_size \
    reward.custom_reward_function.path=pkg://reward_fns \
    reward.custom_reward_function.name=compute_score \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    trainer.v1.trainer_mode=pcl \
    +pcl.k=$pcl_k \
    +pcl.tau=$pcl_tau \
    +pcl.metric=acc \
    "${value_model_args[@]}" \
    trainer.logger='[console,file]' \
    trainer.project_name="$PROJECT_NAME" \
    trainer.experiment_name="$EXPERIMENT_NAME" \
    trainer.default_local_dir="$WORK_DIR/checkpoints" \
    trainer.total_training_steps=$STEPS \
    trainer.val_before_train=True \
    trainer.test_freq=$test_freq \
    trainer.save_freq=-1 \
    hydra.run.dir="$WORK_DIR/hydra" \
    "$@" 2>&1 | tee "$WORK_DIR/run.log"

python3 -m verl_selfplay.cpu.report "$VERL_FILE_LOGGER_PATH" --log "$WORK_DIR/run.log" --png "$WORK_DIR/curve.png"
python3 -m verl_selfplay.report "$WORK_DIR" --out "$WORK_DIR/report"
echo "training report: python3 -m verl_selfplay.report $WORK_DIR --out $WORK_DIR/report"
