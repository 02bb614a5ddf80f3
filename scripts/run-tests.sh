#!/usr/bin/env bash
# Runs the workspace's test binaries CLOUDCODE_TEST_JOBS at a time (default 2), longest first, each with its
# package directory as the working directory (as `cargo test` does), then the doc tests. One line per binary as
# it ends (name, result, seconds); a failed binary's whole output follows its line. Exits non-zero if any failed.
# CLOUDCODE_TEST_ONLY (a regex on the binaries' names, e.g. '^cli_') runs only those.
#
# Why not `cargo test` alone: it runs one binary after another, and most of our long suites wait on the test
# VM, on OpenCode or on an engine rather than compute (a whole serial run used ~35% of the two cores), so two
# binaries side by side take much less wall time. Why not cargo-nextest: it runs every test in its own process,
# which would boot one VM per test where a binary's tests now share one (tests/src/vm/mod.rs `shared`).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${CLOUDCODE_TEST_JOBS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Longest first (measured in a serial CI run), so the two lanes end close together; the rest keep cargo's order.
LONG=(stack_lifecycle cloud_path im_stack stack_idle_suspend static_site_module stack_apps module_alicloud cli_engines engine_smoke reliability snapshot_backup
  release_install login_flows im_bridge alicloud_eip_dns alicloud_ram cli_alibaba im_guide cli_host alicloud_provider)

echo "== building the test binaries" >&2
cargo test --workspace --locked --no-run --message-format=json-render-diagnostics >"$work/artifacts.json"
# name<TAB>package dir<TAB>executable, for every test binary (unit tests of a crate are named after the crate).
jq -r 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null)
  | [.target.name + (if .target.kind[0] == "test" then "" else ":" + .target.kind[0] end),
     (.manifest_path | sub("/Cargo.toml$"; "")), .executable] | @tsv' "$work/artifacts.json" >"$work/all.tsv"
{
  for name in "${LONG[@]}"; do awk -F'\t' -v n="$name" '$1 == n' "$work/all.tsv"; done
  awk -F'\t' 'NR == FNR { long[$1] = 1; next } !($1 in long)' <(printf '%s\n' "${LONG[@]}") "$work/all.tsv"
} >"$work/order.tsv"
if [ -n "${CLOUDCODE_TEST_ONLY:-}" ]; then # a regex on the names, to run a few binaries this way
  awk -F'\t' -v re="$CLOUDCODE_TEST_ONLY" '$1 ~ re' "$work/order.tsv" >"$work/only.tsv"
  mv "$work/only.tsv" "$work/order.tsv"
fi
total=$(wc -l <"$work/order.tsv")
echo "== running $total test binaries, $jobs at a time" >&2

status=0
running=0
finish() { # reap one finished binary and report it
  local pid
  wait -n -p pid || true
  local name=${names[$pid]}
  local rc
  rc=$(cat "$work/$name.rc" 2>/dev/null || echo 1)
  local took=$(( $(date +%s) - ${started[$pid]} ))
  if [ "$rc" = 0 ]; then
    echo "== ${name#*-}: ok (${took} s) $(grep -h '^test result' "$work/$name.log" | tail -1)"
  else
    echo "== ${name#*-}: FAILED (exit $rc, ${took} s); its output:"
    cat "$work/$name.log"
    status=1
  fi
  printf '%s\t%s\t%s\n' "${name#*-}" "$took" "$rc" >>"$work/times.tsv"
  running=$((running - 1))
}
declare -A names started
i=0
while IFS=$'\t' read -r name dir exe; do
  i=$((i + 1))
  safe=$i-${name//[^A-Za-z0-9_.-]/_}
  ( cd "$dir" && "$exe" >"$work/$safe.log" 2>&1; echo $? >"$work/$safe.rc" ) &
  names[$!]=$safe
  started[$!]=$(date +%s)
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then finish; fi
done <"$work/order.tsv"
while [ "$running" -gt 0 ]; do finish; done

echo "== doc tests" >&2
cargo test --workspace --locked --doc >"$work/doc.log" 2>&1 || { cat "$work/doc.log"; status=1; }

echo "== slowest binaries (s)"
sort -t$'\t' -k2,2nr "$work/times.tsv" | head -12 | awk -F'\t' '{ printf "   %-40s %5d\n", $1, $2 }'
exit "$status"
