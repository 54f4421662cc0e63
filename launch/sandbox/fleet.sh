#!/usr/bin/env bash
# Start, check or stop a fleet of sandbox replicas on this machine.
#
#   launch/sandbox/fleet.sh start [-n REPLICAS] [-w WORKERS] [-p BASE_PORT] [-H HOST] [-- SERVE_ARGS...]
#   launch/sandbox/fleet.sh status
#   launch/sandbox/fleet.sh stop
#
# `start` runs REPLICAS x `qwqrl sandbox serve` (ports BASE_PORT..), each with WORKERS slots
# (default: cores / REPLICAS), waits for every /healthz, and prints the QWQRL_SANDBOX_URL line to
# export for the trainer. Several replicas per machine keep one slow or crashed server from
# taking the whole machine's capacity with it; each claims its own block of slot uids.
# PIDs and logs live in $FLEET_DIR (default /tmp/qwqrl-sandbox-fleet); `stop` ends exactly the
# processes recorded there. Extra flags after `--` go to every replica (e.g. `--require full`).
set -euo pipefail

FLEET_DIR=${FLEET_DIR:-/tmp/qwqrl-sandbox-fleet}
QWQRL=${QWQRL:-qwqrl}
HEALTH_TIMEOUT_S=${HEALTH_TIMEOUT_S:-60}

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

health() { python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

start() {
  local replicas=2 workers="" port=8080 host=127.0.0.1
  while [ $# -gt 0 ]; do
    case "$1" in
      -n) replicas=$2; shift 2 ;;
      -w) workers=$2; shift 2 ;;
      -p) port=$2; shift 2 ;;
      -H) host=$2; shift 2 ;;
      --) shift; break ;;
      *) echo "$0: unknown option $1" >&2; usage ;;
    esac
  done
  [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || { echo "$0: -n expects a positive integer, got '$replicas'" >&2; exit 2; }
  if [ -z "$workers" ]; then workers=$(( $(nproc) / replicas )); [ "$workers" -ge 1 ] || workers=1; fi
  if [ -s "$FLEET_DIR/pids" ]; then echo "$0: a fleet is already recorded in $FLEET_DIR; stop it first" >&2; exit 2; fi
  mkdir -p "$FLEET_DIR"
  : > "$FLEET_DIR/pids"
  local urls=() reach=$host check=$host
  if [ "$host" = 0.0.0.0 ]; then reach=$(hostname -f 2>/dev/null || hostname); check=127.0.0.1; fi
  for i in $(seq 0 $((replicas - 1))); do
    local p=$((port + i))
    "$QWQRL" sandbox serve --host "$host" --port "$p" --workers "$workers" "$@" \
      > "$FLEET_DIR/replica-$p.log" 2>&1 &
    echo "$! $p" >> "$FLEET_DIR/pids"
    urls+=("http://$reach:$p")
  done
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  while read -r pid p; do
    until health "http://$check:$p"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "$0: replica on port $p exited; see $FLEET_DIR/replica-$p.log" >&2; tail -5 "$FLEET_DIR/replica-$p.log" >&2; stop; exit 1
      fi
      if [ $SECONDS -ge $deadline ]; then echo "$0: replica on port $p not healthy after ${HEALTH_TIMEOUT_S}s" >&2; stop; exit 1; fi
      sleep 0.2
    done
  done < "$FLEET_DIR/pids"
  (IFS=,; echo "export QWQRL_SANDBOX_URL=${urls[*]}")
}

status() {
  [ -s "$FLEET_DIR/pids" ] || { echo "no fleet recorded in $FLEET_DIR"; return 0; }
  while read -r pid p; do
    if kill -0 "$pid" 2>/dev/null && health "http://127.0.0.1:$p"; then state=healthy
    elif kill -0 "$pid" 2>/dev/null; then state=unhealthy; else state=dead; fi
    echo "port $p pid $pid $state"
  done < "$FLEET_DIR/pids"
}

stop() {
  [ -s "$FLEET_DIR/pids" ] || return 0
  while read -r pid _; do kill -TERM "$pid" 2>/dev/null || true; done < "$FLEET_DIR/pids"
  for _ in $(seq 50); do
    alive=0
    while read -r pid _; do kill -0 "$pid" 2>/dev/null && alive=1; done < "$FLEET_DIR/pids"
    [ $alive = 0 ] && break
    sleep 0.2
  done
  while read -r pid _; do kill -KILL "$pid" 2>/dev/null || true; done < "$FLEET_DIR/pids"
  : > "$FLEET_DIR/pids"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  status) status ;;
  stop) stop ;;
  *) usage ;;
esac
