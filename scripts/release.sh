#!/usr/bin/env bash
# Static release binaries: for each target, a stripped musl binary built with
# `cargo auditable` (the dependency list embedded in the `.dep-v0` section,
# for `cargo audit bin`, syft, trivy), packed with the example configuration,
# the GeoIP database, the licences, the README, the man pages and the shell
# completions; a CycloneDX SBOM of the binary's dependencies (cargo-cyclonedx,
# from the CycloneDX project); SHA256SUMS over all of it.
#
#   scripts/release.sh                                   # x86_64-unknown-linux-musl
#   TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl" scripts/release.sh
#
# aarch64 is cross-built with Zig as the C compiler and linker (cargo
# zigbuild): zig ships aarch64 musl headers and libc, so jemalloc's and
# ring's C code never sees the host's glibc headers. The man pages and
# completions come from a binary that runs here, so an aarch64-only run
# needs x86_64 in TARGETS too.
#
# Writes (and first empties) dist/:
#   dist/switchyard-VERSION-TARGET.tar.gz    one directory of the same name
#   dist/switchyard-VERSION-TARGET.cdx.json  CycloneDX 1.5 JSON, the target's dependencies
#   dist/SHA256SUMS                          `sha256sum -c SHA256SUMS` checks them
#   dist/container/                          what the Containerfile copies
#
# Installs what it needs when missing, like scripts/test.sh: Debian's
# musl-tools (musl-gcc, for ring's and jemalloc's C code); the crates
# cargo-auditable and cargo-cyclonedx; for aarch64, the crate cargo-zigbuild
# and Zig (PyPI's ziglang, run as `python3 -m ziglang`); versions pinned
# below. In the tarballs, file times are the commit's, owners are root and
# names are sorted (the SBOM has a serial number and a time of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-x86_64-unknown-linux-musl}
AUDITABLE_VERSION=0.7.7
ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.17.1
CYCLONEDX_VERSION=0.5.9
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
dist=dist
say() { printf 'release: %s\n' "$*" >&2; }

# --- tools ----------------------------------------------------------------
apt_install() { scripts/apt-install.sh release "$@"; }
need=()
zig=""
for t in $TARGETS; do
  case $t in
    x86_64-unknown-linux-musl) command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools) ;;
    aarch64-unknown-linux-musl) zig=1 ;;
    *) say "unsupported target $t (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl)"; exit 2 ;;
  esac
done
command -v file >/dev/null 2>&1 || need+=(file)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
((${#need[@]} == 0)) || apt_install "${need[@]}"
if command -v rustup >/dev/null 2>&1; then
  for t in $TARGETS; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi
cargo_tool() { # crate version
  if ! cargo install --list | grep -qxF "$1 v$2:"; then
    say "installing $1 $2 (crates.io)"
    cargo install --locked --quiet "$1" --version "$2"
  fi
}
cargo_tool cargo-auditable "$AUDITABLE_VERSION"
cargo_tool cargo-cyclonedx "$CYCLONEDX_VERSION"
if [ -n "$zig" ]; then
  cargo_tool cargo-zigbuild "$ZIGBUILD_VERSION"
  # cargo zigbuild finds Zig as `python3 -m ziglang` when no `zig` is on PATH.
  if ! python3 -c 'import ziglang' 2>/dev/null; then
    say "installing ziglang $ZIGLANG_VERSION (PyPI)"
    # (Debian's own python3 refuses pip without --break-system-packages.)
    python3 -m pip install --quiet "ziglang==$ZIGLANG_VERSION" 2>/dev/null ||
      python3 -m pip install --quiet --break-system-packages "ziglang==$ZIGLANG_VERSION"
  fi
fi

# --- build ----------------------------------------------------------------
# ring's and jemalloc's C code: musl's gcc wrapper (also cc's default).
export CC_x86_64_unknown_linux_musl=musl-gcc

# The tarballs' file times: the commit's (not exported as SOURCE_DATE_EPOCH:
# the cc crate's build scripts would rebuild ring and jemalloc at each commit).
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
rm -rf "$dist"
mkdir -p "$dist"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# A binary that runs here, to write the man pages and completions (the same
# for every target): the first target that runs on this machine.
docs_bin=""
for t in $TARGETS; do
  start=$SECONDS
  case $t in
    aarch64-*)
      # Zig as cc and linker, against its own aarch64 musl (not Debian's
      # gcc: jemalloc's make picked up glibc's math.h with it).
      say "building $t (cargo auditable zigbuild --release)"
      cargo auditable zigbuild --locked --release --target "$t" --bin switchyard ;;
    *)
      say "building $t (cargo auditable build --release)"
      cargo auditable build --locked --release --target "$t" --bin switchyard ;;
  esac
  say "built $t in $((SECONDS - start)) s"
  bin=target/$t/release/switchyard
  info=$(file -b "$bin")
  case $info in
    *static*linked*stripped*) ;;
    *) say "$bin is not a static, stripped binary: $info"; exit 1 ;;
  esac
  if [ -z "$docs_bin" ] && "$bin" --version >/dev/null 2>&1; then docs_bin=$bin; fi
