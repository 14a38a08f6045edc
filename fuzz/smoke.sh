#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short time on the stable toolchain and prints executions
# per second of each. Fails when a target crashes (panic, abort, allocation over the cap,
# timeout, out of memory) or does not build.
#
#   fuzz/smoke.sh [SECONDS] [TARGET..]     (SECONDS also from SMOKE_SECONDS; default 10)
#
# SMOKE_PROFILE=dev builds unoptimised (about half the build time, a tenth of the speed): for CI,
# where the build dominates. The execs/s figures are meaningful in the default release profile.
#
# Each run starts from a copy of the committed seeds (fuzz/seeds/TARGET) in fuzz/corpus/TARGET,
# so what it discovers stays out of git; a crash input lands in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-${SMOKE_SECONDS:-10}}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls fuzz_targets | sed -n 's/\.rs$//p' | sort)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# --sanitizer none: stable toolchain, and the allocation cap in every target replaces ASan's
# allocation checks; debug assertions stay on (cargo fuzz's default).
profile=()
if [ "${SMOKE_PROFILE:-release}" = dev ]; then
  profile=(--dev)
fi

build() {
  if [ "$#" -eq 0 ]; then
    cargo fuzz build "${profile[@]}" --sanitizer none
  else
    for t in "$@"; do cargo fuzz build "${profile[@]}" --sanitizer none "$t"; done
  fi
}
if [ "$#" -gt 0 ]; then build "${targets[@]}"; else build; fi 2>&1 | tail -n 3 || {
  echo "smoke: the fuzz targets do not build" >&2
  exit 1
}

failed=()
printf '\n%-18s %10s %12s %8s\n' target runs "execs/s" corpus
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true
  log="artifacts/$t/smoke.log"
  # -rss_limit_mb bounds the whole process; -timeout catches a hang on one input.
  if cargo fuzz run "${profile[@]}" --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$t")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  size=$(ls "corpus/$t" | wc -l)
  printf '%-18s %10s %12s %8s %s\n' "$t" "${runs:-?}" "${secs:-?}" "$size" "$status"
done

if [ "${#failed[@]}" -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo
    echo "=== $t crashed; reproduce with: cargo fuzz run --sanitizer none $t fuzz/artifacts/$t/<crash file>"
    grep -v '^#' "artifacts/$t/smoke.log" | tail -n 40
  done
  exit 1
fi
echo "smoke: ${#targets[@]} targets ran ${seconds}s each without a crash"
