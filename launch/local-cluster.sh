#!/bin/bash
# The multi-node layout of launch/slurm/train.slurm, rehearsed on this machine over loopback.
#
#   RM_MODEL=runs/demo/reward_model launch/local-cluster.sh RECIPE [qwqrl train args...]
#
# Two trainer "nodes" (two torchrun agents, --nnodes 2, one gloo process each, c10d rendezvous
# on 127.0.0.1), two sandbox replicas and one `qwqrl rm serve`, started, health-checked, passed
# to the trainers and stopped by the same code as the Slurm job (launch/services.sh). With
# FAULTS set, `python -m qwqrl.rehearsal.faults` kills and restarts parts of it at chosen steps
# (see that module); `qwqrl rehearse` runs the whole rehearsal and checks what must hold.
# Exit status: the trainers' (0 when both nodes finished). Only 127.0.0.1 is used.
#
# Environment (defaults): QWQRL_VENV (.venv), CLUSTER_DIR (runs/local-cluster: logs and the
# fault journal), RDZV_PORT (29500), SANDBOX_PORT (8080, and the next one), SANDBOX_WORKERS (1),
# SANDBOX_ARGS, RM_MODEL (unset: no RM server), RM_PORT (8100), RM_STAGE (2),
# DIST_TIMEOUT_S (120: a collective with a dead peer fails instead of hanging), FAULTS (unset),
# HEALTH_TIMEOUT_S (120).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: [RM_MODEL=PATH] [FAULTS=PLAN] $0 RECIPE [qwqrl train args...]" >&2
  exit 2
fi
recipe=$1
shift
RDZV_PORT=${RDZV_PORT:-29500}
SANDBOX_PORT=${SANDBOX_PORT:-8080}
SANDBOX_WORKERS=${SANDBOX_WORKERS:-1}
RM_PORT=${RM_PORT:-8100}
RM_STAGE=${RM_STAGE:-2}
CLUSTER_DIR=${CLUSTER_DIR:-runs/local-cluster}
export HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-120} HEALTH_POLL_S=${HEALTH_POLL_S:-0.2}
export STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-20}
export QWQRL_DIST_TIMEOUT_S=${DIST_TIMEOUT_S:-120}
# shellcheck disable=SC1091
source "${QWQRL_VENV:-.venv}/bin/activate"
# shellcheck source=launch/services.sh
source "$(dirname "$0")/services.sh"
mkdir -p "$CLUSTER_DIR"

# ---- servers: the same roles as the Slurm job's components 1 and 2, on 127.0.0.1 ------------
sandbox_urls=()
for port in "$SANDBOX_PORT" $((SANDBOX_PORT + 1)); do
  # shellcheck disable=SC2086  # SANDBOX_ARGS is a list of flags
  start_server qwqrl sandbox serve --host 127.0.0.1 --port "$port" --workers "$SANDBOX_WORKERS" \
    ${SANDBOX_ARGS:-} >> "$CLUSTER_DIR/sandbox-$port.log" 2>&1
  sandbox_urls+=("http://127.0.0.1:$port")
done
export_sandbox_urls "${sandbox_urls[@]}"
if [[ -n "${RM_MODEL:-}" ]]; then
  rm_url="http://127.0.0.1:$RM_PORT"
  start_server qwqrl rm serve --model "$RM_MODEL" --host 127.0.0.1 --port "$RM_PORT" \
    >> "$CLUSTER_DIR/rm.log" 2>&1
  use_remote_rm "$RM_STAGE" "$rm_url"
fi
for i in "${!sandbox_urls[@]}"; do wait_healthy "${sandbox_urls[$i]}" "${server_pids[$i]}"; done
[[ -z "${rm_url:-}" ]] || wait_healthy "$rm_url" "${server_pids[2]}"

# ---- trainers: two nodes of one process each, rendezvous hosted by node 0 -------------------
echo "trainers: 2 nodes x 1 process; sandboxes: $QWQRL_SANDBOX_URL; reward model: ${rm_url:-from the recipe}"
node_pids=()
for node in 0 1; do
  torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d \
    --rdzv-endpoint="127.0.0.1:$RDZV_PORT" --rdzv-id="local-$$" \
    --rdzv-conf="is_host=$((node == 0)),join_timeout=120" --max-restarts=0 \
    -m qwqrl train "$recipe" "${rm_overrides[@]}" "$@" > "$CLUSTER_DIR/node-$node.log" 2>&1 &
  node_pids+=($!)
done
stop_nodes() {  # a node left running when this script ends: end it (its whole process tree)
  local pid
  for pid in "${node_pids[@]}"; do
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap 'stop_nodes; stop_servers' EXIT

if [[ -n "${FAULTS:-}" ]]; then
  python -m qwqrl.rehearsal.faults --plan "$FAULTS" --journal "$CLUSTER_DIR/faults.jsonl" \
    --metrics "${METRICS_FILE:?FAULTS needs METRICS_FILE: the metrics.jsonl of the run}" \
    --nodes "${node_pids[@]}" --sandbox-pid "${server_pids[0]}" --sandbox-port "$SANDBOX_PORT" \
    --rm-pid "${server_pids[2]:-0}" --rm-port "$RM_PORT" --log-dir "$CLUSTER_DIR" \
    > "$CLUSTER_DIR/faults.log" 2>&1 &
  injector=$!
fi

rc=0
for node in 0 1; do
  node_rc=0
  wait "${node_pids[$node]}" || node_rc=$?
  echo "node $node exited with status $node_rc"
  ((rc)) || rc=$node_rc
done
if [[ -n "${injector:-}" ]]; then
  kill -TERM "$injector" 2>/dev/null || true  # it stops the servers it restarted
  wait "$injector" || true
fi
echo "training exited with status $rc"
exit "$rc"