done
if [ -z "$docs_bin" ]; then
  say "none of $TARGETS runs on this machine: add $(rustc -vV | sed -n 's/^host: //p' | sed 's/-gnu$/-musl/') to TARGETS for the man pages"
  exit 1
fi

# --- package --------------------------------------------------------------
for t in $TARGETS; do
  name=switchyard-$version-$t
  root=$stage/$name
  mkdir -p "$root/profiles/keys" "$root/geoip" "$root/man/man1" "$root/completions"
  install -m 0755 "target/$t/release/switchyard" "$root/switchyard"
  # The bundled example, exactly (scripts/example-fixture.sh's file set):
  # it serves on 127.0.0.1:5353 from the unpacked directory, without root.
  install -m 0644 switchyard.toml "$root/"
  install -m 0644 profiles/*.toml profiles/README.md "$root/profiles/"
  install -m 0644 profiles/keys/* "$root/profiles/keys/"
  install -m 0644 geoip/geo-whois-asn-country.mmdb geoip/README.md geoip/LICENSE-CC-BY-4.0.txt "$root/geoip/"
  install -m 0644 README.md CHANGELOG.md LICENSE "$root/"
  # Every statically linked crate's licence and copyright holders, with the
  # licence texts (the Debian package's DEP-5 copyright file, same script).
  python3 deploy/debian/copyright.py "$root/COPYRIGHT"
  chmod 0644 "$root/COPYRIGHT"
  "$docs_bin" man --dir "$root/man/man1" >/dev/null
  "$docs_bin" completions bash >"$root/completions/switchyard.bash"
  "$docs_bin" completions zsh >"$root/completions/_switchyard"
  "$docs_bin" completions fish >"$root/completions/switchyard.fish"

  # The SBOM: every crate in the binary of this target (normal and build
  # dependencies, not dev-dependencies), with licences and package URLs.
  cargo cyclonedx --quiet --format json --spec-version 1.5 --target "$t" \
    --override-filename "$name.cdx" >/dev/null
  mv "$name.cdx.json" "$dist/"
  install -m 0644 "$dist/$name.cdx.json" "$root/sbom.cdx.json"

  find "$root" -exec touch -h -d "@$epoch" {} +
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -cf - "$name" | gzip -9n >"$dist/$name.tar.gz"
done
(cd "$dist" && sha256sum -- *.tar.gz *.cdx.json >SHA256SUMS)

# What the Containerfile copies (not a download: not in SHA256SUMS): each
# binary and SBOM under its container architecture's name, Debian's CA
# bundle, an empty state directory.
mkdir -p "$dist/container/state"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$dist/container/"
python3 deploy/debian/copyright.py "$dist/container/copyright"
for t in $TARGETS; do
  case $t in x86_64-*) arch=amd64 ;; aarch64-*) arch=arm64 ;; esac
  install -m 0755 "target/$t/release/switchyard" "$dist/container/switchyard-$arch"
  install -m 0644 "$dist/switchyard-$version-$t.cdx.json" "$dist/container/sbom-$arch.cdx.json"
done

for t in $TARGETS; do
  name=switchyard-$version-$t
  say "$(printf '%s: binary %s bytes, tarball %s bytes' "$name" \
    "$(stat -c %s "target/$t/release/switchyard")" "$(stat -c %s "$dist/$name.tar.gz")")"
done
ls -l "$dist" >&2
