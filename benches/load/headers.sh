#!/usr/bin/env bash
# MCP 2026-07-28 request headers under load: our bench_server only (no JS peer), the same
# `tools/call whoami` sent as 2025-06-18 (no Mcp-* headers: the guard reads the body to find
# the tool) and as 2026-07-28 (Mcp-Method / Mcp-Name headers and per-request _meta), on
#
#   /mcp          the whoami example's whole guard (bearer + sessions + tool scopes), default
#                 settings: 2026-07-28 requests are decided from the headers, then the body is
#                 read and checked against them;
#   /mcp-trusted  the same guard with `mcp_headers_checked_by_service` (rmcp 3.11 checks the
#                 headers against the body): allowed 2026-07-28 requests pass unread;
#   /mcp-noauth   no guard (a fixed identity stands in), the reference.
#
# Each (route, version) pair is measured LOAD_ROUNDS times (default 3), the pairs interleaved
# round by round so that a noisy moment on a shared machine hits all of them alike; the report
# gives each run and the median. Same set-up as run.sh: wrk -t1 on LOAD_CLIENT_CPU, the server
# (one tokio worker) on LOAD_SERVER_CPU, both at nice -10 when allowed, and the server's CPU
# time per request from `perf stat` when available.
#
#   bash benches/load/headers.sh
#
# Settings (environment): LOAD_DURATION (seconds, default 10), LOAD_WARMUP (default 3),
# LOAD_CONNECTIONS (default 32), LOAD_ROUNDS (default 3), LOAD_SERVER_CPU (0), LOAD_CLIENT_CPU
# (1), LOAD_OUTPUT (also write the report there). Needs wrk, taskset, curl, cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${LOAD_DURATION:-10}
WARMUP=${LOAD_WARMUP:-3}
CONNECTIONS=${LOAD_CONNECTIONS:-32}
ROUNDS=${LOAD_ROUNDS:-3}
SERVER_CPU=${LOAD_SERVER_CPU:-0}
CLIENT_CPU=${LOAD_CLIENT_CPU:-1}
OUTPUT=${LOAD_OUTPUT:-}
RESOURCE="https://mcp.bench.example/mcp"
LUA="benches/load/mcp.lua"

. benches/load/lib.sh
need wrk taskset curl cargo # run.sh installs wrk

log "building the benchmark servers (release)"
cargo build --release --locked --quiet -p mcp-auth-load --bin bench_server --bin bench_auth_server

RAISE=()
if nice -n -10 true 2>/dev/null; then RAISE=(nice -n -10); fi
ON_SERVER_CPU=("${RAISE[@]}" taskset -c "$SERVER_CPU")
ON_CLIENT_CPU=("${RAISE[@]}" taskset -c "$CLIENT_CPU")

scratch

taskset -c "$CLIENT_CPU" target/release/bench_auth_server \
  --out "$WORK" --audience "$RESOURCE" --scope "read write" >"$WORK/as.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/ready"
TOKEN=$(cat "$WORK/token")

PORT=0 MCP_AUTH_ISSUER="$(cat "$WORK/issuer")" MCP_AUTH_RESOURCE="$RESOURCE" \
  MCP_AUTH_REQUIRED_SCOPES=read TOKIO_WORKER_THREADS=1 RUST_LOG=warn \
  "${ON_SERVER_CPU[@]}" target/release/bench_server >"$WORK/ours.log" 2>&1 &
OURS=$!
PIDS+=("$OURS")
PORT=$(wait_for_port "$WORK/ours.log" "$OURS")
BASE="http://127.0.0.1:$PORT"

# Every pair answers 200 with Alice's identity (wrk itself fails the run on any non-2xx).
for route in /mcp /mcp-trusted /mcp-noauth; do
  for version in 2025-06-18 2026-07-28; do
    BENCH_MCP_VERSION=$version BENCH_TOKEN=$TOKEN wrk -t1 -c1 -d1s -s "$LUA" "$BASE$route" \
      >"$WORK/check.txt"
    if grep -q 'Non-2xx' "$WORK/check.txt"; then
      cat "$WORK/check.txt" >&2
      fail "$route $version: not 2xx"
    fi
  done
done

PERF=no
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then PERF=yes; fi

declare -A RUNS CPUS
measure() {
  local route=$1 version=$2 key="$1 $2" out="$WORK/wrk.txt" stat="$WORK/perf.txt" perf_pid=
  BENCH_MCP_VERSION=$version BENCH_TOKEN=$TOKEN "${ON_CLIENT_CPU[@]}" wrk -t1 \
    -c"$CONNECTIONS" -d"${WARMUP}s" -s "$LUA" "$BASE$route" >/dev/null
  if [ "$PERF" = yes ]; then
    perf stat -x, -e task-clock -p "$OURS" -o "$stat" -- sleep "$DURATION" &
    perf_pid=$!
  fi
  BENCH_MCP_VERSION=$version BENCH_TOKEN=$TOKEN "${ON_CLIENT_CPU[@]}" wrk -t1 \
    -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" "$BASE$route" >"$out"
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; fail "$key: some answers were not 2xx"; fi
  local rps
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  RUNS[$key]="${RUNS[$key]:-} $rps"
  if [ -n "$perf_pid" ]; then
    local cpu
    cpu=$(awk -F, -v n="$(awk '/requests in/ {print $1}' "$out")" \
      '$3 ~ /^task-clock/ { if (n > 0) printf "%.1f", 1000 * $1 / n }' "$stat")
    CPUS[$key]="${CPUS[$key]:-} $cpu"
  fi
  log "$key: $rps req/s"
}

for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  for route in /mcp /mcp-trusted /mcp-noauth; do
    for version in 2025-06-18 2026-07-28; do
      measure "$route" "$version"
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else printf "nan" }'; }

{
  echo "## MCP 2026-07-28 headers under load ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- wrk -t1 -c$CONNECTIONS -d${DURATION}s (after ${WARMUP}s warm-up) on CPU $CLIENT_CPU; bench_server (1 tokio worker) on CPU $SERVER_CPU; ${RAISE[*]:-default priority}; $ROUNDS rounds, interleaved"
  echo
  echo "| route | MCP-Protocol-Version | requests/s (each run) | median | server CPU µs/request (median) |"
  echo "|---|---|---|---:|---:|"
  for route in /mcp /mcp-trusted /mcp-noauth; do
    for version in 2025-06-18 2026-07-28; do
      key="$route $version"
      cpu=-
      if [ -n "${CPUS[$key]:-}" ]; then cpu=$(echo "${CPUS[$key]}" | median); fi
      echo "| $route | $version |${RUNS[$key]} | $(echo "${RUNS[$key]}" | median) | $cpu |"
    done
  done
  echo
  for version in 2025-06-18 2026-07-28; do
    noauth=$(echo "${RUNS[/mcp-noauth $version]}" | median)
    echo "- $version, medians: /mcp $(percent "$(echo "${RUNS[/mcp $version]}" | median)" "$noauth"), /mcp-trusted $(percent "$(echo "${RUNS[/mcp-trusted $version]}" | median)" "$noauth") of /mcp-noauth"
  done
} | tee "$WORK/report.md"
if [ -n "$OUTPUT" ]; then cp "$WORK/report.md" "$OUTPUT"; fi
