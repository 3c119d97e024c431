#!/usr/bin/env bash
# Prober cost: N endpoints (default 1000), each probed over HTTP every second
# against a local backend, for DURATION seconds. Prints probes/s and the
# switchyard process's CPU (% of one core, and µs per probe), next to the
# backend's CPU per request in the same run as the reference.
#
#   benches/prober.sh                 # 1000 endpoints, 20 s
#   ENDPOINTS=2000 DURATION=30 benches/prober.sh
#   PROTOCOLS="http grpc" benches/prober.sh   # each in turn, same backend; ratio to the first
#
# Loopback only. The DNS side is idle during the run.
set -euo pipefail
cd "$(dirname "$0")/.."

ENDPOINTS=${ENDPOINTS:-1000}
DURATION=${DURATION:-20}
PROTOCOLS=${PROTOCOLS:-http}
PER_PROFILE=10

# PERF=1 records a perf profile of the server: that needs symbols, which the
# release build does not have (it is stripped), so it runs the profiling
# build (Cargo.toml, [profile.profiling]: release with symbols and line tables).
PROFILE=release
[ -n "${PERF:-}" ] && PROFILE=profiling
cargo build --release --quiet --example health_backend
cargo build --profile "$PROFILE" --quiet
BIN=target/$PROFILE/switchyard
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

bport=$(free_port)
taskset -c 1 target/release/examples/health_backend "$bport" 200 2>/dev/null &
pids+=($!); bpid=$!

count() { curl -s "http://127.0.0.1:$bport/count" 2>/dev/null || python3 -c "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:$bport/count').read().decode())"; }

# One measurement: N endpoints of PROTOCOL probed by a fresh server.
measure() {
PROTOCOL=$1
rm -rf "$work/profiles"; mkdir -p "$work/profiles"
cat > "$work/switchyard.toml" <<CFG
[dns]
listen = ["127.0.0.1:$(free_port)"]
[[zones]]
origin = "bench.test."
ns = ["ns1.bench.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]
CFG
profiles=$(( (ENDPOINTS + PER_PROFILE - 1) / PER_PROFILE ))
n=0
for p in $(seq 1 "$profiles"); do
  f="$work/profiles/p$p.toml"
  printf 'name = "p%d.bench.test."\nrouting = "priority"\n[monitor]\nprotocol = "%s"\nport = %d\ninterval = "1s"\ntimeout = "500ms"\n' "$p" "$PROTOCOL" "$bport" > "$f"
  for e in $(seq 1 "$PER_PROFILE"); do
    n=$((n + 1)); [ "$n" -le "$ENDPOINTS" ] || break
    # Each endpoint its own probe (identical probes are sent once): its own
    # path, or for grpc (no path) its own metadata.
    case "$PROTOCOL" in
      tcp) probe="{ address = \"127.0.0.1\" }" ;;
      grpc) probe="{ address = \"127.0.0.1\", headers = { x-endpoint = \"$n\" } }" ;;
      *) probe="{ address = \"127.0.0.1\", path = \"/h/$n\" }" ;;
    esac
    printf '[[endpoints]]\nname = "e%d"\ntarget = "192.0.2.%d"\nprobe = %s\n' "$e" "$(( n % 250 + 1 ))" "$probe" >> "$f"
  done
done
"$BIN" check --config "$work/switchyard.toml" >/dev/null
RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$work/switchyard.toml" 2>"$work/log" &
pids+=($!); spid=$!
sleep 3   # every target has had its first probe (they are spread over one interval)
c0=$(count); s0=$(ticks "$spid"); b0=$(ticks "$bpid"); t0=$(date +%s.%N)
if [ -n "${PERF:-}" ]; then perf record -e cpu-clock -F 999 -g -p "$spid" -o /tmp/perf.data -- sleep "$DURATION" >/dev/null 2>&1; else sleep "$DURATION"; fi
c1=$(count); s1=$(ticks "$spid"); b1=$(ticks "$bpid"); t1=$(date +%s.%N)
if [ "$PROTOCOL" = tcp ]; then c0=0; c1=0; fi

awk -v c0="$c0" -v c1="$c1" -v s="$((s1 - s0))" -v b="$((b1 - b0))" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v n="$ENDPOINTS" -v proto="$PROTOCOL" 'BEGIN {
  secs = t1 - t0
  probes = (c1 > c0) ? (c1 - c0) : n * secs
  printf "%d %s endpoints, interval 1s, %.0f s measured\n", n, proto, secs
  printf "probes answered by the backend: %.0f/s\n", (c1 - c0) / secs
  printf "switchyard CPU: %.1f%% of one core, %.1f us per probe\n", 100 * s / hz / secs, s / hz * 1e6 / probes
  if (c1 > c0) printf "reference, backend CPU: %.1f%% of one core, %.1f us per request; ratio prober/backend %.2f\n", 100 * b / hz / secs, b / hz * 1e6 / probes, s / b
}'
grep -i -E "error|warn" "$work/log" | head -5 || true
kill "$spid"; wait "$spid" 2>/dev/null || true
}

results=()
for proto in $PROTOCOLS; do
  measure "$proto" > "$work/out"; cat "$work/out"; echo
  results+=("$proto $(sed -n 's/.* \([0-9.]*\) us per probe/\1/p' "$work/out")")
done
if [ "${#results[@]}" -gt 1 ]; then
  printf '%s\n' "${results[@]}" | awk 'NR == 1 { base = $2; first = $1 } { printf "%s: %.1f us per probe, %.2fx %s\n", $1, $2, $2 / base, first }'
fi
