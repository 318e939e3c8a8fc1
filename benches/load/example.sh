#!/usr/bin/env bash
# The whoami example against bench_server (documented as the same app), under the same wrk load
# as benches/load/run.sh: one server core, wrk on the other, 32 connections, `tools/call whoami`
# with one repeated token. Each variant runs alone, back to back, ROUNDS times (default 2), so
# that the ratios are taken under the same machine load.
#
#   bash benches/load/example.sh
#
# Variants (all release builds, all pinned to LOAD_SERVER_CPU):
#   bench      target/release/bench_server, as run.sh runs it (RUST_LOG=warn,
#              TOKIO_WORKER_THREADS=1), route /mcp;
#   example    target/release/examples/whoami with exactly the same environment;
#   example-defaults  the example as a user starts it against that issuer: no RUST_LOG (the
#              example's default filter, `warn,mcp_auth=info`), no TOKIO_WORKER_THREADS;
#   example-unpinned  as example-defaults, but not pinned (tokio starts one worker per core,
#              sharing the load generator's core);
#   example-dev       the example with no configuration at all: its built-in test
#              authorization server, in-process, and the token it prints;
#   example-debug     as example-dev, the debug build (`cargo run --example whoami`), when
#              LOAD_DEBUG=1.
#
# Settings: LOAD_DURATION (s, default 10), LOAD_WARMUP (s, default 3), LOAD_CONNECTIONS
# (default 32), LOAD_SERVER_CPU (0), LOAD_CLIENT_CPU (1), ROUNDS (2), LOAD_DEBUG (0),
# LOAD_VARIANTS (a space-separated subset, in order; the first is the ratios' reference).
# Needs wrk, taskset, curl; perf (optional) adds the server's CPU time per request.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${LOAD_DURATION:-10}
WARMUP=${LOAD_WARMUP:-3}
CONNECTIONS=${LOAD_CONNECTIONS:-32}
SERVER_CPU=${LOAD_SERVER_CPU:-0}
CLIENT_CPU=${LOAD_CLIENT_CPU:-1}
ROUNDS=${ROUNDS:-2}
DEBUG_RUN=${LOAD_DEBUG:-0}
RESOURCE="https://mcp.bench.example/mcp"
LUA="benches/load/mcp.lua"

. benches/load/lib.sh

need wrk taskset curl cargo

log "building (release): bench_server, bench_auth_server, the whoami example"
cargo build --release --locked --quiet -p mcp-auth-load --bin bench_server --bin bench_auth_server
cargo build --release --locked --quiet --example whoami
if [ "$DEBUG_RUN" = 1 ] || [[ ${LOAD_VARIANTS:-} == *example-debug* ]]; then
  log "building (debug): the whoami example"
  cargo build --locked --quiet --example whoami
fi

scratch


log "starting the authorization server on CPU $CLIENT_CPU"
taskset -c "$CLIENT_CPU" target/release/bench_auth_server \
  --out "$WORK" --audience "$RESOURCE" --scope "read write" >"$WORK/as.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/ready"
ISSUER=$(cat "$WORK/issuer")
BENCH_TOKEN_VALUE=$(cat "$WORK/token")

PERF=no
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then PERF=yes; fi

