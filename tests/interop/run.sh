#!/usr/bin/env bash
# The interop suite: the whoami examples (axum, actix-web, hyper) against node-oidc-provider,
# called by the official MCP TypeScript SDK. Run from anywhere: `bash tests/interop/run.sh`.
#
# Needs Node.js >= 20.19 with npm, and cargo. Installs the pinned npm packages (`npm ci`),
# builds the example binaries if needed (`cargo build --locked --all-features --examples`:
# the feature set of `cargo test --all-features`, so after the tests this is a no-op), starts every
# server on a loopback port chosen by the OS, runs the checks (one PASS/FAIL line each), stops
# what it started by PID, and ends with the line `N passed, M failed`. Exit status 0 only when
# nothing failed. Network: the npm registry for `npm ci`, loopback otherwise.
#
# Environment: INTEROP_ALGS (default "RS256,ES256"), INTEROP_SKIP_INSTALL=1 (reuse
# node_modules), INTEROP_SKIP_BUILD=1 (reuse the built examples), INTEROP_INSPECTOR and
# INTEROP_DPOP (0 leaves the browser / DPoP group out, only runs just it; see README.md).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() { printf 'interop: %s\n' "$*" >&2; exit 2; }

command -v node >/dev/null || fail "Node.js >= 20.19 is required (node not found)"
command -v npm >/dev/null || fail "npm is required (npm not found)"
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19)) process.exit(1);
' || fail "Node.js >= 20.19 is required, found $(node --version)"

if [[ "${INTEROP_SKIP_INSTALL:-}" != 1 ]]; then
  printf '==> npm ci (tests/interop)\n'
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [[ "${INTEROP_SKIP_BUILD:-}" != 1 ]]; then
  printf '==> cargo build --locked --all-features --examples\n'
  (cd "$root" && cargo build --locked --all-features --examples --quiet)
fi
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --locked \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"

pid_file="$(mktemp "${TMPDIR:-/tmp}/mcp-auth-interop.XXXXXX")"
runner_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # The runner stops its servers itself; this catches whatever a crashed runner left behind.
  if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$runner_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$runner_pid" 2>/dev/null || true
  fi
  # The file lists the servers still running; kill a PID only if it still runs an example or
  # the MCP Inspector (its proxy and its web server).
  if [[ -s "$pid_file" ]]; then
    while read -r pid; do
      [[ "$pid" =~ ^[0-9]+$ ]] || continue
      if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "/examples/whoami|@modelcontextprotocol/inspector-(server|client)/"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$pid_file"
  fi
  rm -f "$pid_file"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '==> interop checks\n'
INTEROP_TARGET_DIR="$target_dir" INTEROP_PID_FILE="$pid_file" node "$here/run.mjs" &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=""
exit "$status"
