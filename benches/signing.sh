#!/usr/bin/env bash
# The signing budget under a flood of new names (issue 20 item 11): a
# client asking names whose signatures are cached, alone and while
# FLOOD_NETS dnsperf processes (each from its own loopback /24) send
# random names with DO at FLOOD_QPS in all, every one of which needs a new
# signature. Prints the client's answers, losses and latency per scenario:
#
#   alone           the client only
#   cached flood    the same flood volume of names already signed (no new
#                   signature: what any flood of this size costs)
#   random flood    random names, with the default budget
#                   (dns.signatures_per_second 2000, 200 per client)
#   no budget       random names, signatures_per_second = 0 (as before)
#
#   benches/signing.sh                        # 3 trials x 10 s per scenario
#   TRIALS=5 DURATION=8 FLOOD_QPS=50000 benches/signing.sh
#   BUDGET=5000 benches/signing.sh            # another dns.signatures_per_second
#
# The server is pinned to SERVER_CPU (one core, one UDP thread), every
# dnsperf to LOAD_CPU. Loopback is exempt from rate limiting (the default),
# which stands for a flood spread over more networks than any per-network
# limit sees; FLOOD_NETS=4 sends it from four /24s all the same (on a
# 2-core machine the extra dnsperf processes slow the client down more
# than the server does). Installs dnsperf when missing; loopback only; every run is
# bounded by DURATION seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
TRIALS=${TRIALS:-3}
FLOOD_QPS=${FLOOD_QPS:-50000}
FLOOD_NETS=${FLOOD_NETS:-1}
CLIENT_QPS=${CLIENT_QPS:-2000}
BUDGET=${BUDGET:-}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v dnsperf >/dev/null 2>&1; then
  echo "installing dnsperf" >&2
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends dnsperf >/dev/null || true
fi
command -v dnsperf >/dev/null || { echo "dnsperf is required" >&2; exit 1; }

cargo build --release --quiet
BIN=target/release/switchyard
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# The names the client asks (signed once, then from the cache), and a
# million random names for the flood (no name repeats within a run).
printf '%s\n' "todoapi.tm.example.test A" "www.tm.example.test A" "ns1.tm.example.test A" \
  "tm.example.test SOA" "tm.example.test NS" "canary.tm.example.test A" > "$work/cached"
awk 'BEGIN { srand(); for (i = 0; i < 1000000; i++) printf "r%x%x.tm.example.test A\n", int(rand() * 2^31), i }' > "$work/random"

