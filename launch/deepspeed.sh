#!/usr/bin/env bash
# Train with the `deepspeed` launcher: one node, or several listed in an MPI-style hostfile.
#
#   launch/deepspeed.sh RECIPE [qwqrl train args]                      # this node, all GPUs
#   launch/deepspeed.sh --hostfile hosts.txt RECIPE [qwqrl train args] # every host in the file
#
# A hostfile has one line per node: `node-1 slots=8`. The launcher reaches the other nodes over
# passwordless ssh (pdsh) and runs the same command there from the same working directory, so
# the repository and its venv must sit at the same path on every node (a shared filesystem).
# Environment: NUM_GPUS (per node; default all), MASTER_PORT (default 29500).
set -euo pipefail

usage() { echo "usage: $0 [--hostfile FILE] RECIPE [qwqrl train args...]" >&2; exit 2; }

launcher_args=()
if [[ "${1:-}" == --hostfile ]]; then
  [[ $# -ge 2 && -f "$2" ]] || { echo "$0: hostfile not found: ${2:-}" >&2; exit 2; }
  launcher_args+=(--hostfile "$2")
  shift 2
fi
[[ $# -ge 1 && "$1" != -h && "$1" != --help ]] || usage
recipe=$1
shift
[[ -n "${NUM_GPUS:-}" ]] && launcher_args+=(--num_gpus "$NUM_GPUS")

# Remote nodes get only the variables DeepSpeed forwards by prefix (NCCL, PYTHON, ...). The
# sandbox fleet, reward model, wandb and hub settings travel in an env file it reads (DS_ENV_FILE)
# and reach the nodes as `export` statements on the pdsh command line: a WANDB_API_KEY set here
# is visible in the remote process list, so prefer `wandb login` on the node that runs rank 0.
env_file=$(mktemp "${TMPDIR:-/tmp}/qwqrl-ds-env.XXXXXX")
trap 'rm -f "$env_file"' EXIT
env | grep -E '^(QWQRL_|WANDB_|HF_|TRANSFORMERS_|VLLM_|CUDA_HOME=)' > "$env_file" || true
export DS_ENV_FILE=$env_file

# --no_local_rank: ranks read LOCAL_RANK from the environment; `qwqrl train` takes no --local_rank.
# Not exec: the trap above removes the env file when the launcher returns.
deepspeed "${launcher_args[@]}" --master_port "${MASTER_PORT:-29500}" --no_local_rank \
  --module qwqrl train "$recipe" "$@"
