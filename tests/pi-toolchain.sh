# Sourced by the Raspberry Pi checks: a Rust toolchain that builds picochat for
# aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf, plus qemu-user.
#
# rustup cannot download other targets on the CI machine, so this uses Debian
# bookworm's rustc-web (1.85, picochat's rust-version) and the arm64/armhf builds
# of its standard library, unpacked into a private sysroot. The linkers are the
# ones .cargo/config.toml names (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf),
# exactly as a rustup user on a PC would use them.
#
# After `pi_toolchain`: pi_build TARGET builds target/pi/TARGET/release/picochat,
# and pi_qemu TARGET prints the qemu-user command that runs such a binary here.
# pi_deb TARGET OUTDIR [VERSION] packages that binary as a .deb (cargo-deb).

PI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PI_CACHE="$PI_ROOT/target/pi"
PI_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

pi_toolchain() {
  local changed=
  for arch in arm64 armhf; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      dpkg --add-architecture "$arch"
      changed=1
    fi
  done
  local want=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
    libc6-dev-armhf-cross qemu-user-static)
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ -n "$changed" ] || [ ${#missing[@]} -gt 0 ] || [ ! -x /usr/bin/rustc ]; then
    # A mirror caught mid-sync fails `apt-get update` for one index now and
    # then: try again, then go on; the version check below is what decides.
    local tries
    for tries in 1 2 3; do
      apt-get update -qq && break
      echo "pi: apt-get update failed (try $tries of 3)" >&2
      sleep 10
    done
  fi

  # One rustc-web version for which the amd64 compiler and both target
  # standard libraries exist: they must match exactly.
  local version
  version=$(LC_ALL=C comm -12 \
    <(LC_ALL=C comm -12 <(pi_versions rustc-web:amd64) <(pi_versions libstd-rust-web-dev:arm64)) \
    <(pi_versions libstd-rust-web-dev:armhf) | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    echo "pi: no rustc-web version is published for amd64, arm64 and armhf alike" >&2
    return 1
  fi
  local mm
  mm=$(echo "$version" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
  if [ "$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null)" != "$version" ] || [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "rustc-web=$version" "cargo-web=$version" "libstd-rust-web-dev=$version" \
      "libstd-rust-web-$mm=$version" "${want[@]}" >/dev/null
  fi

  PI_SYSROOT="$PI_CACHE/sysroot-$version"
  if [ ! -d "$PI_SYSROOT/lib/rustlib/armv7-unknown-linux-gnueabihf" ]; then
    local debs="$PI_CACHE/debs"
    rm -rf "$debs" "$PI_SYSROOT"
    mkdir -p "$debs/x" "$PI_SYSROOT/lib/rustlib"
    (cd "$debs" && apt-get download -qq "libstd-rust-web-dev:arm64=$version" \
      "libstd-rust-web-dev:armhf=$version" 2>/dev/null)
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$debs/x"; done
    mv "$debs/x/usr/lib/rustlib/"*-linux-gnu* "$PI_SYSROOT/lib/rustlib/"
    ln -s /usr/lib/rustlib/x86_64-unknown-linux-gnu "$PI_SYSROOT/lib/rustlib/"
    rm -rf "$debs"
  fi

  # qemu-user for ARM programs: pi_qemu runs the binaries built here (-L finds
  # the cross libc); binfmt lets debootstrap run arm64 programs in its chroot.
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  for q in aarch64 arm; do
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$q" ] || cat "/usr/lib/binfmt.d/qemu-$q.conf" > /proc/sys/fs/binfmt_misc/register
  done
  echo "pi: rustc-web $version ($(/usr/bin/rustc --version)), sysroot $PI_SYSROOT"
}

pi_versions() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | LC_ALL=C sort -u
}

pi_build() {
  local target="$1"
  RUSTC=/usr/bin/rustc RUSTFLAGS="--sysroot $PI_SYSROOT -C link-arg=-Wl,-z,pack-relative-relocs" CARGO_TARGET_DIR="$PI_CACHE" \
    /usr/bin/cargo build --release --locked --quiet --bin picochat --target "$target" \
    --manifest-path "$PI_ROOT/Cargo.toml"
  echo "$PI_CACHE/$target/release/picochat"
}

pi_qemu() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
  esac
}

# pi_deb TARGET OUTDIR [DEB_VERSION]: the Debian package of pi_build's binary
# (cargo-deb, [package.metadata.deb] in Cargo.toml), written to OUTDIR; prints
# its path. The binary is already stripped by the release profile.
pi_deb() {
  local target="$1" out="$2" version=()
  [ -n "${3:-}" ] && version=(--deb-version "$3")
  pi_build "$target" >/dev/null
  command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet
  mkdir -p "$out"
  CARGO_TARGET_DIR="$PI_CACHE" cargo deb --manifest-path "$PI_ROOT/Cargo.toml" --target "$target" \
    --no-build --no-strip --quiet --output "$out" "${version[@]}"
}
