#!/usr/bin/env bash
# The release tarball as someone who has never seen Rust gets it
# (issue 24, item 2): scripts/release.sh makes dist/ (cargo rebuilds nothing
# when target/ is current), then, from a copy of dist/ in a temporary
# directory:
#   - `sha256sum -c SHA256SUMS` passes;
#   - the tarball unpacks into one directory holding the binary, the
#     example configuration, the GeoIP database, the licences, the README,
#     the man pages and the completions;
#   - the binary is static and stripped (`file`, `ldd`), and `check`
#     passes on the shipped configuration;
#   - it serves the shipped example (on a free loopback port: the copy's
#     listen addresses are edited, nothing else) and `dig` gets the
#     example answer;
#   - the dependency list embedded by `cargo auditable` (read back with
#     rust-audit-info) and the SBOM name the same crates and versions.
#
#   tests/install/tarball.sh                                        # x86_64
#   TARGET=aarch64-unknown-linux-musl tests/install/tarball.sh     # under qemu-user
#
# For aarch64, release.sh builds both targets (the man pages come from the
# x86_64 binary) and the aarch64 binary runs under Debian's qemu-user
# (`qemu-aarch64 ./switchyard ...`), on a machine that is not aarch64.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf 'tarball: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

target=${TARGET:-x86_64-unknown-linux-musl}
targets=$target
run=() # what runs the binary: nothing, or qemu-user for another architecture
need=()
case $target in
  x86_64-unknown-linux-musl) arch="x86-64" ;;
  aarch64-unknown-linux-musl)
    arch="ARM aarch64"
    targets="x86_64-unknown-linux-musl $target"
    if [ "$(uname -m)" != aarch64 ]; then
      run=(qemu-aarch64)
      command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
    fi
    ;;
  *) fail "TARGET: x86_64-unknown-linux-musl or aarch64-unknown-linux-musl, not $target" ;;
esac
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v file >/dev/null 2>&1 || need+=(file)
scripts/apt-install.sh tarball ${need[@]+"${need[@]}"}
# Reads the dependency list `cargo auditable` embeds (the crate of the
# cargo-auditable project; `cargo audit bin` reads the same data).
if ! cargo install --list | grep -qxF "rust-audit-info v0.5.4:"; then
  say "installing rust-audit-info (crates.io)"
  cargo install --locked --quiet rust-audit-info --version 0.5.4
fi

TARGETS=$targets scripts/release.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
name=switchyard-$version-$target

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say "checksums: sha256sum -c SHA256SUMS"
cp -r dist "$work/download"
(cd "$work/download" && sha256sum -c --strict SHA256SUMS) >&2 || fail "SHA256SUMS does not match"
grep -q " $name.tar.gz\$" "$work/download/SHA256SUMS" || fail "SHA256SUMS does not list $name.tar.gz"
grep -q " $name.cdx.json\$" "$work/download/SHA256SUMS" || fail "SHA256SUMS does not list the SBOM"

say "unpacking $name.tar.gz"
mkdir "$work/unpacked"
tar -C "$work/unpacked" -xzf "$work/download/$name.tar.gz"
[ "$(ls "$work/unpacked")" = "$name" ] || fail "the tarball is not one directory $name: $(ls "$work/unpacked")"
dir=$work/unpacked/$name
for f in switchyard switchyard.toml profiles/todoapi.toml profiles/keys/todoapi.key \
  profiles/README.md geoip/geo-whois-asn-country.mmdb geoip/README.md geoip/LICENSE-CC-BY-4.0.txt \
  LICENSE COPYRIGHT README.md \
  CHANGELOG.md man/man1/switchyard.1 man/man1/switchyard-serve.1 \
  completions/switchyard.bash completions/_switchyard completions/switchyard.fish sbom.cdx.json; do
  [ -s "$dir/$f" ] || fail "$name/$f is missing or empty"
done
grep -q '^ *complete -F _switchyard .*switchyard$' "$dir/completions/switchyard.bash" || fail "the bash completion is not one"
grep -q '^#compdef switchyard' "$dir/completions/_switchyard" || fail "the zsh completion is not one"
grep -q '^complete -c switchyard ' "$dir/completions/switchyard.fish" || fail "the fish completion is not one"
grep -q '^\.TH switchyard 1' "$dir/man/man1/switchyard.1" || fail "switchyard.1 is not a manual page"
for crate in tokio hickory-proto ring tikv-jemalloc-sys; do
  grep -q "^Files: vendor/$crate-[0-9]" "$dir/COPYRIGHT" || fail "COPYRIGHT does not name $crate"
done
grep -qx 'License: MIT' "$dir/COPYRIGHT" || fail "COPYRIGHT has no MIT licence text"
for f in switchyard.toml profiles/todoapi.toml geoip/geo-whois-asn-country.mmdb; do
  cmp -s "$f" "$dir/$f" || fail "$name/$f is not the repository's $f"
