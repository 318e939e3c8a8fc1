#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for FUZZ_SECONDS each (default 600), JOBS at a time
# (default 2), and prints each target's executions and findings. Installs cargo-fuzz into
# target/tools if it is missing. cargo-fuzz needs nightly compiler flags: on a stable
# toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
#
#   scripts/fuzz.sh                          # every target, 10 minutes each, two at a time
#   FUZZ_SECONDS=60 scripts/fuzz.sh jwt_preparse
#
# Corpora grow in fuzz/corpus/<target> (git-ignored; seeds are in fuzz/seeds/<target>),
# crashes land in fuzz/artifacts/<target>, logs in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-600}
jobs=${JOBS:-2}
tools="$root/target/tools"
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --root "$tools"
fi

all=(authorization_header challenge_roundtrip jwt_preparse metadata_documents jwks_document)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

dict_for() {
  case "$1" in
    jwt_preparse) echo "-dict=$root/fuzz/dict/jwt.dict" ;;
    metadata_documents | jwks_document) echo "-dict=$root/fuzz/dict/json.dict" ;;
  esac
}

cd fuzz
marker=$(mktemp)
for target in "${targets[@]}"; do cargo fuzz build -O "$target"; done
mkdir -p logs

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$marker"
}
trap cleanup EXIT

run() {
  local target=$1
  mkdir -p "corpus/$target" "artifacts/$target"
  local seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  # shellcheck disable=SC2046
  cargo fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    $(dict_for "$target") >"logs/$target.log" 2>&1
}

status=0
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
  run "$target" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then status=1; fi
done
pids=()

for target in "${targets[@]}"; do
  executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "logs/$target.log" | tail -1 | awk '{print $2}')
  crashes=$(find "artifacts/$target" -type f -newer "$marker" | wc -l)
  printf '%-22s executions=%s findings=%s log=fuzz/logs/%s.log\n' "$target" "${executions:-?}" "$crashes" "$target"
done
exit $status