# The bundled example, signed with a key made for the run, its profiles
# without [monitor] (nothing probed, nothing sent beyond loopback).
mkdir -p "$work/profiles"
for f in profiles/*.toml; do
  awk '/^\[monitor\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$f" > "$work/profiles/$(basename "$f")"
done
"$BIN" dnssec keygen --zone tm.example.test. --out "$work/tm.key" >/dev/null
start_server() { # extra [dns] keys; sets port, admin, pid
  port=$(free_port); admin=$(free_port)
  sed -e "0,/^listen = /s|^listen = .*|listen = [\"127.0.0.1:$port\"]\n$1|" \
      -e "s|^listen = \"127.0.0.1:8053\"|listen = \"127.0.0.1:$admin\"|" \
      -e "s|^database = \"geoip/|database = \"$PWD/geoip/|" switchyard.toml > "$work/switchyard.toml"
  printf 'dnssec = { key = { file = "%s" } }\n' "$work/tm.key" >> "$work/switchyard.toml"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" serve --config "$work/switchyard.toml" 2>"$work/server.log" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 100); do
    if dnsperf -s 127.0.0.1 -p "$port" -d "$work/cached" -D -n 1 -t 1 2>/dev/null | grep -q "Queries completed: *6 "; then return 0; fi
    sleep 0.1
  done
  echo "the server did not answer:" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

# One trial: the client for DURATION s, with the flood (a query file) or
# without; prints "completed lost avg_ms stddev_ms server_cpu_percent".
trial() { # flood-file or ""
  local fpids=() before after
  if [ -n "$1" ]; then
    for n in $(seq "$FLOOD_NETS"); do
      taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$port" -a "127.0.$n.1" -d "$1" -D \
        -Q $((FLOOD_QPS / FLOOD_NETS)) -c 2 -q 500 -l $((DURATION + 2)) >"$work/flood.$n" 2>&1 &
      fpids+=($!)
    done
    sleep 1  # the flood is under way before the client's run starts
  fi
  before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$port" -a 127.0.200.1 -d "$work/cached" -D \
    -Q "$CLIENT_QPS" -c 1 -q 100 -l "$DURATION" -t 2 > "$work/client.out" 2>&1
  after=$(cpu_ticks "$pid")
  for p in "${fpids[@]}"; do wait "$p" 2>/dev/null || true; done
  local flood=0
  [ -n "$1" ] && flood=$(cat "$work"/flood.* | awk '/Queries per second:/ { q += $4 } END { printf "%.0f", q }')
  awk -v cpu=$((after - before)) -v hz="$HZ" -v d="$DURATION" -v flood="$flood" '
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Average Latency \(s\):/ { lat = $4 * 1000 }
    /Latency StdDev \(s\):/ { sd = $4 * 1000 }
    END { printf "%d %d %.3f %.3f %.0f %d\n", done, lost, lat, sd, cpu / hz / d * 100, flood }
  ' "$work/client.out"
  rm -f "$work"/flood.*
}

refused() { # "budget client" counts from the server's metrics
  curl -s "http://127.0.0.1:$admin/metrics" | awk '
    /^switchyard_dnssec_signatures_refused_total\{reason="budget"\}/ { b = $2 }
    /^switchyard_dnssec_signatures_refused_total\{reason="client"\}/ { c = $2 }
    /^switchyard_dnssec_signatures_total\{source="signed"\}/ { s = $2 }
    END { printf "new RRsets %d: signed %d, refused %d (budget) %d (client)", s, s - b - c, b, c }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$1" | median; }

budget_keys=""
[ -n "$BUDGET" ] && budget_keys="signatures_per_second = $BUDGET"
scenarios=("alone||$budget_keys" "cached flood|$work/cached|$budget_keys"
  "random flood|$work/random|$budget_keys"
  "no budget|$work/random|signatures_per_second = 0\nsignatures_per_client = 0")
: > "$work/notes"
i=0
for s in "${scenarios[@]}"; do
  IFS='|' read -r name flood keys <<<"$s"
  start_server "$keys"
  : > "$work/s$i"
  for _ in $(seq "$TRIALS"); do trial "$flood" >> "$work/s$i"; done
  echo "$name: $(refused)" >> "$work/notes"
  stop_server
  i=$((i + 1))
done

echo
echo "client: ${CLIENT_QPS} q/s of cached signed names (DO); flood: ${FLOOD_QPS} q/s with DO from $FLOOD_NETS networks; $TRIALS trials x ${DURATION}s; server on CPU $SERVER_CPU, dnsperf on CPU $LOAD_CPU"
printf '%-14s %10s %8s %12s %12s %12s %12s\n' scenario answered lost "avg lat ms" "stddev ms" "server CPU%" "flood q/s"
i=0
for s in "${scenarios[@]}"; do
  name=${s%%|*}
  printf '%-14s %10s %8s %12s %12s %12s %12s\n' "$name" "$(col "$work/s$i" 1)" "$(col "$work/s$i" 2)" \
    "$(col "$work/s$i" 3)" "$(col "$work/s$i" 4)" "$(col "$work/s$i" 5)" "$(col "$work/s$i" 6)"
  i=$((i + 1))
done
awk -v a="$(col "$work/s2" 3)" -v b="$(col "$work/s1" 3)" -v c="$(col "$work/s2" 1)" -v d="$(col "$work/s1" 1)" \
  'BEGIN { printf "random flood / cached flood: latency %.2f, answers %.3f\n", a / b, c / d }'
cat "$work/notes"
echo "(per-trial rows: answered lost avg_ms stddev_ms server_cpu% flood_qps)"
i=0
for s in "${scenarios[@]}"; do sed "s/^/${s%%|*}: /" "$work/s$i"; i=$((i + 1)); done
exit 0
