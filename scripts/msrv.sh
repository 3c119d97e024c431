#!/usr/bin/env bash
# Checks that the crate builds with the oldest Rust that Cargo.toml claims
# (`rust-version`): installs that toolchain with rustup (minimal profile)
# when missing and runs `cargo check` on every target with it, in its own
# target directory so the main build is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "no rust-version in Cargo.toml" >&2; exit 1; }
if ! rustup run "$msrv" rustc --version >/dev/null 2>&1; then
  echo "installing Rust $msrv (rust-version in Cargo.toml)" >&2
  rustup toolchain install "$msrv" --profile minimal --no-self-update >&2
fi
echo "checking with Rust $msrv" >&2
CARGO_TARGET_DIR=${MSRV_TARGET_DIR:-target/msrv} cargo "+$msrv" check --locked --all-targets --quiet
