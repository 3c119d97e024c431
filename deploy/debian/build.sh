#!/usr/bin/env bash
# Builds the Debian package, from the repository, with one command:
#
#   deploy/debian/build.sh [cargo deb options: --deb-version 0.1.0-2, --fast, --no-build]
#
# writes target/debian/switchyard_<version>-1_<arch>.deb. The release binary
# is built first (cargo rebuilds nothing when target/release is up to date),
# then the files `cargo deb` cannot make are generated from it into
# target/switchyard-deb/: the man pages and completions (`switchyard man`,
# `switchyard completions`, from the binary's own clap definitions) and the
# DEP-5 copyright file naming every statically linked crate's licence
# (deploy/debian/copyright.py); then `cargo deb --no-build` packs what
# Cargo.toml's [package.metadata.deb] lists. Installs cargo-deb when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb (cargo install --locked cargo-deb)" >&2
  cargo install --locked cargo-deb
fi

# `--no-build` packs target/release/switchyard as it is.
build=1
args=()
for arg in "$@"; do
  if [ "$arg" = --no-build ]; then build=0; else args+=("$arg"); fi
done
if [ "$build" = 1 ]; then
  cargo build --locked --release --bin switchyard
fi
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
out=target/switchyard-deb
rm -rf "$out"
mkdir -p "$out/man"
"$bin" man --dir "$out/man" >/dev/null
"$bin" completions bash >"$out/switchyard.bash"
"$bin" completions zsh >"$out/_switchyard"
"$bin" completions fish >"$out/switchyard.fish"
python3 deploy/debian/copyright.py "$out/copyright"
gzip -9n <README.md >"$out/README.md.gz"

cargo deb --locked --no-build ${args[@]+"${args[@]}"}
