#!/usr/bin/env bash
# Instructions per request of the whoami example and of bench_server, counted by callgrind:
# unlike requests/s or CPU time, the count does not move when other processes compete for the
# cores. Each variant of benches/load/example.sh runs under `valgrind --tool=callgrind` with
# instrumentation off; after a warm-up, it is switched on for one wrk run (tools/call whoami,
# one repeated token), then off, and the instructions are divided by wrk's request count.
#
#   bash benches/load/example-instructions.sh     # after benches/load/example.sh built everything
#
# Settings: LOAD_VARIANTS (default "bench example example-defaults example-dev"),
# LOAD_DURATION (s of counted load, default 5), LOAD_CONNECTIONS (default 8).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${LOAD_DURATION:-5}
CONNECTIONS=${LOAD_CONNECTIONS:-8}
RESOURCE="https://mcp.bench.example/mcp"
LUA="benches/load/mcp.lua"
read -r -a VARIANTS <<<"${LOAD_VARIANTS:-bench example example-defaults example-dev}"

. benches/load/lib.sh
need valgrind callgrind_control wrk curl
for binary in target/release/bench_server target/release/bench_auth_server target/release/examples/whoami; do
  [ -x "$binary" ] || fail "$binary is missing: run benches/load/example.sh first (it builds them)"
done

scratch

target/release/bench_auth_server --out "$WORK" --audience "$RESOURCE" --scope "read write" \
  >"$WORK/as.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/ready"
ISSUER=$(cat "$WORK/issuer")

echo "| variant | requests counted | instructions/request | vs ${VARIANTS[0]} |"
echo "|---|---:|---:|---:|"
reference=
for name in "${VARIANTS[@]}"; do
  out="$WORK/$name.log"
  grind=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.$name")
  configured=(env PORT=0 MCP_AUTH_ISSUER="$ISSUER" MCP_AUTH_RESOURCE="$RESOURCE"
    MCP_AUTH_REQUIRED_SCOPES=read)
  case $name in
    bench) "${configured[@]}" TOKIO_WORKER_THREADS=1 RUST_LOG=warn "${grind[@]}" \
             target/release/bench_server >"$out" 2>&1 & ;;
    example) "${configured[@]}" TOKIO_WORKER_THREADS=1 RUST_LOG=warn "${grind[@]}" \
             target/release/examples/whoami >"$out" 2>&1 & ;;
    example-defaults) env -u RUST_LOG -u TOKIO_WORKER_THREADS "${configured[@]}" "${grind[@]}" \
             target/release/examples/whoami >"$out" 2>&1 & ;;
    example-dev) env -u RUST_LOG -u TOKIO_WORKER_THREADS -u MCP_AUTH_ISSUER PORT=0 "${grind[@]}" \
             target/release/examples/whoami >"$out" 2>&1 & ;;
    *) fail "unknown variant $name" ;;
  esac
  pid=$!
  PIDS+=("$pid")
  port=$(wait_for_port "$out" "$pid" 120) # valgrind starts slowly
  case $name in
    example-dev) token=$(grep -Eo "^TOKEN='[^']+'" "$out" | head -1 | sed "s/^TOKEN='//; s/'\$//") ;;
    *) token=$(cat "$WORK/token") ;;
  esac
  url="http://127.0.0.1:$port/mcp"
  BENCH_TOKEN=$token wrk -t1 -c"$CONNECTIONS" -d3s -s "$LUA" "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  BENCH_TOKEN=$token wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$LUA" "$url" >"$WORK/wrk-$name.txt"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  grep -q 'Non-2xx' "$WORK/wrk-$name.txt" && { cat "$WORK/wrk-$name.txt" >&2; fail "$name: non-2xx answers"; }
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk-$name.txt")
  instructions=$(cat "$WORK"/cg."$name"* | awk '/^(summary|totals):/ {sum += $2} END {print sum + 0}')
  per=$(awk -v i="$instructions" -v n="$requests" 'BEGIN { printf "%.0f", i / n }')
  [ -z "$reference" ] && reference=$per
  echo "| $name | $requests | $per | $(awk -v a="$per" -v b="$reference" 'BEGIN { printf "%.3f", a / b }') |"
done
