#!/usr/bin/env bash
# Bounded memory: our whoami server (benches/load/src/bench_server.rs) receives N requests,
# each with a distinct valid token used once (the worst case for every per-token cache), and
# its peak resident memory is read from `/usr/bin/time -v`. Each run of MEMORY_RUNS is
# N[:ENTRIES]: N tokens, and the verified-token cache sized to ENTRIES (default: the default
# size, 10 000; 0 turns it off), each run in a fresh server process. The default runs, "1 10000
# 100000 100000:1000 100000:0", show that memory is bounded: the peak for 100 000 tokens is
# about the peak for 10 000, not ten times more, and what the cache holds scales with its
# configured size (nothing grows with the number of distinct tokens once the cache is full).
#
#   bash benches/load/memory.sh
#
# The tokens (ES256, signed on the fly) come from benches/load/src/bench_auth_server.rs, which
# is also the authorization server both processes trust; it sends them 32 at a time. All traffic
# stays on 127.0.0.1. Settings: MEMORY_RUNS, MEMORY_CONCURRENCY (default 32), MEMORY_OUTPUT
# (also write the report to this file).
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${MEMORY_RUNS:-"1 10000 100000 100000:1000 100000:0"}
CONCURRENCY=${MEMORY_CONCURRENCY:-32}
OUTPUT=${MEMORY_OUTPUT:-}
RESOURCE="https://mcp.bench.example/mcp"

. benches/load/lib.sh

[ -x /usr/bin/time ] || fail "/usr/bin/time (Debian package \`time\`) is needed"
log "building the benchmark servers (release)"
cargo build --release --locked --quiet -p mcp-auth-load --bin bench_server --bin bench_auth_server

scratch


declare -A PEAK WALL
for spec in $RUNS; do
  count=${spec%%:*}
  entries=default
  cache_env=()
  if [ "$spec" != "$count" ]; then
    entries=${spec#*:}
    cache_env=(BENCH_VERIFIED_TOKEN_CACHE="$entries")
  fi
  run="$WORK/$count-$entries"
  mkdir -p "$run"
  log "$count distinct tokens, verified-token cache: $entries"
  target/release/bench_auth_server --out "$run" --audience "$RESOURCE" --alg ES256 \
    --flood "@$run/url" --count "$count" --concurrency "$CONCURRENCY" >"$run/flood.log" 2>&1 &
  FLOOD=$!
  PIDS+=("$FLOOD")
  for i in $(seq 300); do [ -e "$run/ready" ] && break; sleep 0.1; done
  [ -e "$run/ready" ] || fail "the authorization server did not start"

  env "${cache_env[@]}" PORT=0 MCP_AUTH_ISSUER="$(cat "$run/issuer")" MCP_AUTH_RESOURCE="$RESOURCE" RUST_LOG=warn \
    /usr/bin/time -v -o "$run/time.txt" target/release/bench_server >"$run/server.log" 2>&1 &
  TIMED=$!
  PIDS+=("$TIMED")
  port=$(wait_for_port "$run/server.log")
  echo "http://127.0.0.1:$port/mcp" >"$run/url"

  started=$(date +%s)
  # The flood ends by itself; bound the wait anyway (10 minutes).
  for i in $(seq 6000); do kill -0 "$FLOOD" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$FLOOD" 2>/dev/null; then fail "the flood of $count requests took over 10 minutes"; fi
  wait "$FLOOD" || { cat "$run/flood.log" >&2; fail "not every request of the flood was answered 200"; }
  WALL[$spec]=$(( $(date +%s) - started ))
  cat "$run/flood.log" >&2

  # Stop the server itself (the child of `time`), so that `time` reports and exits.
  server=$(ps -o pid= --ppid "$TIMED" | tr -d ' ')
  [ -n "$server" ] && kill -TERM "$server"
  wait "$TIMED" || true
  PEAK[$spec]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$run/time.txt")
  log "$spec: peak RSS ${PEAK[$spec]} kB"
done

{
  echo "## Memory with distinct tokens ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "- server: bench_server (benches/load, release); caches: verified-token cache as listed (default 10 000 entries, 60 s), JWKS (64 keys at most)"
  echo "- each request: POST tools/call whoami with its own new ES256 token, $CONCURRENCY in flight; peak RSS from /usr/bin/time -v"
  echo
  echo "| distinct tokens | verified-token cache (entries) | peak RSS (MiB) | wall time (s) |"
  echo "|---:|---:|---:|---:|"
  for spec in $RUNS; do
    count=${spec%%:*}
    entries="10000 (default)"
    [ "$spec" != "$count" ] && entries=${spec#*:}
    echo "| $count | $entries | $(awk -v k="${PEAK[$spec]}" 'BEGIN { printf "%.1f", k / 1024 }') | ${WALL[$spec]} |"
  done
} | tee "$WORK/report.md"
if [ -n "$OUTPUT" ]; then cp "$WORK/report.md" "$OUTPUT"; fi
