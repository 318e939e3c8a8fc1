#!/usr/bin/env bash
# Load comparison: our whoami server (bench_server, benches/load/src/bench_server.rs: the
# whoami example's axum app plus two twin routes) against the same server written with the npm
# mcp-auth 0.2.0 (benches/load/peer-js), on this machine, in one run.
#
#   bash benches/load/run.sh
#
# Both servers trust the same authorization server (the crate's test authorization server, run
# by benches/load/src/bench_auth_server.rs on the load generator's core), are the same
# protected resource (RESOURCE below: the accepted audience), require the scope `read`, and get
# the same MCP request (`tools/call whoami`, stateless Streamable HTTP, JSON response) with the
# same valid token from the same load generator (wrk), with the same connections and duration.
# Each server runs alone, pinned to one core (taskset); wrk runs pinned to the other core. Each
# server is measured on its guarded route (/mcp) and on its unguarded twin (/mcp-noauth, where
# a fixed identity stands in), after a warm-up run, with identical requests (the token is sent
# to the unguarded route too, unread, so that only the guard differs); ours also on /mcp-bearer
# (the bearer guard alone, without the example's session binding and per-tool scopes). When
# `perf stat` works, the server's CPU time per request is measured as well (task-clock over the
# measured run / requests), which gives requests/s per core (1 s / CPU time per request) and
# how busy the server's core was: unlike requests/s, it hardly moves when other processes
# compete for the cores, and it does not depend on the load generator keeping up.
#
# The servers and wrk run at a raised priority so that other work on the machine disturbs the
# measurement less: LOAD_PRIORITY=nice (default: nice -10, when allowed) or none. (Real-time
# scheduling is no option: node pinned to one core with SCHED_FIFO starves its own helper
# threads, and the kernel's real-time throttling would show in p99.) On a busy machine even
# nice -10 leaves the servers waiting for the CPU after each wake-up, so requests/s and the
# latencies suffer; the CPU time per request does not.
#
# Settings (environment): LOAD_DURATION (seconds per measured run, default 10), LOAD_WARMUP
# (seconds, default 3), LOAD_CONNECTIONS (default 64), LOAD_SERVER_CPU (default 0),
# LOAD_CLIENT_CPU (default 1), LOAD_PRIORITY (default nice), LOAD_OUTPUT (also write the report
# to this file).
#
# Installs what is missing: wrk (Debian package), the peer's npm packages (`npm ci` from the
# committed package-lock.json). Needs node >= 20.19 and npm (Debian bookworm's nodejs is 18:
# install a newer one if the check below fails). All traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${LOAD_DURATION:-10}
WARMUP=${LOAD_WARMUP:-3}
CONNECTIONS=${LOAD_CONNECTIONS:-64}
SERVER_CPU=${LOAD_SERVER_CPU:-0}
CLIENT_CPU=${LOAD_CLIENT_CPU:-1}
OUTPUT=${LOAD_OUTPUT:-}
PRIORITY=${LOAD_PRIORITY:-nice}
RESOURCE="https://mcp.bench.example/mcp"
SCOPES="read"
LUA="benches/load/mcp.lua"
PEER="benches/load/peer-js"
WHOAMI='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'

. benches/load/lib.sh

# ---- tools --------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
need taskset curl node npm cargo /usr/bin/time
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || fail "node $(node -v) is too old for mcp-auth 0.2.0 (needs ^20.19, 22 or 24)"
[ "$(nproc)" -ge 2 ] || fail "needs 2 cores: one for the server, one for the load generator"

log "building the benchmark servers (release)"
cargo build --release --locked --quiet -p mcp-auth-load --bin bench_server --bin bench_auth_server
if [ ! -d "$PEER/node_modules" ] || [ "$PEER/package-lock.json" -nt "$PEER/node_modules" ]; then
  log "installing the JS peer's packages (npm ci)"
  (cd "$PEER" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules)
fi

# Command prefixes: pinned to a CPU, at the raised priority when allowed. (Each program execs
# the next, so a background job's $! is the pid of the server itself.)
RAISE=()
case $PRIORITY in
  nice) if nice -n -10 true 2>/dev/null; then RAISE=(nice -n -10); fi ;;
  none) ;;
  *) fail "LOAD_PRIORITY=$PRIORITY: use nice or none" ;;
esac
ON_SERVER_CPU=("${RAISE[@]}" taskset -c "$SERVER_CPU")
ON_CLIENT_CPU=("${RAISE[@]}" taskset -c "$CLIENT_CPU")

# ---- processes ----------------------------------------------------------------------------
scratch


stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

