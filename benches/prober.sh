#!/usr/bin/env bash
# Prober cost: N endpoints (default 1000), each probed every second against
# a local backend, for DURATION seconds, for each probe type given (default
# http). Prints probes/s and the switchyard process's CPU (% of one core,
# and µs per probe), next to the backend's CPU per request in the same run
# as the reference; with several types, each one's CPU per probe against
# the first's (same run, same machine).
#
#   benches/prober.sh                 # 1000 HTTP endpoints, 20 s
#   benches/prober.sh http dns        # HTTP, then DNS (UDP); dns/http ratio
#   benches/prober.sh http dns-tcp    # DNS over TCP
#   benches/prober.sh http grpc       # the gRPC health check (h2c)
#   benches/prober.sh http https tcp  # HTTPS (a full TLS handshake each), a TCP connect
#   ENDPOINTS=2000 DURATION=30 benches/prober.sh
#
# http: one local HTTP backend (examples/health_backend.rs), a path per
# endpoint. tcp: a connect to it. grpc: the same backend answers
# grpc.health.v1.Health/Check on the same port (h2c); each endpoint sends
# its own metadata, so each is its own probe. dns, dns-tcp: a second switchyard serving
# a zone, asked A p<N>.backend.test. (one name per profile of 10 endpoints,
# each endpoint on its own loopback address 127.0.0.1-10) expecting
# 192.0.2.1. Loopback only. The measured server's own DNS side is idle.
set -euo pipefail
cd "$(dirname "$0")/.."

ENDPOINTS=${ENDPOINTS:-1000}
DURATION=${DURATION:-20}
PER_PROFILE=10
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(http)

# PERF=1 records a perf profile of the server: that needs symbols, which the
# release build does not have (it is stripped), so it runs the profiling
# build (Cargo.toml, [profile.profiling]: release with symbols and line tables).
# With several modes, the last mode's profile is the one left in /tmp/perf.data.
PROFILE=release
[ -n "${PERF:-}" ] && PROFILE=profiling
cargo build --release --quiet --example health_backend
cargo build --profile "$PROFILE" --quiet
BIN=target/$PROFILE/switchyard
# The DNS backend is the release build whatever is measured.
[ "$PROFILE" = release ] || cargo build --release --quiet
BACKEND_BIN=target/release/switchyard
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
fetch() { curl -s "$1" 2>/dev/null || python3 -c "import urllib.request,sys;print(urllib.request.urlopen(sys.argv[1]).read().decode())" "$1"; }
profiles=$(( (ENDPOINTS + PER_PROFILE - 1) / PER_PROFILE ))

# Starts the backend for mode $1 on CPU 1; sets bpid, bport and count (a
# command printing how many requests it has answered).
start_backend() {
  bport=$(free_port)
  case "$1" in
    http|https|tcp|grpc)
      taskset -c 1 target/release/examples/health_backend "$bport" 200 2>/dev/null &
      pids+=($!); bpid=$!
      count() { fetch "http://127.0.0.1:$bport/count"; }
      ;;
    dns|dns-tcp)
      local dir="$work/backend" listen="" records=""
      aport=$(free_port)
      mkdir -p "$dir/profiles"
      for a in $(seq 1 "$PER_PROFILE"); do listen+="\"127.0.0.$a:$bport\", "; done
      for p in $(seq 1 "$profiles"); do records+="{ name = \"p$p\", type = \"A\", value = \"192.0.2.1\" }, "; done
      cat > "$dir/switchyard.toml" <<CFG
[dns]
listen = [${listen%, }]
[admin]
listen = "127.0.0.1:$aport"
[profiles]
dir = "profiles"
[[zones]]
origin = "backend.test."
ns = ["ns1.backend.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }, ${records%, }]
CFG
      RUST_LOG=warn taskset -c 1 "$BACKEND_BIN" serve --config "$dir/switchyard.toml" 2>"$work/backend.log" &
      pids+=($!); bpid=$!
      count() { fetch "http://127.0.0.1:$aport/metrics" | awk '/^switchyard_dns_queries_total/ { n += $NF } END { printf "%d\n", n }'; }
      ;;
    *) echo "unknown mode $1 (http, https, tcp, grpc, dns, dns-tcp)" >&2; exit 2 ;;
  esac
  for _ in $(seq 1 100); do count >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the $1 backend did not start" >&2; exit 1
}