done

bin=$dir/switchyard
info=$(file -b "$bin")
say "file: $info"
case $info in
  *static*linked*) ;;
  *) fail "the binary is not statically linked: $info" ;;
esac
case $info in
  *", $arch,"*) ;;
  *) fail "the binary is not $arch: $info" ;;
esac
case $info in
  *", stripped"*) ;;
  *) fail "the binary is not stripped: $info" ;;
esac
if ldd "$bin" >/dev/null 2>&1; then
  ldd_out=$(ldd "$bin" 2>&1 || true)
  case $ldd_out in
    *"statically linked"* | *"not a dynamic executable"*) ;;
    *) fail "ldd lists libraries: $ldd_out" ;;
  esac
fi
say "binary: $(stat -c %s "$bin") bytes; tarball: $(stat -c %s "$work/download/$name.tar.gz") bytes"
((${#run[@]} == 0)) || say "running it with ${run[*]}"
"${run[@]}" "$bin" --version | grep -qx "switchyard $version" || fail "--version: $("${run[@]}" "$bin" --version)"

say "check on the shipped configuration"
(cd "$dir" && "${run[@]}" ./switchyard check) >&2 || fail "switchyard check failed on the shipped configuration"

# A free port: the kernel's choice for a UDP socket that is then closed
# (its TCP twin is checked by the server's own bind).
free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); t=socket.socket(); t.bind(("127.0.0.1", s.getsockname()[1])); print(s.getsockname()[1])'
}
dns_port=$(free_port)
admin_port=$(free_port)
# The example listens on 127.0.0.1:5353 and [::1]:5353, admin on
# 127.0.0.1:8053: the same addresses on free ports; nothing else changes.
sed -i -e "s/^listen = \[\"127.0.0.1:5353\", \"\[::1\]:5353\"\]/listen = [\"127.0.0.1:$dns_port\"]/" \
  -e "s/^listen = \"127.0.0.1:8053\"/listen = \"127.0.0.1:$admin_port\"/" "$dir/switchyard.toml"
grep -q "127.0.0.1:$dns_port" "$dir/switchyard.toml" || fail "could not move the DNS listener to port $dns_port"
grep -q "127.0.0.1:$admin_port" "$dir/switchyard.toml" || fail "could not move the admin listener to port $admin_port"

say "serving the example on 127.0.0.1:$dns_port (admin $admin_port)"
(cd "$dir" && exec "${run[@]}" ./switchyard serve) 2>"$work/serve.log" &
pid=$!
# Ready when /healthz says so (listeners bound, prober running): 60 s at
# most on a loaded machine.
deadline=$((SECONDS + 60))
until "${run[@]}" "$bin" --admin "127.0.0.1:$admin_port" healthcheck >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "switchyard serve exited"; }
  ((SECONDS < deadline)) || { cat "$work/serve.log" >&2; fail "not healthy within 60 s"; }
  sleep 0.2
done
answer=$(dig @127.0.0.1 -p "$dns_port" todoapi.tm.example.test A +short +time=2 +tries=3)
say "dig todoapi.tm.example.test: $answer"
# Both endpoints' health checks fail here (no backends): the profile fails
# open and answers its primary, the README's quickstart answer.
[ "$answer" = "203.0.113.10" ] || { cat "$work/serve.log" >&2; fail "expected 203.0.113.10, got '$answer'"; }
answer=$(dig @127.0.0.1 -p "$dns_port" todoapi.tm.example.test A +tcp +short +time=2 +tries=3)
[ "$answer" = "203.0.113.10" ] || fail "over TCP: expected 203.0.113.10, got '$answer'"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""

say "embedded dependency list (cargo auditable) against the SBOM"
rust-audit-info "$bin" >"$work/audit.json" || fail "rust-audit-info found no audit data in the binary"
jq -r '.packages[] | "\(.name)@\(.version)"' "$work/audit.json" | sort -u >"$work/audit.txt"
jq -r '(.metadata.component, .components[]?) | "\(.name)@\(.version)"' "$dir/sbom.cdx.json" |
  sort -u >"$work/sbom.txt"
cmp -s "$dir/sbom.cdx.json" "$work/download/$name.cdx.json" || fail "the SBOM in the tarball is not dist/'s"
if ! diff -u "$work/audit.txt" "$work/sbom.txt" >"$work/diff.txt"; then
  cat "$work/diff.txt" >&2
  fail "the embedded dependency list (-) and the SBOM (+) differ"
fi
grep -qx "switchyard@$version" "$work/audit.txt" || fail "the audit data does not name switchyard $version"
grep -q '^tikv-jemallocator@' "$work/audit.txt" || fail "jemalloc is not in the binary"
say "embedded and SBOM: the same $(wc -l <"$work/audit.txt") crates"
say "ok"