log "starting the authorization server (test-util; benchmarks only) on CPU $CLIENT_CPU"
taskset -c "$CLIENT_CPU" target/release/bench_auth_server \
  --out "$WORK" --audience "$RESOURCE" --scope "read write" >"$WORK/as.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/ready"
ISSUER=$(cat "$WORK/issuer")
TOKEN=$(cat "$WORK/token")

# POSTs whoami to `url` with an optional token; prints "<status> <body>".
call() {
  local url=$1 token=${2:-}
  local args=(-sS -m 10 -o "$WORK/body" -w '%{http_code}' -X POST "$url"
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
    -H 'MCP-Protocol-Version: 2025-06-18' -d "$WHOAMI")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  printf '%s %s' "$(curl "${args[@]}")" "$(cat "$WORK/body")"
}

# Both routes answer whoami for Alice; the guarded one refuses a missing token.
sanity_check() {
  local base=$1 answer
  answer=$(call "$base/mcp" "$TOKEN")
  [[ $answer == 200* && $answer == *'Alice Example'* ]] || fail "guarded whoami: $answer"
  answer=$(call "$base/mcp-noauth")
  [[ $answer == 200* && $answer == *'Alice Example'* ]] || fail "unguarded whoami: $answer"
  answer=$(call "$base/mcp")
  [[ $answer == 401* ]] || fail "no token should get 401: $answer"
  if [ "${2:-}" = bearer ]; then
    answer=$(call "$base/mcp-bearer" "$TOKEN")
    [[ $answer == 200* && $answer == *'Alice Example'* ]] || fail "bearer-only whoami: $answer"
  fi
}

declare -A RPS P50 P99 CPU_US

# Converts wrk's latency ("812.00us", "1.20ms", "1.01s") to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { printf "nan" } }'
}

PERF=no
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then PERF=yes; fi

# measure NAME URL TOKEN SERVER_PID: a warm-up run, then the measured run (with `perf stat`
# on the server during it, when available).
measure() {
  local name=$1 url=$2 token=$3 pid=$4 out="$WORK/wrk-$1.txt" stat="$WORK/perf-$1.txt" perf_pid=
  BENCH_TOKEN=$token "${ON_CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" \
    -s "$LUA" "$url" >/dev/null
  if [ "$PERF" = yes ]; then
    perf stat -x, -e task-clock -p "$pid" -o "$stat" -- sleep "$DURATION" &
    perf_pid=$!
  fi
  BENCH_TOKEN=$token "${ON_CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
    --latency -s "$LUA" "$url" >"$out"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; fail "$name: some answers were not 2xx"; fi
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  CPU_US[$name]=-
  if [ -n "$perf_pid" ]; then
    # task-clock is in ms; the requests are wrk's count over the same duration.
    local requests cpu_ms
    requests=$(awk '/requests in/ {print $1}' "$out")
    cpu_ms=$(awk -F, '$3 ~ /^task-clock/ {print $1}' "$stat")
    CPU_US[$name]=$(awk -v ms="$cpu_ms" -v n="$requests" \
      'BEGIN { if (n > 0 && ms > 0) printf "%.1f", 1000 * ms / n; else printf "-" }')
  fi
  if grep -q 'Socket errors' "$out"; then log "$name: $(grep 'Socket errors' "$out")"; fi
  log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms, server CPU ${CPU_US[$name]} us/request"
}

log "ours: bench_server (axum + rmcp + mcp-auth) on CPU $SERVER_CPU"
PORT=0 MCP_AUTH_ISSUER="$ISSUER" MCP_AUTH_RESOURCE="$RESOURCE" MCP_AUTH_REQUIRED_SCOPES="$SCOPES" \
  TOKIO_WORKER_THREADS=1 RUST_LOG=warn \
  "${ON_SERVER_CPU[@]}" target/release/bench_server >"$WORK/ours.log" 2>&1 &
OURS=$!
PIDS+=("$OURS")
OURS_PORT=$(wait_for_port "$WORK/ours.log" "$OURS")
sanity_check "http://127.0.0.1:$OURS_PORT" bearer
measure ours_auth "http://127.0.0.1:$OURS_PORT/mcp" "$TOKEN" "$OURS"
measure ours_bearer "http://127.0.0.1:$OURS_PORT/mcp-bearer" "$TOKEN" "$OURS"
measure ours_noauth "http://127.0.0.1:$OURS_PORT/mcp-noauth" "$TOKEN" "$OURS"
stop "$OURS"

