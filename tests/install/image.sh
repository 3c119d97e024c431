#!/usr/bin/env bash
# The container image (issue 24, item 3), without a daemon: containers
# cannot be started on this machine (the runtime's setrlimit is refused),
# so this builds the image with buildah (chroot isolation, vfs storage, in a
# storage root of its own that it deletes), checks its configuration
# (user, entrypoint, command, ports, volume, labels, healthcheck) with
# `buildah inspect`, then mounts its root filesystem and runs the image's
# binary from it with chroot, as the image's user, in a network namespace
# of its own set up as Docker sets up a container's (loopback up,
# net.ipv4.ip_unprivileged_port_start=0): `check` passes on the shipped
# configuration, `serve` binds port 53 as that user, the HEALTHCHECK
# command says ok, and `dig` gets the example answer over UDP and TCP,
# IPv4 and IPv6. Without that sysctl the server refuses to start, naming
# the address it could not bind.
#
#   tests/install/image.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf 'image: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v file >/dev/null 2>&1 || need+=(file)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
scripts/apt-install.sh image ${need[@]+"${need[@]}"}
[ "$(id -u)" -eq 0 ] || fail "run as root (buildah's vfs storage, chroot, network namespaces)"

TARGETS=x86_64-unknown-linux-musl scripts/release.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
image=localhost/switchyard-install-test:$version

work=$(mktemp -d)
# buildah keeps a blob cache in /var/lib/containers whatever --root says:
# removed afterwards when this test made it.
made_cache_dir=""
[ -e /var/lib/containers ] || made_cache_dir=1
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then
    bah umount "$ctr" >/dev/null 2>&1 || true
    bah rm "$ctr" >/dev/null 2>&1 || true
  fi
  bah rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
  [ -z "$made_cache_dir" ] || rm -rf /var/lib/containers
}
trap cleanup EXIT

say "building $image (buildah bud --isolation chroot --storage-driver vfs --format docker)"
start=$SECONDS
bah bud --isolation chroot --format docker --build-arg "VERSION=$version" \
  --layers=false -t "$image" -f Containerfile . >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "buildah bud failed"; }
say "built in $((SECONDS - start)) s"
grep -i 'warn' "$work/build.log" >&2 || true

bah inspect --type image "$image" >"$work/inspect.json"
# The Docker view (it has the healthcheck) and the OCI view must agree.
for view in Docker.config OCIv1.config; do
  q() { jq -c ".$view$1" "$work/inspect.json"; }
  [ "$(q .User)" = '"65532:65532"' ] || fail "$view user: $(q .User)"
  [ "$(q .Entrypoint)" = '["/usr/bin/switchyard"]' ] || fail "$view entrypoint: $(q .Entrypoint)"
  [ "$(q .Cmd)" = '["serve"]' ] || fail "$view cmd: $(q .Cmd)"
  [ "$(q '.ExposedPorts | keys | sort')" = '["53/tcp","53/udp","7946/udp","8053/tcp"]' ] ||
    fail "$view ports: $(q .ExposedPorts)"
  [ "$(q '.Volumes | keys')" = '["/var/lib/switchyard"]' ] || fail "$view volumes: $(q .Volumes)"
  q .Env | grep -qF '"SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml"' || fail "$view env: $(q .Env)"
  label() { jq -r ".$view.Labels[\"org.opencontainers.image.$1\"] // empty" "$work/inspect.json"; }
  [ "$(label source)" = "https://github.com/switchyard-dns/switchyard" ] || fail "$view source label: $(label source)"
  [ "$(label version)" = "$version" ] || fail "$view version label: $(label version)"
  [ "$(label licenses)" = "Apache-2.0 AND CC-BY-4.0" ] || fail "$view licenses label: $(label licenses)"
  [ -n "$(label title)" ] && [ -n "$(label description)" ] || fail "$view title or description label missing"
done
[ "$(jq -c .Docker.config.Healthcheck.Test "$work/inspect.json")" = '["CMD","/usr/bin/switchyard","healthcheck"]' ] ||
  fail "healthcheck: $(jq -c .Docker.config.Healthcheck "$work/inspect.json")"
say "inspect: user 65532:65532, entrypoint /usr/bin/switchyard serve, ports 53/udp 53/tcp 8053/tcp 7946/udp, volume /var/lib/switchyard, OCI labels, healthcheck"
size=$(bah images --format '{{.Size}}' "$image")
say "image size: $size"