# Writes the measured server's configuration for mode $1 into $work/$1.
write_config() {
  local mode=$1 dir="$work/$1" n=0 p e f probe monitor
  mkdir -p "$dir/profiles"
  cat > "$dir/switchyard.toml" <<CFG
[dns]
listen = ["127.0.0.1:$(free_port)"]
[[zones]]
origin = "bench.test."
ns = ["ns1.bench.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]
CFG
  for p in $(seq 1 "$profiles"); do
    f="$dir/profiles/p$p.toml"
    case "$mode" in
      http|tcp|grpc) monitor="protocol = \"$mode\"" ;;
      https) monitor="protocol = \"https\"\ntls_verify = false" ;;
      dns) monitor="protocol = \"dns\"\nquery_name = \"p$p.backend.test.\"\nexpected_answer = \"192.0.2.1\"" ;;
      dns-tcp) monitor="protocol = \"dns\"\ntransport = \"tcp\"\nquery_name = \"p$p.backend.test.\"\nexpected_answer = \"192.0.2.1\"" ;;
    esac
    printf "name = \"p%d.bench.test.\"\nrouting = \"priority\"\n[monitor]\n$monitor\nport = %d\ninterval = \"1s\"\ntimeout = \"500ms\"\n" "$p" "$bport" > "$f"
    for e in $(seq 1 "$PER_PROFILE"); do
      n=$((n + 1)); [ "$n" -le "$ENDPOINTS" ] || break
      case "$mode" in
        tcp) probe="{ address = \"127.0.0.1\" }" ;;
        http|https) probe="{ address = \"127.0.0.1\", path = \"/h/$n\" }" ;;
        grpc) probe="{ address = \"127.0.0.1\", headers = { x-endpoint = \"$n\" } }" ;;
        *) probe="{ address = \"127.0.0.$e\" }" ;;
      esac
      printf '[[endpoints]]\nname = "e%d"\ntarget = "192.0.2.%d"\nprobe = %s\n' "$e" "$(( n % 250 + 1 ))" "$probe" >> "$f"
    done
  done
  "$BIN" check --config "$dir/switchyard.toml" >/dev/null
}

# Measures mode $1; appends "mode µs-per-probe" to $work/results.
measure() {
  local mode=$1 spid c0 c1 s0 s1 b0 b1 t0 t1
  start_backend "$mode"
  write_config "$mode"
  RUST_LOG=warn taskset -c 0 "$BIN" serve --config "$work/$mode/switchyard.toml" 2>"$work/$mode.log" &
  pids+=($!); spid=$!
  sleep 3   # every target has had its first probe (they are spread over one interval)
  c0=$(count); s0=$(ticks "$spid"); b0=$(ticks "$bpid"); t0=$(date +%s.%N)
  if [ -n "${PERF:-}" ]; then perf record -e cpu-clock -F 999 -g -p "$spid" -o /tmp/perf.data -- sleep "$DURATION" >/dev/null 2>&1; else sleep "$DURATION"; fi
  c1=$(count); s1=$(ticks "$spid"); b1=$(ticks "$bpid"); t1=$(date +%s.%N)
  if [ "$mode" = tcp ]; then c0=0; c1=0; fi
  kill "$spid" "$bpid"; wait "$spid" "$bpid" 2>/dev/null || true
  awk -v c0="$c0" -v c1="$c1" -v s="$((s1 - s0))" -v b="$((b1 - b0))" -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v n="$ENDPOINTS" -v proto="$mode" -v out="$work/results" 'BEGIN {
    secs = t1 - t0
    probes = (c1 > c0) ? (c1 - c0) : n * secs
    printf "%d %s endpoints, interval 1s, %.0f s measured\n", n, proto, secs
    printf "probes answered by the backend: %.0f/s\n", (c1 - c0) / secs
    printf "switchyard CPU: %.1f%% of one core, %.1f us per probe\n", 100 * s / hz / secs, s / hz * 1e6 / probes
    if (c1 > c0) printf "reference, backend CPU: %.1f%% of one core, %.1f us per request; ratio prober/backend %.2f\n", 100 * b / hz / secs, b / hz * 1e6 / probes, s / b
    printf "%s %.3f\n", proto, s / hz * 1e6 / probes >> out
  }'
  grep -i -E "error|warn" "$work/$mode.log" | head -5 || true
}

for mode in "${MODES[@]}"; do
  measure "$mode"
  echo
done
if [ ${#MODES[@]} -gt 1 ]; then
  awk 'NR == 1 { base = $2; name = $1; next } { printf "%s/%s CPU per probe: %.2f\n", $1, name, $2 / base }' "$work/results"
fi
