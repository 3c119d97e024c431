#!/usr/bin/env bash
# Cluster cost: NODES switchyard processes (default 3) gossiping at the
# default interval, each probing ENDPOINTS endpoints (default 1000, every
# 10 s) against a local backend, for DURATION seconds after a warm-up.
# Prints, per node, gossip bytes per second (sent and received, from
# /metrics) and CPU (% of one core), next to the reference measured in the
# same run: the same configuration served by one node without [cluster].
#
#   benches/cluster.sh                    # 3 nodes, 1000 endpoints, 30 s
#   NODES=5 DURATION=60 benches/cluster.sh
#
# Loopback only; each node probes from its own source address (127.0.0.N+1).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-3}
ENDPOINTS=${ENDPOINTS:-1000}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-15}
PER_PROFILE=10

cargo build --release --quiet --example health_backend
cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
metric() { python3 - "$1" "$2" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(sys.argv[2])))
PY
}

bport=$(free_port tcp)
target/release/examples/health_backend "$bport" 200 2>/dev/null &
pids+=($!)

mkdir -p "$work/profiles"
profiles=$(( (ENDPOINTS + PER_PROFILE - 1) / PER_PROFILE ))
n=0
for p in $(seq 1 "$profiles"); do
  f="$work/profiles/p$p.toml"
  printf 'name = "p%d.bench.test."\nrouting = "priority"\n[monitor]\nprotocol = "http"\nport = %d\ninterval = "10s"\ntimeout = "2s"\n' "$p" "$bport" > "$f"
  for e in $(seq 1 "$PER_PROFILE"); do
    n=$((n + 1)); [ "$n" -le "$ENDPOINTS" ] || break
    printf '[[endpoints]]\nname = "e%d"\ntarget = "192.0.2.%d"\nprobe = { address = "127.0.0.1", path = "/h/%d" }\n' "$e" "$(( n % 250 + 1 ))" "$n" >> "$f"
  done
done
head -c 32 /dev/urandom | base64 > "$work/cluster.key"

# node I of COUNT (0: the lone reference)
config() {
  local i=$1 dir="$work/n$1"
  mkdir -p "$dir"
  ln -sfn "$work/profiles" "$dir/profiles"
  cp "$work/cluster.key" "$dir/"
  cat > "$dir/switchyard.toml" <<CFG
[dns]
listen = ["127.0.0.1:$(free_port udp)"]
[admin]
listen = "127.0.0.1:${admin[$i]}"
CFG
  if [ "$i" -gt 0 ]; then
    seeds=$(for j in $(seq 1 "$NODES"); do [ "$j" = "$i" ] || printf '"127.0.0.1:%s", ' "${gossip[$j]}"; done)
    cat >> "$dir/switchyard.toml" <<CFG
[cluster]
node = "ns$i"
listen = "127.0.0.1:${gossip[$i]}"
seeds = [${seeds%, }]
key = { file = "cluster.key" }
[prober]
source_v4 = "127.0.0.$((i + 1))"
CFG
  fi
  cat >> "$dir/switchyard.toml" <<CFG
[[zones]]
origin = "bench.test."
ns = ["ns1.bench.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]
CFG
}
declare -a admin gossip spid
for i in $(seq 0 "$NODES"); do admin[$i]=$(free_port tcp); gossip[$i]=$(free_port udp); done
for i in $(seq 0 "$NODES"); do
  config "$i"
  RUST_LOG=warn target/release/switchyard serve --config "$work/n$i/switchyard.toml" 2>"$work/n$i/log" &
  pids+=($!); spid[$i]=$!
done
sleep "$WARMUP"
declare -a c0 s0 r0
for i in $(seq 0 "$NODES"); do
  c0[$i]=$(ticks "${spid[$i]}")
  s0[$i]=$(metric "127.0.0.1:${admin[$i]}" 'switchyard_cluster_gossip_bytes_total{direction="sent"}')
  r0[$i]=$(metric "127.0.0.1:${admin[$i]}" 'switchyard_cluster_gossip_bytes_total{direction="received"}')
done
t0=$(date +%s.%N)
sleep "$DURATION"
t1=$(date +%s.%N)
echo "$NODES nodes, $ENDPOINTS endpoints each (probed every 10 s), default gossip interval, ${DURATION} s measured after ${WARMUP} s"
for i in $(seq 0 "$NODES"); do
  c=$(( $(ticks "${spid[$i]}") - c0[i] ))
  s=$(metric "127.0.0.1:${admin[$i]}" 'switchyard_cluster_gossip_bytes_total{direction="sent"}')
  r=$(metric "127.0.0.1:${admin[$i]}" 'switchyard_cluster_gossip_bytes_total{direction="received"}')
  alive=$(metric "127.0.0.1:${admin[$i]}" 'switchyard_cluster_nodes{state="alive"')
  awk -v i="$i" -v c="$c" -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v s="$s" -v s0="${s0[$i]}" -v r="$r" -v r0="${r0[$i]}" -v alive="$alive" 'BEGIN {
    secs = t1 - t0
    if (i == 0) printf "reference, one node alone:  CPU %.2f%% of one core\n", 100 * c / hz / secs
    else printf "node ns%d (sees %d alive):    CPU %.2f%% of one core, gossip sent %.1f KB/s, received %.1f KB/s\n", i, alive, 100 * c / hz / secs, (s - s0) / secs / 1000, (r - r0) / secs / 1000
  }'
done
for i in $(seq 0 "$NODES"); do grep -i -E "error" "$work/n$i/log" | head -3 || true; done
