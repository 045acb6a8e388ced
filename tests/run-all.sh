#!/usr/bin/env bash
# Every check picochat has, from a fresh machine: installs what is missing
# (Debian's Chromium, nginx and redis-server, Python and npm test tools; the proxy and Pi
# checks install Caddy, cross compilers and qemu themselves), then runs
# format and lint checks, the Rust unit and integration tests, the browser
# end-to-end test, the Autobahn conformance suite and the ops checks (metrics
# format, nginx and Caddy in front, Raspberry Pi cross builds, the README's
# Pi install from the arm64 .deb on an emulated arm64 Debian, the packages'
# lintian check (cargo-deb, lintian), testssl.sh and certificate renewal with
# pebble and certbot, which install themselves too). Exits non-zero on
# the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# The Pi check installs Debian's rustc-web 1.85 as /usr/bin/rustc; rustup's toolchain stays first.
if [ -d "$HOME/.cargo/bin" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi

step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
passed=0

step "installing test tools that are missing"
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx-light)
# tests/durability.rs reads the order of write/fsync/writev calls with strace.
command -v strace >/dev/null 2>&1 || apt_missing+=(strace)
# tests/redis.rs starts its own redis-server per test (Debian's, on a Unix socket).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || apt_missing+=(redis-server)
# tests/tls.rs makes its test CA with openssl and fetches with curl.
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
# tests/e2e/tls.test.mjs makes Chromium trust its test CA in an NSS database.
command -v certutil >/dev/null 2>&1 || apt_missing+=(libnss3-tools)
# tests/cli.rs renders the man page (picochat --man) with groff, warnings as failures.
command -v groff >/dev/null 2>&1 || apt_missing+=(groff-base)
if [ ${#apt_missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
python3 -c 'import websockets, prometheus_client, kosoku' 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  (cd tests/e2e && npm ci --silent --no-audit --no-fund)
fi

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
step "cargo clippy --no-default-features (the build without TLS)"
cargo clippy --all-targets --no-default-features --quiet -- -D warnings

step "cargo test (unit and integration tests, real sockets)"
cargo test --quiet

step "release build (stripped, at most 2 MiB with TLS: docs/performance.md, Footprint)"
cargo build --release --quiet
export PICOCHAT_BIN="$PWD/target/release/picochat"
bytes=$(stat -c %s "$PICOCHAT_BIN")
echo "target/release/picochat: $bytes bytes"
if [ "$bytes" -gt $((2 * 1024 * 1024)) ]; then
  echo "FAIL: the release binary is over 2 MiB ($bytes bytes); see docs/performance.md, Footprint" >&2
  exit 1
fi

step "browser end-to-end test (Chromium via playwright-core)"
# Each check on a line of its own: under `set -e` a failing one stops the
# script (as the last command of an `&&` list it would not).
(cd tests/e2e && node --test)
passed=$((passed + 1))

# The deflate suite is one Python process (wstest) on one core for about 17
# minutes, and the fuzz smoke is CPU work with no timing of its own: they
# share the two cores instead of taking turns. Its output follows the fuzz's.
deflate=tests/conformance/autobahn-deflate.sh
deflate_log="$(mktemp)"
bash "$deflate" > "$deflate_log" 2>&1 &
deflate_pid=$!
trap 'kill "$deflate_pid" 2>/dev/null || true' EXIT

step "fuzz smoke (cargo fuzz, ${FUZZ_SECONDS:-60}s per target; $deflate beside it)"
bash tests/fuzz-smoke.sh
passed=$((passed + 1))

step "$deflate (started with the fuzz smoke)"
if ! wait "$deflate_pid"; then
  cat "$deflate_log"
  exit 1
fi
cat "$deflate_log"
rm -f "$deflate_log"
passed=$((passed + 1))

for check in tests/conformance/*.sh tests/ops/*.sh; do
  [ -e "$check" ] || continue
  [ "$check" = "$deflate" ] && continue
  step "$check"
  bash "$check"
  passed=$((passed + 1))
done

echo
echo "checks: ${passed} passed, 0 failed"