# run_variant NAME: starts the variant's server, checks one call, measures, stops it; prints
# "NAME requests/s cpu-us/request".
run_variant() {
  local name=$1 out="$WORK/$1.log" pid port token url answer stat="$WORK/perf-$1.txt" perf_pid=
  local configured=(env PORT=0 MCP_AUTH_ISSUER="$ISSUER" MCP_AUTH_RESOURCE="$RESOURCE"
    MCP_AUTH_REQUIRED_SCOPES=read)
  case $name in
    bench) "${configured[@]}" TOKIO_WORKER_THREADS=1 RUST_LOG=warn \
             taskset -c "$SERVER_CPU" target/release/bench_server >"$out" 2>&1 & ;;
    example) "${configured[@]}" TOKIO_WORKER_THREADS=1 RUST_LOG=warn \
             taskset -c "$SERVER_CPU" target/release/examples/whoami >"$out" 2>&1 & ;;
    example-defaults) env -u RUST_LOG -u TOKIO_WORKER_THREADS "${configured[@]}" \
             taskset -c "$SERVER_CPU" target/release/examples/whoami >"$out" 2>&1 & ;;
    example-unpinned) env -u RUST_LOG -u TOKIO_WORKER_THREADS "${configured[@]}" \
             target/release/examples/whoami >"$out" 2>&1 & ;;
    example-dev) env -u RUST_LOG -u TOKIO_WORKER_THREADS -u MCP_AUTH_ISSUER PORT=0 \
             taskset -c "$SERVER_CPU" target/release/examples/whoami >"$out" 2>&1 & ;;
    example-debug) env -u RUST_LOG -u TOKIO_WORKER_THREADS -u MCP_AUTH_ISSUER PORT=0 \
             taskset -c "$SERVER_CPU" target/debug/examples/whoami >"$out" 2>&1 & ;;
    *) fail "unknown variant $name" ;;
  esac
  pid=$!
  PIDS+=("$pid")
  port=$(wait_for_port "$out" "$pid")
  case $name in
    example-dev|example-debug)
      token=$(grep -Eo "^TOKEN='[^']+'" "$out" | head -1 | sed "s/^TOKEN='//; s/'\$//") ;;
    *) token=$BENCH_TOKEN_VALUE ;;
  esac
  [ -n "$token" ] || fail "$name: no token"
  url="http://127.0.0.1:$port/mcp"
  answer=$(curl -sS -m 10 -X POST "$url" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}')
  [[ $answer == *'"sub"'* ]] || fail "$name: whoami answered $answer"
  BENCH_TOKEN=$token taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" \
    -s "$LUA" "$url" >/dev/null
  if [ "$PERF" = yes ]; then
    perf stat -x, -e task-clock -p "$pid" -o "$stat" -- sleep "$DURATION" &
    perf_pid=$!
  fi
  BENCH_TOKEN=$token taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$LUA" "$url" >"$WORK/wrk-$name.txt"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q 'Non-2xx' "$WORK/wrk-$name.txt"; then
    cat "$WORK/wrk-$name.txt" >&2
    fail "$name: some answers were not 2xx"
  fi
  local rps requests cpu_ms cpu_us=-
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/wrk-$name.txt")
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
  if [ -n "$perf_pid" ]; then
    cpu_ms=$(awk -F, '$3 ~ /^task-clock/ {print $1}' "$stat")
    cpu_us=$(awk -v ms="$cpu_ms" -v n="$requests" \
      'BEGIN { if (n > 0 && ms > 0) printf "%.1f", 1000 * ms / n; else printf "-" }')
  fi
  local p99
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk-$name.txt")
  echo "$name $rps $cpu_us $p99"
}

if [ -n "${LOAD_VARIANTS:-}" ]; then
  read -r -a VARIANTS <<<"$LOAD_VARIANTS"
else
  VARIANTS=(bench example example-defaults example-dev)
  [ "$DEBUG_RUN" = 1 ] && VARIANTS+=(example-debug)
fi

echo "| round | variant | requests/s | vs ${VARIANTS[0]} | server CPU (µs/request) | p99 |"
echo "|---|---|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
  bench_rps=
  for variant in "${VARIANTS[@]}"; do
    log "round $round: $variant"
    run_variant "$variant" >"$WORK/result"
    read -r name rps cpu_us p99 <"$WORK/result"
    [ -z "$bench_rps" ] && bench_rps=$rps
    ratio=$(awk -v a="$rps" -v b="$bench_rps" 'BEGIN { printf "%.2f", a / b }')
    echo "| $round | $name | $rps | $ratio | $cpu_us | $p99 |"
  done
done
echo
echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), wrk -t1 -c$CONNECTIONS -d${DURATION}s (after ${WARMUP}s), server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
