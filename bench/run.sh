#!/usr/bin/env bash
# Issue 9: benchmarks + reliability suite at full counts, on the test VM (run as root; needs scripts/deps first).
#   bench/run.sh                 # everything: bench (0 and 50 ms RTT), reliability (20 kills, 10 stacks), hostile inputs
#   bench/run.sh bench           # only the benchmarks
#   bench/run.sh reliability     # only the reliability suite
#   bench/run.sh im              # the chat bridge: added latency, PNG render time, idle RSS (also in "all")
# Knobs: BENCH_PROFILES ("release dev"), BENCH_DELAYS_MS (one-way, default "0,25" = 0 and 50 ms RTT), BENCH_RUNS (default 3),
#        BENCH_ONLY=first-deploy (cloudcode's first deploys alone, no baseline; each apply's log kept in $TMPDIR),
#        CLOUDCODE_RELIABILITY_KILLS (20), CLOUDCODE_RELIABILITY_STACKS (10), CLOUDCODE_RELIABILITY_SEED.
# Results go to bench/results/ (markdown table, logs); copy the numbers into docs/performance.md and
# docs/reliability.md.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
export PATH="$REPO/.cache/bin:$PATH"
# The test VM images, OpenCode and the other heavy builds scripts/deps put there.
export CLOUDCODE_TEST_CACHE="${CLOUDCODE_TEST_CACHE:-$HOME/.cache/cloudcode-test}"
what="${1:-all}"
out="$REPO/bench/results"
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"

if [[ "$what" == all || "$what" == bench ]]; then
  # The provider in both profiles side by side (BENCH_PROFILES="release dev" by default): release is what users
  # run; debug is what the tests drive. The bench binary itself is the debug build.
  providers=()
  for profile in ${BENCH_PROFILES:-release dev}; do
    dir="$REPO/target/$([[ "$profile" == dev ]] && echo debug || echo "$profile")"
    cargo build -p cloudcode-tests --bin cloudcode-provider-under-test --locked --profile "$profile"
    providers+=("$([[ "$profile" == dev ]] && echo debug || echo "$profile")=$dir/cloudcode-provider-under-test")
  done
  cargo build -p cloudcode-tests --bin bench --locked
  "$REPO/target/debug/bench" --delays-ms "${BENCH_DELAYS_MS:-0,25}" --runs "${BENCH_RUNS:-3}" \
    ${BENCH_ONLY:+--only "$BENCH_ONLY"} \
    --providers "$(IFS=,; echo "${providers[*]}")" \
    --out "$out/bench-$stamp.md" 2> >(tee "$out/bench-$stamp.log" >&2)
fi

if [[ "$what" == all || "$what" == im ]]; then
  # The bridge as it ships (release) driven by the debug harness (the doubles and OpenCode from the test cache);
  # the renderer's own release benchmark for the PNG time.
  cargo build -p cloudcode-im --locked --release --bin cloudcode-im --example render_bench
  cargo build -p cloudcode-tests --locked --bin im_bench --bin cloudcode-im-under-test
  CLOUDCODE_IM_BIN="$REPO/target/release/cloudcode-im" "$REPO/target/debug/im_bench" \
    --turns "${BENCH_IM_TURNS:-20}" --renders 0 --out "$out/im-$stamp.md" 2> >(tee "$out/im-$stamp.log" >&2)
  "$REPO/target/release/examples/render_bench" | tee -a "$out/im-$stamp.md"
fi

if [[ "$what" == all || "$what" == reliability ]]; then
  export CLOUDCODE_RELIABILITY_KILLS="${CLOUDCODE_RELIABILITY_KILLS:-20}"
  export CLOUDCODE_RELIABILITY_STACKS="${CLOUDCODE_RELIABILITY_STACKS:-10}"
  # One scenario at a time: the parallel-stacks scenario needs the whole machine.
  cargo test -p cloudcode-tests --locked --test reliability -- --nocapture --test-threads=1 2>&1 \
    | tee "$out/reliability-$stamp.log"
  # >= 10^4 hostile inputs through validation and rendering: the bundle's own proptest (20 000 cases).
  cargo test -p cloudcode-bundle --locked --test hostile_inputs 2>&1 | tee -a "$out/reliability-$stamp.log"
  grep -h '^RESULT' "$out/reliability-$stamp.log" || true
fi
