#!/usr/bin/env bash
# Runs every test. Installs what the tests need first (Debian packages:
# dig and kdig, used as independent DNS clients, and delv, a DNSSEC
# validator; chromium, which renders
# the status page; unbound, a real caching resolver; systemd-analyze, which
# checks the unit; promtool from prometheus, which checks the shipped
# alerting rules; nft from nftables, which cuts gossip between cluster nodes
# on loopback to make real partitions, as root; clang, which build.rs
# compiles the XDP program with; python3, which sends hand-made frames at
# the XDP path), so this one command works on a fresh Debian machine with
# Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v kdig >/dev/null 2>&1 || need+=(knot-dnsutils)
command -v delv >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || need+=(unbound)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
  scripts/apt-install.sh "the tests" "${need[@]}"
  # The prometheus package starts a server; the tests only need promtool.
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# Every test target runs even when one fails (a failure in one must not
# hide the others', no_alloc and the doc tests included), and so does every
# install test after them.
status=0
took() { echo "== $1: $((SECONDS - $2)) s" >&2; }
start=$SECONDS
# The XDP program must be in what is tested (build.rs leaves it out,
# with a warning, when clang is missing).
export SWITCHYARD_REQUIRE_XDP=1
cargo test --locked --no-fail-fast "$@" || status=1
took "cargo test" "$start"

# The UDP conformance tests again, over the XDP path: as root, each test's
# server moves to a network namespace of its own and serves through XDP on
# a veth (tests/it/netns.rs), and must answer every UDP query through it.
# Skipped: tests whose clients must be on loopback (subnet routing by the
# client's loopback address).
if [ $# -eq 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED the XDP conformance run: it needs root (sudo scripts/test.sh)" >&2
  else
    start=$SECONDS
    SWITCHYARD_TEST_XDP=1 cargo test --locked --test it -- \
      dns_rules:: authority:: routing:: ecs:: dnssec:: geo:: robustness:: \
      --skip geo::subnet_routing_with_ranges_fallback_and_scopes || status=1
    took "cargo test over XDP" "$start"
  fi
fi

# The install paths (issue 24), when the whole suite runs (no arguments):
# each script installs its own tools, needs root (it installs a package,
# chroots into an image) and leaves the machine as it found it. tarball.sh
# and image.sh share the static binaries scripts/release.sh writes to dist/.
if [ $# -eq 0 ]; then
  # tarball-aarch64: the arm64 tarball, cross-built with zig, run under
  # qemu-user (TARGET=aarch64-unknown-linux-musl tests/install/tarball.sh).
  installs=(tests/install/kubernetes.sh tests/install/deb.sh tests/install/tarball.sh
    tests/install/image.sh tarball-aarch64)
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED ${installs[*]}: they need root (sudo scripts/test.sh)" >&2
  else
    for t in "${installs[@]}"; do
      echo "== $t" >&2
      start=$SECONDS
      case $t in
        tarball-aarch64) TARGET=aarch64-unknown-linux-musl tests/install/tarball.sh ;;
        *) "$t" ;;
      esac || {
        echo "FAILED: $t" >&2
        status=1
      }
      took "$t" "$start"
    done
  fi
fi
took "scripts/test.sh" 0
exit $status
