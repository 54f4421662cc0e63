#!/usr/bin/env bash
# Rollout workers for a trainer started elsewhere, whose recipe sets
#   generation: {placement: remote, remote: {launch: external, workers: K, host: TRAINER_HOST, port: PORT}}
#
#   QWQRL_REMOTE_AUTHKEY=SECRET launch/rollout_workers.sh TRAINER_HOST:PORT [INDEX_OFFSET]
#   QWQRL_REMOTE_AUTHKEY=SECRET WORKERS=4 launch/rollout_workers.sh 10.0.0.1:29600
#
# Starts WORKERS rollout workers on this node with torchrun (one per rank; rank r sees GPUs
# r*GPUS_PER_WORKER.. as its CUDA_VISIBLE_DEVICES), numbered INDEX_OFFSET + rank: on the n-th
# worker node of a slurm heterogeneous job pass n*WORKERS. Each dials the trainer, gets the
# model config and tokenizer from it, joins its weight-broadcast group and serves until the
# trainer stops it or exits. QWQRL_REMOTE_AUTHKEY must be the trainer's. WORKERS defaults to the
# GPUs nvidia-smi lists / GPUS_PER_WORKER (1). On CPU set WORKERS and GPUS_PER_WORKER=0.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  echo "usage: QWQRL_REMOTE_AUTHKEY=SECRET [WORKERS=K] [GPUS_PER_WORKER=G] $0 TRAINER_HOST:PORT [INDEX_OFFSET]" >&2
  exit 2
fi
if [[ -z "${QWQRL_REMOTE_AUTHKEY:-}" ]]; then
  echo "$0: set QWQRL_REMOTE_AUTHKEY to the trainer's secret" >&2
  exit 2
fi
trainer=$1
offset=${2:-0}
GPUS_PER_WORKER=${GPUS_PER_WORKER:-1}
if [[ -z "${WORKERS:-}" ]]; then
  gpus=$(nvidia-smi -L 2>/dev/null | wc -l) || gpus=0
  WORKERS=$(( GPUS_PER_WORKER > 0 ? gpus / GPUS_PER_WORKER : 0 ))
fi
if (( WORKERS < 1 )); then
  echo "$0: no GPU found for GPUS_PER_WORKER=$GPUS_PER_WORKER; set WORKERS (and GPUS_PER_WORKER=0 on CPU)" >&2
  exit 2
fi

exec torchrun --standalone --nnodes=1 --nproc_per_node="$WORKERS" -m qwqrl.generation.remote_worker \
  --learner "$trainer" --index-offset "$offset" --gpus-per-worker "$GPUS_PER_WORKER"
