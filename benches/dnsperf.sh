#!/usr/bin/env bash
# Server CPU per answered query under load: Switchyard and gdnsd (the C
# reference) answer the same name in the same run, each pinned to CPU 0 with
# dnsperf pinned to CPU 1; the ratio is the figure to compare across machines.
#
#   benches/dnsperf.sh                      # todoapi.tm.example.test A, 3 x 10 s each
#   TRIALS=5 DURATION=20 benches/dnsperf.sh www.tm.example.test A
#   ECS=81.2.69.0/24 benches/dnsperf.sh nearest.tm.example.test A   # with EDNS Client Subnet
#   GDNSD_THREADS=default benches/dnsperf.sh  # gdnsd with its own thread count
#   SIGNED=0 benches/dnsperf.sh             # without the signed server (sy+dnssec)
#   BASELINE=/tmp/old/switchyard benches/dnsperf.sh   # an earlier build, same trials
#   BASELINE=/tmp/old/target/release/switchyard BASELINE_EXAMPLE=/tmp/old benches/dnsperf.sh
#                                  # an older tree's build on its own bundled example
#   TRAFFIC=1 benches/dnsperf.sh            # and the same build with [traffic] off (sy-notraffic)
#   BIN=target/profiling/switchyard benches/dnsperf.sh   # this binary, not a fresh release build
#
# gdnsd gets one UDP thread, as Switchyard has on one pinned core; with its
# default (udp_threads = 2: two sockets and threads on the one pinned core)
# it pays for context switches and costs 10-25% more per query here.
#
# Installs dnsperf and gdnsd from Debian packages when missing (gdnsd is only
# the reference: without it, Switchyard's figures are printed alone).
# Loopback only; every run is bounded by DURATION seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=${1:-todoapi.tm.example.test}
QTYPE=${2:-A}
DURATION=${DURATION:-10}
TRIALS=${TRIALS:-3}
CLIENTS=${CLIENTS:-4}
ECS=${ECS:-}
OUTSTANDING=${OUTSTANDING:-100}
GDNSD_THREADS=${GDNSD_THREADS:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v gdnsd >/dev/null 2>&1 || [ -x /usr/sbin/gdnsd ] || need+=(gdnsd)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || true
  # The package starts a system gdnsd on port 53; we run our own.
  $sudo systemctl disable --now gdnsd >/dev/null 2>&1 || true
fi
command -v dnsperf >/dev/null || { echo "dnsperf is required" >&2; exit 1; }
GDNSD=$(command -v gdnsd || echo /usr/sbin/gdnsd)

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/switchyard
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # port
  for _ in $(seq 100); do
    if dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -n 1 -t 1 "${ecs_args[@]}" 2>/dev/null | grep -q "Queries completed: *1 "; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not answer:" >&2; cat "$work"/*.log >&2; return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
user_ticks() { awk '{ print $14 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

printf '%s %s\n' "$NAME" "$QTYPE" > "$work/queries"

# ECS=a.b.c.d/n adds an EDNS Client Subnet option to every query.
ecs_args=()
if [ -n "$ECS" ]; then
  ecs_args=(-E "8:$(python3 -c '
import ipaddress, sys
net = ipaddress.ip_network(sys.argv[1], strict=False)
fam = 1 if net.version == 4 else 2
n = (net.prefixlen + 7) // 8
print("%04x%02x00%s" % (fam, net.prefixlen, net.network_address.packed[:n].hex()))
' "$ECS")")
fi


# Switchyard on the bundled example (the tests' copy of it in
# tests/fixtures/example/: the bundled files are the user's to edit), twice,
# on free ports. The profiles are copied without their [monitor] tables: the
# example's endpoints are documentation addresses, and benchmarks send
# nothing beyond loopback.
#  - "switchyard": rate limiting and cookies off, as before they existed;
#  - "sy+limits": rate limiting on for every response (nothing exempt, a
#    rate no load here reaches, so every response is counted and none is
#    dropped) and a client cookie in every query (a server cookie made for
#    every response). LIMITS=0 skips it.
LIMITS=${LIMITS:-1}
example=tests/fixtures/example
profiles_without_monitors() { # example-dir into-dir
  mkdir -p "$2/profiles"
  for f in "$1"/profiles/*.toml; do
    awk '/^\[monitor\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$f" > "$2/profiles/$(basename "$f")"
  done
}
profiles_without_monitors "$example" "$work"
sy_config() { # port admin-port extra-toml [example-dir]
  sed -e "0,/^listen = /s|^listen = .*|listen = [\"127.0.0.1:$1\"]|" \
      -e "s|^listen = \"127.0.0.1:8053\"|listen = \"127.0.0.1:$2\"|" \
      -e "s|^database = \"geoip/|database = \"$PWD/geoip/|" "${4:-$example}/switchyard.toml"
  printf '%b\n' "$3"
}
sy_port=$(free_port)
sy_config "$sy_port" "$(free_port)" '[dns.rate_limit]\nenabled = false\n[dns.cookies]\nenabled = false' > "$work/switchyard.toml"
RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" serve --config "$work/switchyard.toml" 2>"$work/switchyard.log" &
pids+=($!); sy_pid=$!
# BASELINE: another switchyard binary (an earlier commit's release build)
# on the same configuration, alternating with this one: a refactor's cost
# per query, measured against itself in the same run.
# BASELINE_EXAMPLE=<dir>: the baseline runs on that directory's
# switchyard.toml and profiles/ instead (an older tree's bundled example,
# for a build that predates keys the current one has), as they are: no
# [dns.rate_limit] or [dns.cookies] added (builds before 2026-12-01 18:15
# have neither).
bl_pid=""
if [ -n "${BASELINE:-}" ]; then
  bl_port=$(free_port)
  if [ -n "${BASELINE_EXAMPLE:-}" ]; then
    [ -f "$BASELINE_EXAMPLE/switchyard.toml" ] && [ -d "$BASELINE_EXAMPLE/profiles" ] || {
      echo "dnsperf.sh: BASELINE_EXAMPLE=$BASELINE_EXAMPLE needs switchyard.toml and profiles/ (a tree's bundled example)" >&2
      exit 1
    }
    profiles_without_monitors "$BASELINE_EXAMPLE" "$work/bl-example"
    sy_config "$bl_port" "$(free_port)" "" "$BASELINE_EXAMPLE" > "$work/bl-example/baseline.toml"
    bl_conf=$work/bl-example/baseline.toml
  else
    sy_config "$bl_port" "$(free_port)" '[dns.rate_limit]\nenabled = false\n[dns.cookies]\nenabled = false' > "$work/baseline.toml"
    bl_conf=$work/baseline.toml
  fi
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BASELINE" serve --config "$bl_conf" 2>"$work/baseline.log" &
  pids+=($!); bl_pid=$!
fi
# TRAFFIC=1: "sy-notraffic", the "switchyard" configuration with the
# Traffic View off ([traffic] enabled = false): what recording costs.
nt_pid=""
if [ "${TRAFFIC:-0}" = 1 ]; then
  nt_port=$(free_port)
  sy_config "$nt_port" "$(free_port)" '[dns.rate_limit]\nenabled = false\n[dns.cookies]\nenabled = false\n[traffic]\nenabled = false' > "$work/notraffic.toml"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" serve --config "$work/notraffic.toml" 2>"$work/notraffic.log" &
  pids+=($!); nt_pid=$!
fi
sl_pid=""
if [ "$LIMITS" = 1 ]; then
  sl_port=$(free_port)
  sy_config "$sl_port" "$(free_port)" '[dns.rate_limit]\nexempt = []\nresponses_per_second = 1000000\nnxdomains_per_second = 1000000\nerrors_per_second = 1000000' > "$work/limits.toml"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" serve --config "$work/limits.toml" 2>"$work/limits.log" &
  pids+=($!); sl_pid=$!
fi
# dnsperf sends the same client cookie in every query to sy+limits.
cookie_args=(-E "10:2464c4abcf10c957")
#  - "sy+dnssec": the "switchyard" configuration with the zone signed (a key
#    made for the run) and DO set in every query (dnsperf -D): signed
#    answers from the warm signature cache; "sy+edns": the same server and
#    queries without DO (dnsperf -e: EDNS, as -D sends), the unsigned
#    answers it is compared with. SIGNED=0 skips both.
SIGNED=${SIGNED:-1}
ss_pid=""
if [ "$SIGNED" = 1 ]; then
  ss_port=$(free_port)
  "$BIN" dnssec keygen --zone tm.example.test. --out "$work/tm.key" >/dev/null
  sy_config "$ss_port" "$(free_port)" "dnssec = { key = { file = \"$work/tm.key\" } }\n[dns.rate_limit]\nenabled = false\n[dns.cookies]\nenabled = false" > "$work/signed.toml"
  RUST_LOG=warn taskset -c "$SERVER_CPU" "$BIN" serve --config "$work/signed.toml" 2>"$work/signed.log" &
  pids+=($!); ss_pid=$!
fi
do_args=(-D)
edns_args=(-e)

# gdnsd with the same zone content, static records.
gd_pid=""
if [ -x "$GDNSD" ]; then
  gd_port=$(free_port)
  mkdir -p "$work/gdnsd/zones" "$work/gdnsd/run" "$work/gdnsd/state"
  cat > "$work/gdnsd/config" <<CFG
options => {
  listen => [ 127.0.0.1:$gd_port ]
$([ "$GDNSD_THREADS" = default ] || printf '  udp_threads => %s\n  tcp_threads => %s' "$GDNSD_THREADS" "$GDNSD_THREADS")
  run_dir => $work/gdnsd/run
  state_dir => $work/gdnsd/state
}
CFG
  # The example's names as static records (benches/xdp.sh gives Knot the same).
  cp benches/static-zone.txt "$work/gdnsd/zones/tm.example.test"
  taskset -c "$SERVER_CPU" "$GDNSD" -c "$work/gdnsd" start 2>"$work/gdnsd.log" &
  pids+=($!); gd_pid=$!
fi

wait_ready "$sy_port"
[ -n "$bl_pid" ] && wait_ready "$bl_port"
[ -n "$nt_pid" ] && wait_ready "$nt_port"
[ -n "$sl_pid" ] && wait_ready "$sl_port"
[ -n "$ss_pid" ] && wait_ready "$ss_port"
[ -n "$gd_pid" ] && { wait_ready "$gd_port" || gd_pid=""; }

# One bounded load run; prints "qps completed lost avg_ms cpu_us user_us".
load() { # port pid [extra dnsperf arguments]
  local before user_before port=$1 pid=$2
  shift 2
  before=$(cpu_ticks "$pid"); user_before=$(user_ticks "$pid")
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$DURATION" \
    -c "$CLIENTS" -q "$OUTSTANDING" -T 1 "${ecs_args[@]}" "$@" > "$work/dnsperf.out" 2>&1
  local after user_after
  after=$(cpu_ticks "$pid"); user_after=$(user_ticks "$pid")
  awk -v cpu=$((after - before)) -v user=$((user_after - user_before)) -v hz="$HZ" '
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    /Average Latency \(s\):/ { lat = $4 * 1000 }
    END { printf "%.0f %d %d %.3f %.2f %.2f\n", qps, done, lost, lat, cpu / hz * 1e6 / done, user / hz * 1e6 / done }
  ' "$work/dnsperf.out"
}

# Warm-up, then alternate trials so every server sees the same machine state.
load "$sy_port" "$sy_pid" >/dev/null
[ -n "$bl_pid" ] && load "$bl_port" "$bl_pid" >/dev/null
[ -n "$nt_pid" ] && load "$nt_port" "$nt_pid" >/dev/null
[ -n "$sl_pid" ] && load "$sl_port" "$sl_pid" "${cookie_args[@]}" >/dev/null
[ -n "$ss_pid" ] && load "$ss_port" "$ss_pid" "${do_args[@]}" >/dev/null
[ -n "$gd_pid" ] && load "$gd_port" "$gd_pid" >/dev/null
: > "$work/sy"; : > "$work/bl"; : > "$work/nt"; : > "$work/sl"; : > "$work/ss"; : > "$work/se"; : > "$work/gd"
for t in $(seq "$TRIALS"); do
  load "$sy_port" "$sy_pid" >> "$work/sy"
  [ -n "$bl_pid" ] && load "$bl_port" "$bl_pid" >> "$work/bl"
  [ -n "$nt_pid" ] && load "$nt_port" "$nt_pid" >> "$work/nt"
  [ -n "$sl_pid" ] && load "$sl_port" "$sl_pid" "${cookie_args[@]}" >> "$work/sl"
  [ -n "$ss_pid" ] && load "$ss_port" "$ss_pid" "${do_args[@]}" >> "$work/ss"
  [ -n "$ss_pid" ] && load "$ss_port" "$ss_pid" "${edns_args[@]}" >> "$work/se"
  [ -n "$gd_pid" ] && load "$gd_port" "$gd_pid" >> "$work/gd"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{ print $c }' "$1" | median; }

echo
echo "query: $NAME $QTYPE${ECS:+ with ECS $ECS}; $TRIALS trials x ${DURATION}s; server on CPU $SERVER_CPU, dnsperf on CPU $LOAD_CPU (-c $CLIENTS -q $OUTSTANDING); gdnsd threads: $GDNSD_THREADS"
printf '%-12s %10s %8s %12s %14s %14s\n' server "queries/s" lost "avg lat ms" "CPU us/query" "user us/query"
for s in sy bl nt sl ss se gd; do
  [ -s "$work/$s" ] || continue
  case $s in sy) name=switchyard ;; bl) name=baseline ;; nt) name=sy-notraffic ;; sl) name=sy+limits ;; ss) name=sy+dnssec ;; se) name=sy+edns ;; *) name=gdnsd ;; esac
  printf '%-12s %10s %8s %12s %14s %14s\n' "$name" "$(col "$work/$s" 1)" "$(col "$work/$s" 3)" \
    "$(col "$work/$s" 4)" "$(col "$work/$s" 5)" "$(col "$work/$s" 6)"
done
if [ -s "$work/gd" ]; then
  awk -v a="$(col "$work/sy" 5)" -v b="$(col "$work/gd" 5)" \
    'BEGIN { printf "ratio switchyard/gdnsd CPU per query: %.2f (below 1.00: cheaper than gdnsd)\n", a / b }'
  # The two runs of a trial are close in time (other servers' runs
  # between them): their ratio cancels some of what the machine did.
  paired=$(paste -d' ' <(awk '{ print $5 }' "$work/sy") <(awk '{ print $5 }' "$work/gd") \
    | awk '{ printf "%.4f\n", $1 / $2 }' | median)
  echo "ratio switchyard/gdnsd, median of the trials' pairs: $paired"
fi
if [ -s "$work/bl" ]; then
  awk -v a="$(col "$work/sy" 5)" -v b="$(col "$work/bl" 5)" \
    'BEGIN { printf "ratio switchyard/baseline CPU per query: %.3f (this build against BASELINE)\n", a / b }'
  # Each trial's two runs are back to back: their ratio cancels what the
  # machine did between trials, which the medians above do not.
  paired=$(paste -d' ' <(awk '{ print $5 }' "$work/sy") <(awk '{ print $5 }' "$work/bl") \
    | awk '{ printf "%.4f\n", $1 / $2 }' | median)
  echo "ratio switchyard/baseline, median of the trials' pairs: $paired"
fi
if [ -s "$work/nt" ]; then
  awk -v a="$(col "$work/sy" 5)" -v b="$(col "$work/nt" 5)" \
    'BEGIN { printf "ratio switchyard/sy-notraffic CPU per query: %.3f (the Traffic View on, against off)\n", a / b }'
  paired=$(paste -d' ' <(awk '{ print $5 }' "$work/sy") <(awk '{ print $5 }' "$work/nt") \
    | awk '{ printf "%.4f\n", $1 / $2 }' | median)
  echo "ratio switchyard/sy-notraffic, median of the trials' pairs: $paired"
fi
if [ -s "$work/sl" ]; then
  awk -v a="$(col "$work/sl" 5)" -v b="$(col "$work/sy" 5)" \
    'BEGIN { printf "ratio sy+limits/switchyard CPU per query: %.3f (rate limiting and a cookie on every response)\n", a / b }'
fi
if [ -s "$work/ss" ]; then
  awk -v a="$(col "$work/ss" 5)" -v b="$(col "$work/se" 5)" \
    'BEGIN { printf "ratio sy+dnssec/sy+edns CPU per query: %.3f (signed answers, DO set, warm signature cache, against the same queries without DO)\n", a / b }'
fi
echo "(per-trial rows: qps completed lost avg_ms cpu_us user_us)"
paste -d' ' <(sed 's/^/switchyard /' "$work/sy") /dev/null
[ -s "$work/bl" ] && sed 's/^/baseline /' "$work/bl"
[ -s "$work/nt" ] && sed 's/^/sy-notraffic /' "$work/nt"
[ -s "$work/sl" ] && sed 's/^/sy+limits /' "$work/sl"
[ -s "$work/ss" ] && sed 's/^/sy+dnssec /' "$work/ss"
[ -s "$work/se" ] && sed 's/^/sy+edns /' "$work/se"
[ -s "$work/gd" ] && sed 's/^/gdnsd /' "$work/gd"
exit 0