ctr=$(bah from --pull-never "$image")
root=$(bah mount "$ctr")
say "root filesystem: $(cd "$root" && find . -type f | sort | tr '\n' ' ')"
info=$(file -b "$root/usr/bin/switchyard")
case $info in *static*linked*) ;; *) fail "the image's binary is not static: $info" ;; esac
cmp -s "$root/usr/bin/switchyard" dist/container/switchyard-amd64 || fail "the image's binary is not the release binary"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle at /etc/ssl/certs/ca-certificates.crt"
for f in usr/share/doc/switchyard/copyright usr/share/doc/switchyard/LICENSE etc/switchyard/geoip/LICENSE-CC-BY-4.0.txt; do
  [ -s "$root/$f" ] || fail "no /$f in the image"
done
grep -q '^switchyard:x:65532:65532:' "$root/etc/passwd" || fail "no user 65532 in /etc/passwd"
[ "$(stat -c %u:%g "$root/var/lib/switchyard")" = "65532:65532" ] ||
  fail "/var/lib/switchyard is $(stat -c %u:%g "$root/var/lib/switchyard"), not the user's"
[ ! -e "$root/bin/sh" ] || fail "the image has a shell"

# Inside a network namespace of its own, as a container runs: the image's
# binary, chrooted into the image's root, as its user, with its environment.
cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
root=$1
chroot=$(command -v chroot)
say() { printf 'image: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
run() { # the image's user and environment
  env -i SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml SWITCHYARD_ADMIN_TOKEN=image-test-token \
    "$chroot" --userspec=65532:65532 "$root" /usr/bin/switchyard "$@"
}
ip link set lo up
pid=""
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi' EXIT

say "as a non-root user, without Docker's sysctl: port 53 is refused, and said so"
sysctl -qw net.ipv4.ip_unprivileged_port_start=1024
if out=$(timeout 60 env -i SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml SWITCHYARD_ADMIN_TOKEN=t \
  "$chroot" --userspec=65532:65532 "$root" /usr/bin/switchyard serve 2>&1); then
  fail "serve started on port 53 without the capability or the sysctl"
fi
grep -q '0\.0\.0\.0:53' <<<"$out" || fail "the bind error does not name the address: $out"
say "  refused: $(grep -m1 '0\.0\.0\.0:53' <<<"$out")"

sysctl -qw net.ipv4.ip_unprivileged_port_start=0
say "check (as 65532, in the image's root)"
run check >&2 || fail "switchyard check failed on the image's configuration"
say "serve (as 65532, 0.0.0.0:53 and [::]:53)"
# Not through run(): $! must be the server (env and chroot exec it).
env -i SWITCHYARD_CONFIG=/etc/switchyard/switchyard.toml SWITCHYARD_ADMIN_TOKEN=image-test-token \
  "$chroot" --userspec=65532:65532 "$root" /usr/bin/switchyard serve 2>"$2" &
pid=$!
deadline=$((SECONDS + 60))
until run healthcheck >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { cat "$2" >&2; fail "serve exited"; }
  ((SECONDS < deadline)) || { cat "$2" >&2; fail "the HEALTHCHECK command did not say ok within 60 s"; }
  sleep 0.2
done
say "HEALTHCHECK command: $(run healthcheck)"
uid=$(stat -c %u "/proc/$pid")
[ "$uid" = 65532 ] || fail "serve runs as uid $uid"
for server in 127.0.0.1 ::1; do
  for transport in +notcp +tcp; do
    answer=$(dig @"$server" -p 53 todoapi.tm.example.test A "$transport" +short +time=2 +tries=3)
    [ "$answer" = 203.0.113.10 ] || { cat "$2" >&2; fail "dig @$server $transport: expected 203.0.113.10, got '$answer'"; }
  done
done
say "dig @127.0.0.1 and @::1, UDP and TCP, port 53: todoapi.tm.example.test A 203.0.113.10"
# Runtime state goes to the volume, written by the user.
run endpoint disable todoapi.tm.example.test secondary --reason image-test >&2 ||
  fail "endpoint disable (with the token) failed"
[ -s "$root/var/lib/switchyard/switchyard.state" ] || fail "no state file in /var/lib/switchyard"
[ "$(stat -c %u "$root/var/lib/switchyard/switchyard.state")" = 65532 ] || fail "the state file is not the user's"
say "state kept in the volume: /var/lib/switchyard/switchyard.state"
EOF
timeout 300 unshare --net bash "$work/inside.sh" "$root" "$work/serve.log" ||
  fail "running the image's binary failed"
say "ok"
