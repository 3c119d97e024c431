#!/usr/bin/env bash
# What one node of a 3-node cluster needs: the figures behind the resource
# requests in deploy/kubernetes/statefulset.yaml. Three release servers on
# loopback, joined as a cluster, each on the bundled example (the tests'
# copy) with the Kubernetes manifests' settings (rate limiting and cookies
# on, Traffic View on, state file, probes as shipped); then dnsperf loads
# node 0 with a mix of the example's names (NOERROR, CNAME, NXDOMAIN) from
# many clients for DURATION seconds and /metrics is scraped. Prints each
# node's RSS after start, node 0's peak RSS (VmHWM) under load, its CPU per
# answered query and the queries per second it served, and its CPU while
# idle (probes and gossip).
#
#   benches/footprint.sh                       # target/release/switchyard, 20 s of load
#   BIN=/path/to/switchyard DURATION=30 benches/footprint.sh
#
# Loopback only (loopback is exempt from rate limiting, so every query is
# answered); every run is bounded; the servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-8}
BIN=${BIN:-target/release/switchyard}
[ -x "$BIN" ] || cargo build --release --locked --quiet
command -v dnsperf >/dev/null || { echo "dnsperf is required (apt-get install dnsperf)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="u" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

example=tests/fixtures/example
head -c 32 /dev/urandom | base64 > "$work/cluster.key"
chmod 600 "$work/cluster.key"
gossip=(); dns=(); admin=()
for i in 0 1 2; do gossip+=("$(free_port u)"); dns+=("$(free_port u)"); admin+=("$(free_port t)"); done
for i in 0 1 2; do
  d="$work/node$i"
  mkdir -p "$d/state"
  cp -r "$example/profiles" "$d/"
  seeds=""
  for j in 0 1 2; do [ "$j" = "$i" ] || seeds="$seeds${seeds:+, }\"127.0.0.1:${gossip[$j]}\""; done
  sed -e "0,/^listen = /s|^listen = .*|listen = [\"127.0.0.1:${dns[$i]}\"]|" \
      -e "s|^listen = \"127.0.0.1:8053\"|listen = \"127.0.0.1:${admin[$i]}\"|" \
      -e "s|^state_file = .*|state_file = \"state/switchyard.state\"|" \
      -e "s|^database = \"geoip/|database = \"$PWD/geoip/|" "$example/switchyard.toml" > "$d/switchyard.toml"
  printf '[cluster]\nnode = "node%s"\nlisten = "127.0.0.1:%s"\nseeds = [%s]\nkey = { file = "%s" }\n' \
    "$i" "${gossip[$i]}" "$seeds" "$work/cluster.key" >> "$d/switchyard.toml"
  RUST_LOG=warn "$BIN" serve --config "$d/switchyard.toml" 2>"$d/log" &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:${admin[$i]}/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:${admin[$i]}/healthz" >/dev/null || { cat "$work/node$i/log" >&2; exit 1; }
done
# Ten seconds of probing and gossip (each example endpoint probed every
# 2-10 s), then RSS as it idles.
idle0=$(cpu_ticks "${pids[0]}")
sleep 10
idle1=$(cpu_ticks "${pids[0]}")
for i in 0 1 2; do
  echo "node$i after start: RSS $(( $(kib "${pids[$i]}" VmRSS) / 1024 )) MiB"
done
echo "node0 idle (probes, gossip): $(awk -v t=$((idle1 - idle0)) -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz * 100 / 10 }') % of a core"

for n in todoapi www canary static geo nearest office pool nope; do
  echo "$n.tm.example.test A"
done > "$work/queries"
echo "tm.example.test SOA" >> "$work/queries"
echo "tm.example.test NS" >> "$work/queries"
pid=${pids[0]}
before=$(cpu_ticks "$pid")
dnsperf -s 127.0.0.1 -p "${dns[0]}" -d "$work/queries" -c "$CLIENTS" -l "$DURATION" -q 200 > "$work/dnsperf.out"
after=$(cpu_ticks "$pid")
done_q=$(awk '/Queries completed:/ { print $3 }' "$work/dnsperf.out")
qps=$(awk '/Queries per second:/ { printf "%d", $4 }' "$work/dnsperf.out")
curl -fsS "http://127.0.0.1:${admin[0]}/metrics" > "$work/metrics"
echo "node0 under load: $qps q/s for ${DURATION} s ($done_q answered, $CLIENTS clients)," \
  "CPU $(awk -v t=$((after - before)) -v hz="$HZ" -v q="$done_q" 'BEGIN { printf "%.2f", t / hz * 1e6 / q }') µs per query," \
  "peak RSS $(( $(kib "$pid" VmHWM) / 1024 )) MiB, RSS after a /metrics scrape $(( $(kib "$pid" VmRSS) / 1024 )) MiB"
for i in 1 2; do
  echo "node$i at the end: RSS $(( $(kib "${pids[$i]}" VmRSS) / 1024 )) MiB, peak $(( $(kib "${pids[$i]}" VmHWM) / 1024 )) MiB"
done
