#!/usr/bin/env bash
# Fuzz smoke for CI: each cargo-fuzz target (fuzz/) for FUZZ_SECONDS (default 60)
# with AddressSanitizer, seeded from tests/fuzz-regressions/. A crash input is
# copied into tests/fuzz-regressions/<target>/ (commit it: tests/fuzz_regressions.rs
# then replays it on every `cargo test`) and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# cargo-fuzz passes -Z flags (sanitizer, coverage); this lets the one stable
# toolchain on the machine accept them instead of needing a nightly.
export RUSTC_BOOTSTRAP=1
secs="${FUZZ_SECONDS:-60}"
# One build of every target (the library once); each run below then finds it fresh.
build_log="$(mktemp)"
if ! (cd fuzz && cargo fuzz build) >"$build_log" 2>&1; then
  tail -n 40 "$build_log"
  exit 1
fi
rm -f "$build_log"
for target in http_request ws_chat resp image config; do
  corpus="$(mktemp -d)"
  log="$(mktemp)"
  echo "fuzzing $target for ${secs}s"
  if ! (cd fuzz && cargo fuzz run "$target" "$corpus" "../tests/fuzz-regressions/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536) >"$log" 2>&1; then
    tail -n 40 "$log"
    for crash in fuzz/artifacts/"$target"/*; do
      [ -f "$crash" ] && cp "$crash" "tests/fuzz-regressions/$target/" && echo "saved $crash"
    done
    echo "fuzz: $target FAILED" >&2
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$log" || true
  rm -rf "$corpus" "$log"
done
