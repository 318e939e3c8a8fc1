#!/usr/bin/env bash
# The soak test: the whoami example under load for DURATION seconds (default 600, at least
# 120) with valid, expired, wrong-audience and garbage tokens, while the built-in test
# authorization server rotates keys and has a failure window. Loopback only; the driver stops
# by itself after DURATION and exits 1 on any wrong decision. See
# benches/load/src/soak_driver.rs (package mcp-auth-load) for the schedule and what counts as
# a wrong decision.
#
#   scripts/soak.sh                         # 10 minutes
#   DURATION=120 CONCURRENCY=2 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p mcp-auth-load --bin soak_driver
# Bounded twice: by the driver's own clock, and here by DURATION plus five minutes.
timeout --signal=TERM --kill-after=30 "$(( ${DURATION:-600} + 300 ))" \
  target/release/soak_driver
