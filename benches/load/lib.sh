# Shared by the load scripts in this folder, which source it after `cd` to the repository root:
# messages, tool checks, and a scratch directory whose background processes are stopped (and
# the directory removed) when the script exits, however it exits.

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need TOOL...: fail unless every TOOL is on the PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || fail "$tool is needed"
  done
}

# scratch: WORK is a fresh directory and PIDS the processes to stop; append each background
# job's $! to PIDS.
scratch() {
  WORK=$(mktemp -d)
  PIDS=()
  trap cleanup EXIT
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# wait_for_file FILE [SECONDS]: wait (30 s by default) until FILE exists.
wait_for_file() {
  local file=$1 tenths=$(( ${2:-30} * 10 )) i
  for i in $(seq "$tenths"); do
    [ -e "$file" ] && return 0
    sleep 0.1
  done
  fail "timed out waiting for $file"
}

# wait_for_port LOG [PID] [SECONDS]: wait (60 s by default) for "listening on
# 127.0.0.1:<port>" in LOG and print the port; fail early if PID (when given) exits.
wait_for_port() {
  local log=$1 pid=${2:-} tenths=$(( ${3:-60} * 10 )) i port
  for i in $(seq "$tenths"); do
    port=$(grep -Eo 'listening on +127\.0\.0\.1:[0-9]+' "$log" 2>/dev/null | head -1 | grep -Eo '[0-9]+$' || true)
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; fail "the server exited"; fi
    sleep 0.1
  done
  cat "$log" >&2
  fail "the server did not start within ${3:-60} s"
}