log "peer: npm mcp-auth 0.2.0 (express + MCP TypeScript SDK) on CPU $SERVER_CPU"
PORT=0 MCP_AUTH_ISSUER="$ISSUER" MCP_AUTH_RESOURCE="$RESOURCE" MCP_AUTH_REQUIRED_SCOPES="$SCOPES" \
  NODE_ENV=production "${ON_SERVER_CPU[@]}" node "$PEER/server.mjs" >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
PEER_PORT=$(wait_for_port "$WORK/peer.log" "$PEER_PID")
sanity_check "http://127.0.0.1:$PEER_PORT"
measure peer_auth "http://127.0.0.1:$PEER_PORT/mcp" "$TOKEN" "$PEER_PID"
measure peer_noauth "http://127.0.0.1:$PEER_PORT/mcp-noauth" "$TOKEN" "$PEER_PID"
stop "$PEER_PID"

# ---- report -------------------------------------------------------------------------------
per_core() { awk -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", 1e6 / us; else printf "-" }'; }
busy() { awk -v r="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.0f%%", r * us / 1e4; else printf "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "nan" }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else printf "nan" }'; }
version() { node -p "require('./$PEER/node_modules/$1/package.json').version"; }

{
  echo "## Load comparison ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, $(uname -sr)"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ ${#RAISE[@]} -gt 0 ]; then
    echo "- priority: servers and wrk run with \`${RAISE[*]}\`"
  else
    echo "- priority: default (LOAD_PRIORITY=$PRIORITY)"
  fi
  echo "- load generator: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNECTIONS -d${DURATION}s --latency (after a ${WARMUP}s warm-up), pinned to CPU $CLIENT_CPU"
  echo "- servers pinned to CPU $SERVER_CPU: ours $(rustc -V | cut -d' ' -f1-2), release build, tokio 1 worker thread;" \
       "peer node $(node -v), mcp-auth $(version mcp-auth), express $(version express), @modelcontextprotocol/sdk $(version @modelcontextprotocol/sdk)"
  echo "- request: POST tools/call whoami, JSON response, with one valid RS256 token (aud $RESOURCE, scope read write; scope read required) on every route"
  echo
  echo "| server | route | requests/s | p50 (ms) | p99 (ms) | server CPU (µs/request) | requests/s per core | server core busy |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for name in ours_auth ours_bearer ours_noauth peer_auth peer_noauth; do
    case $name in
      ours_auth) label="mcp-auth (Rust) | /mcp: the whoami example's guard (bearer + sessions + tool scopes)" ;;
      ours_bearer) label="mcp-auth (Rust) | /mcp-bearer: BearerAuthLayer alone" ;;
      ours_noauth) label="mcp-auth (Rust) | /mcp-noauth: no auth" ;;
      peer_auth) label="mcp-auth 0.2.0 (JS) | /mcp: bearerAuth('jwt')" ;;
      peer_noauth) label="mcp-auth 0.2.0 (JS) | /mcp-noauth: no auth" ;;
    esac
    echo "| $label | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | ${CPU_US[$name]} | $(per_core "${CPU_US[$name]}") | $(busy "${RPS[$name]}" "${CPU_US[$name]}") |"
  done
  echo
  if [ "$PERF" = yes ]; then
    echo "- authenticated requests/s per core, ours / JS: $(ratio "${CPU_US[peer_auth]}" "${CPU_US[ours_auth]}")x (target >= 10x)"
  fi
  echo "- authenticated requests/s, ours / JS: $(ratio "${RPS[ours_auth]}" "${RPS[peer_auth]}")x (bounded by the load generator when our server's core is not busy all the time)"
  echo "- authenticated p99, JS / ours: $(ratio "${P99[peer_auth]}" "${P99[ours_auth]}")x (target: ours lower)"
  echo "- ours, authenticated / unauthenticated throughput: $(percent "${RPS[ours_auth]}" "${RPS[ours_noauth]}") with the example's whole guard, $(percent "${RPS[ours_bearer]}" "${RPS[ours_noauth]}") with the bearer guard alone (target >= 85%)"
  echo "- JS, authenticated / unauthenticated throughput: $(percent "${RPS[peer_auth]}" "${RPS[peer_noauth]}")"
  if [ "$PERF" = yes ]; then
    echo "- ours, authenticated / unauthenticated requests/s per core: $(percent "${CPU_US[ours_noauth]}" "${CPU_US[ours_auth]}") with the whole guard, $(percent "${CPU_US[ours_noauth]}" "${CPU_US[ours_bearer]}") with the bearer guard alone (target >= 85%)"
  fi
} | tee "$WORK/report.md"
if [ -n "$OUTPUT" ]; then cp "$WORK/report.md" "$OUTPUT"; fi
