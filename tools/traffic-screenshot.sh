#!/usr/bin/env bash
# Makes docs/traffic-view.png: the bundled example (the tests' copy, without
# its monitors) on free loopback ports, queries for nearest.tm.example.test
# with EDNS Client Subnet options naming networks in a dozen countries (the
# bundled country-level GeoIP database places them; nothing leaves the
# machine), then the status page's Traffic View in headless Chromium.
#
#   tools/traffic-screenshot.sh [BINARY]     # default: a release build
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/switchyard}
[ -x "$BIN" ] || cargo build --release --quiet
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dns=$(free_port); admin=$(free_port)
example=tests/fixtures/example
mkdir -p "$work/profiles"
for f in "$example"/profiles/*.toml; do
  awk '/^\[monitor\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$f" > "$work/profiles/$(basename "$f")"
done
sed -e "0,/^listen = /s|^listen = .*|listen = [\"127.0.0.1:$dns\"]|" \
    -e "s|^listen = \"127.0.0.1:8053\"|listen = \"127.0.0.1:$admin\"|" \
    -e "s|^database = \"geoip/|database = \"$PWD/geoip/|" \
    -e "/^state_file/d" "$example/switchyard.toml" > "$work/switchyard.toml"
RUST_LOG=warn "$BIN" serve --config "$work/switchyard.toml" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do
  dig @127.0.0.1 -p "$dns" +short +time=1 +tries=1 nearest.tm.example.test >/dev/null 2>&1 && break
  sleep 0.1
done
# network, queries
total=0
while read -r net n; do
  for _ in $(seq "$n"); do
    dig @127.0.0.1 -p "$dns" +short +time=2 +tries=1 nearest.tm.example.test "+subnet=$net" >/dev/null
  done
  total=$((total + n))
done <<'NETS'
8.8.8.0/24 40
4.2.2.0/24 25
81.2.69.0/24 30
194.25.2.0/24 22
193.51.24.0/24 18
89.160.20.0/24 9
133.11.0.0/24 16
200.160.2.0/24 14
14.139.0.0/24 11
196.25.1.0/24 6
142.104.0.0/24 12
168.126.63.0/24 8
151.99.0.0/24 7
1.1.1.0/24 10
NETS
url="http://127.0.0.1:$admin/api/v1/traffic?profile=nearest.tm.example.test"
for _ in $(seq 100); do
  curl -s "$url" | grep -q "\"queries\":$total," && break
  sleep 0.1
done
profile_dir=$(mktemp -d -p "$work")
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --disable-background-networking --user-data-dir="$profile_dir" \
  --window-size=1200,1000 --virtual-time-budget=4000 \
  --screenshot="$PWD/docs/traffic-view.png" \
  "http://127.0.0.1:$admin/?traffic=nearest.tm.example.test." 2>/dev/null
echo "docs/traffic-view.png: $total queries"
