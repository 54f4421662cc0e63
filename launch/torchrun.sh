#!/usr/bin/env bash
# Train on one node: one trainer process per GPU, started by torchrun.
#
#   launch/torchrun.sh RECIPE [qwqrl train args, e.g. --set stages.0.trainer.lr=5e-7]
#   NPROC=4 launch/torchrun.sh recipes/qwen2.5-1.5b/single-gpu.yaml
#
# NPROC defaults to the number of GPUs nvidia-smi lists. Every rank runs the same `qwqrl train`;
# the recipe decides ZeRO stage, offload and vLLM tensor parallelism (which must divide NPROC).
# For several nodes use launch/slurm/train.slurm or launch/deepspeed.sh with a hostfile.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  echo "usage: [NPROC=N] $0 RECIPE [qwqrl train args...]" >&2
  exit 2
fi
recipe=$1
shift

if [[ -z "${NPROC:-}" ]]; then
  NPROC=$(nvidia-smi -L 2>/dev/null | wc -l) || NPROC=0
fi
if (( NPROC < 1 )); then
  echo "$0: no GPU found by nvidia-smi; set NPROC (plain \`qwqrl train\` runs on CPU)" >&2
  exit 2
fi

# --standalone: a rendezvous on a free local port, so two jobs on one node do not collide.
exec torchrun --standalone --nnodes=1 --nproc_per_node="$NPROC" -m qwqrl train "$recipe" "$@"
