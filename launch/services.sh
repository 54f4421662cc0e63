#!/bin/bash
# The servers of a training job, shared by launch/slurm/train.slurm and launch/local-cluster.sh.
#
#   source launch/services.sh
#   start_server [LAUNCHER...] qwqrl sandbox serve ...   # in the background; PID in server_pids
#   wait_healthy URL PID                                  # /healthz answers, or fail
#   export_sandbox_urls URL...                            # QWQRL_SANDBOX_URL for the trainers
#   use_remote_rm STAGE URL                               # --set overrides in rm_overrides
#
# Sourcing it installs the traps: the servers are stopped when the job ends, fails or is cancelled
# (TERM/INT run the EXIT trap). A cluster and its rehearsal on one machine differ only in where
# the servers run (srun on other nodes vs this machine's loopback), so everything else lives here.
# Environment (defaults): HEALTH_TIMEOUT_S (900), HEALTH_POLL_S (5), STOP_TIMEOUT_S (60).

HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-900}
HEALTH_POLL_S=${HEALTH_POLL_S:-5}
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-60}
server_pids=()
rm_overrides=()

start_server() {  # LAUNCHER... COMMAND...: run it in the background, remember its PID
  "$@" &
  server_pids+=($!)
}

stop_servers() {  # TERM every server (srun forwards it to its tasks); KILL what outlives the wait
  ((${#server_pids[@]})) || return 0
  echo "stopping servers"
  kill -TERM "${server_pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_S)) pid
  for pid in "${server_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait "${server_pids[@]}" 2>/dev/null || true
  server_pids=()
}
trap stop_servers EXIT
trap 'exit 143' TERM INT  # scancel / Ctrl-C: run the EXIT trap

wait_healthy() {  # URL PID: poll URL/healthz until it answers, its server dies, or time runs out
  local url=$1 pid=$2 deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  until curl -fsS --noproxy '*' --max-time 5 -o /dev/null "$url/healthz"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$0: the server for $url exited before answering /healthz" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$0: $url/healthz did not answer within ${HEALTH_TIMEOUT_S}s" >&2
      return 1
    fi
    sleep "$HEALTH_POLL_S"
  done
  echo "healthy: $url"
}

export_sandbox_urls() {  # URL...: the trainers' client spreads requests over all of them
  QWQRL_SANDBOX_URL=$(IFS=,; echo "$*")
  export QWQRL_SANDBOX_URL
}

use_remote_rm() {  # STAGE URL: the stage's general reward is the served RM, not a local one
  # path=null: the recipe may name a local RM; exactly one of path and url may be set.
  rm_overrides=(--set "stages.$1.rewards.general.path=null"
                --set "stages.$1.rewards.general.url=$2")
}
