#!/usr/bin/env bash
# The Debian package, built and installed on this machine (issue 24, item 1).
# Run as root: it installs the package, runs it, upgrades, removes and purges
# it, then puts the machine back as it found it (trap), even on failure.
#
#   tests/install/deb.sh                 # builds the release binary if needed
#   DEB_NO_BUILD=1 tests/install/deb.sh  # packs target/release/switchyard as it is
#
# Checks: lintian reports no errors; `dpkg -i`; files, conffiles, the user,
# the state directory and the admin token (mode 0600, the service's user,
# never printed);
# `switchyard check` of the installed configuration; the installed binary,
# run as the `switchyard` user with CAP_NET_BIND_SERVICE only (systemd is
# not PID 1 here, so the test does what the unit would: the user, the
# capability), serves it on 127.0.0.1:53 and ::1:53
# and `dig` gets the example answer; the admin token works; `systemd-analyze verify` of the installed unit; a reinstall
# keeps the token; an upgrade to a rebuilt package keeps an edited conffile;
# `dpkg -r` removes the program and keeps the configuration; `dpkg -P`
# removes the rest (the system user stays, as in Debian; the trap removes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

say() { echo "deb.sh: $*"; }
fail() {
  echo "deb.sh: FAIL: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || fail "run as root: the test installs and removes a package"

# Tools: lintian, dig, systemd-analyze, dpkg-shlibdeps (cargo deb's
# dependency list), adduser (the package depends on it), python3 (the
# copyright generator), ss.
need=()
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v adduser >/dev/null 2>&1 || [ -x /usr/sbin/adduser ] || need+=(adduser)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
scripts/apt-install.sh deb.sh ${need[@]+"${need[@]}"}

# Never touch a real installation.
if dpkg-query -W -f='${db:Status-Abbrev}' switchyard 2>/dev/null | grep -q '^[ir]'; then
  fail "a switchyard package is installed here; this test installs and purges its own"
fi
for path in /etc/switchyard /var/lib/switchyard; do
  [ ! -e "$path" ] || fail "$path exists; this test would remove it"
done
user_existed=0
getent passwd switchyard >/dev/null && user_existed=1
work=$(mktemp -d)
server_pid=""

cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if dpkg-query -W switchyard >/dev/null 2>&1; then
    dpkg -P switchyard >/dev/null 2>&1 || true
  fi
  if [ "$user_existed" = 0 ] && getent passwd switchyard >/dev/null; then
    userdel switchyard 2>/dev/null || true
  fi
  if [ "$user_existed" = 0 ] && getent group switchyard >/dev/null; then
    groupdel switchyard 2>/dev/null || true
  fi
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then echo "deb.sh: failed (exit $rc); the machine is restored" >&2; fi
}
trap cleanup EXIT

# Polls a command until it succeeds, at most $1 seconds.
wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# --- build ------------------------------------------------------------------
version=$(cargo metadata --locked --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
arch=$(dpkg --print-architecture)
deb="target/debian/switchyard_${version}-1_${arch}.deb"
build_args=()
[ "${DEB_NO_BUILD:-0}" = 1 ] && build_args+=(--no-build)
rm -f "$deb"
start=$SECONDS
deploy/debian/build.sh ${build_args[@]+"${build_args[@]}"}
[ -f "$deb" ] || fail "deploy/debian/build.sh made no $deb"
say "built $deb: $(stat -c %s "$deb") bytes, installed size $(dpkg-deb -f "$deb" Installed-Size) KiB, in $((SECONDS - start)) s"

# --- lintian ----------------------------------------------------------------
lintian --fail-on error "$deb" >"$work/lintian" 2>&1 || {
  cat "$work/lintian" >&2
  fail "lintian reports errors"
}
grep -v '^running with root' "$work/lintian" || true
say "lintian: no errors"

# --- install ----------------------------------------------------------------
dpkg -i "$deb" >"$work/dpkg-i" 2>&1 || {
  cat "$work/dpkg-i" >&2
  fail "dpkg -i"
}
say "dpkg -i: $(dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}' switchyard)"
for f in /usr/bin/switchyard /usr/lib/systemd/system/switchyard.service \
  /usr/share/switchyard/geoip/geo-whois-asn-country.mmdb /usr/share/switchyard/geoip/LICENSE-CC-BY-4.0.txt \
  /usr/share/man/man1/switchyard.1.gz /usr/share/man/man1/switchyard-serve.1.gz \
  /usr/share/bash-completion/completions/switchyard /usr/share/zsh/vendor-completions/_switchyard \
  /usr/share/fish/vendor_completions.d/switchyard.fish /usr/share/doc/switchyard/copyright \
  /usr/share/doc/switchyard/changelog.Debian.gz; do
  [ -f "$f" ] || fail "$f is not installed"
done
/usr/bin/switchyard --version | grep -qx "switchyard $version" || fail "/usr/bin/switchyard --version"
conffiles=$(dpkg-query -W -f='${Conffiles}' switchyard)
for f in /etc/switchyard/switchyard.toml /etc/switchyard/profiles/todoapi.toml; do
  grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
bash -c 'source /usr/share/bash-completion/completions/switchyard && complete -p switchyard' >/dev/null ||
  fail "the bash completion does not load"
zcat /usr/share/man/man1/switchyard.1.gz | grep -q '^\.TH' || fail "switchyard.1 is not a man page"
say "files: binary, unit, GeoIP database and licence, man pages, completions, copyright; conffiles: switchyard.toml, profiles/todoapi.toml"

copyright=/usr/share/doc/switchyard/copyright
head -1 "$copyright" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
  fail "the copyright file is not DEP-5"
for licence in Apache-2.0 CC-BY-4.0 MIT ISC BSD-2-Clause BSD-3-Clause Unicode-3.0; do
  grep -qx "License: $licence" "$copyright" || fail "the copyright file has no $licence paragraph"
done
for crate in tokio hickory-proto ring tikv-jemalloc-sys maxminddb; do
  grep -q "^Files: vendor/$crate-[0-9]" "$copyright" || fail "the copyright file does not name $crate"
done
say "copyright: DEP-5, $(grep -c '^Files: vendor/' "$copyright") paragraphs for linked crates, licences Apache-2.0, CC-BY-4.0, MIT, ISC, BSD, Unicode-3.0, ..."

getent passwd switchyard | awk -F: '$3 < 1000 && $7 ~ /nologin$/ {ok=1} END {exit !ok}' ||
  fail "switchyard is not a system user without a login shell"
[ "$(stat -c '%U:%G %a' /var/lib/switchyard)" = "switchyard:switchyard 750" ] ||
  fail "/var/lib/switchyard is $(stat -c '%U:%G %a' /var/lib/switchyard)"
token=/etc/switchyard/admin.token
[ "$(stat -c '%U:%G %a' "$token")" = "switchyard:switchyard 600" ] || fail "$token is $(stat -c '%U:%G %a' "$token")"
[ "$(wc -c <"$token")" -ge 40 ] || fail "$token is too short"
token_sum=$(sha256sum "$token" | cut -d' ' -f1)
[ -L /etc/systemd/system/multi-user.target.wants/switchyard.service ] || fail "the service is not enabled"
say "user switchyard (system, nologin), /var/lib/switchyard switchyard 0750, $token switchyard 0600, service enabled"

# --- the unit ---------------------------------------------------------------
unit=/usr/lib/systemd/system/switchyard.service
systemd-analyze verify --man=no "$unit" >"$work/verify" 2>&1 || true
if grep -E "^switchyard\.service|$unit" "$work/verify" >&2; then fail "systemd-analyze verify $unit"; fi
# The packaged unit keeps every setting of the example unit but the user
# and the token's credential (the package's token is the user's own file).
while IFS= read -r line; do
  case "$line" in
    DynamicUser=* | LoadCredential=admin-token:*) ;;
    *) grep -qxF "${line//\/usr\/local\/bin\//\/usr\/bin\/}" "$unit" || fail "the packaged unit lacks: $line" ;;
  esac
done < <(grep -E '^[A-Za-z]+=' examples/systemd/switchyard.service)
grep -qx 'User=switchyard' "$unit" || fail "the unit does not run as switchyard"
say "systemd-analyze verify $unit: clean; every setting of examples/systemd/switchyard.service kept (User=switchyard for DynamicUser)"

# --- check and serve, as systemd would --------------------------------------
as_service=(setpriv --reuid=switchyard --regid=switchyard --init-groups
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service
  --bounding-set=-all,+net_bind_service --no-new-privs --)
switchyard check -c /etc/switchyard/switchyard.toml >"$work/check" 2>&1 || {
  cat "$work/check" >&2
  fail "switchyard check -c /etc/switchyard/switchyard.toml"
}
(cd / && "${as_service[@]}" /usr/bin/switchyard check -c /etc/switchyard/switchyard.toml) >"$work/check" 2>&1 || {
  cat "$work/check" >&2
  fail "switchyard check, as the switchyard user"
}
say "switchyard check -c /etc/switchyard/switchyard.toml: passes (as root and as switchyard)"

# The installed configuration listens on loopback ports 53 and 8053: wait
# (bounded) for another program holding one to let go.
ports_free() {
  ! ss -Hlntu | awk '{print $5}' |
    grep -Eq '^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::1\]|\[::ffff:127\.0\.0\.1\]):(53|8053)$'
}
wait_for 120 ports_free || fail "127.0.0.1:53 or :8053 stayed in use for 120 s: $(ss -Hlntup | grep -E ':(53|8053) ')"
(cd / && exec "${as_service[@]}" /usr/bin/switchyard serve -c /etc/switchyard/switchyard.toml --log-format json) \
  >"$work/serve.log" 2>&1 &
server_pid=$!
answer() { [ "$(dig +short +time=1 +tries=1 "$@" todoapi.tm.example.test A)" = "$expect" ]; }
expect=203.0.113.10
wait_for 60 answer @127.0.0.1 || {
  cat "$work/serve.log" >&2
  fail "no answer $expect from 127.0.0.1:53 within 60 s"
}
answer @::1 +tcp || fail "no answer $expect from [::1]:53 over TCP"
[ "$(ps -o user= -p "$server_pid" | tr -d ' ')" = switchyard ] || fail "the server does not run as switchyard"
grep -q '^CapEff:.*0000000000000400$' "/proc/$server_pid/status" || fail "the server holds more than CAP_NET_BIND_SERVICE"
say "the installed binary, as switchyard with CAP_NET_BIND_SERVICE only, serves: dig @127.0.0.1 todoapi.tm.example.test -> $expect (and @::1 over TCP)"

# The server reads the admin token from its file: a runtime
# override is accepted and written to the state directory.
SWITCHYARD_ADMIN_TOKEN=$(cat "$token") switchyard endpoint disable todoapi.tm.example.test primary \
  -c /etc/switchyard/switchyard.toml >"$work/admin" 2>&1 || {
  cat "$work/admin" >&2
  fail "switchyard endpoint disable, with the installed token"
}
expect=198.51.100.20
wait_for 20 answer @127.0.0.1 || fail "the disabled primary still answers"
[ "$(stat -c %U /var/lib/switchyard/switchyard.state 2>/dev/null)" = switchyard ] ||
  fail "no state file written by switchyard in /var/lib/switchyard"
SWITCHYARD_ADMIN_TOKEN=wrong switchyard endpoint enable todoapi.tm.example.test primary \
  -c /etc/switchyard/switchyard.toml >"$work/admin" 2>&1 && fail "a wrong token was accepted"
if grep -qFf "$token" "$work/serve.log" "$work/admin" "$work/check"; then fail "the admin token appears in output"; fi
say "admin token: accepted (primary disabled -> $expect, state in /var/lib/switchyard), a wrong one refused, never in the logs"
kill "$server_pid"
wait_for 20 bash -c "! kill -0 $server_pid" || fail "the server did not stop on SIGTERM within 20 s"
wait "$server_pid" 2>/dev/null || true
server_pid=""

# --- reinstall, upgrade -----------------------------------------------------
dpkg -i "$deb" >/dev/null 2>&1 || fail "reinstalling"
[ "$(sha256sum "$token" | cut -d' ' -f1)" = "$token_sum" ] || fail "the reinstall replaced the admin token"
[ "$(stat -c '%U:%G %a' "$token")" = "switchyard:switchyard 600" ] || fail "the reinstall changed the token's mode"
say "reinstall: the admin token is unchanged"

echo "# edited by tests/install/deb.sh" >>/etc/switchyard/switchyard.toml
edited_sum=$(sha256sum /etc/switchyard/switchyard.toml | cut -d' ' -f1)
upgrade="target/debian/switchyard_${version}-2_${arch}.deb"
rm -f "$upgrade"
deploy/debian/build.sh --no-build --fast --deb-version "${version}-2" >"$work/build2" 2>&1 || {
  cat "$work/build2" >&2
  fail "rebuilding the package as ${version}-2"
}
dpkg -i "$upgrade" >"$work/dpkg-up" 2>&1 || {
  cat "$work/dpkg-up" >&2
  fail "upgrading to ${version}-2"
}
[ "$(dpkg-query -W -f='${Version}' switchyard)" = "${version}-2" ] || fail "not upgraded"
[ "$(sha256sum /etc/switchyard/switchyard.toml | cut -d' ' -f1)" = "$edited_sum" ] || fail "the upgrade lost the edited conffile"
[ "$(sha256sum "$token" | cut -d' ' -f1)" = "$token_sum" ] || fail "the upgrade replaced the admin token"
[ -f /var/lib/switchyard/switchyard.state ] || fail "the upgrade lost the state"
switchyard check -c /etc/switchyard/switchyard.toml >/dev/null || fail "switchyard check after the upgrade"
say "upgrade ${version}-1 -> ${version}-2: the edited switchyard.toml, the token and the state are kept"
rm -f "$upgrade"

# --- remove, purge ----------------------------------------------------------
dpkg -r switchyard >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e /usr/bin/switchyard ] || fail "dpkg -r left /usr/bin/switchyard"
[ ! -e "$unit" ] || fail "dpkg -r left $unit"
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' switchyard)" = "rc " ] || fail "not in the config-files state after dpkg -r"
[ "$(sha256sum /etc/switchyard/switchyard.toml | cut -d' ' -f1)" = "$edited_sum" ] || fail "dpkg -r changed the configuration"
[ -f /etc/switchyard/profiles/todoapi.toml ] && [ -f "$token" ] && [ -d /var/lib/switchyard ] ||
  fail "dpkg -r removed configuration, token or state"
say "dpkg -r: the program is gone; the conffiles, the token and the state stay"

dpkg -P switchyard >/dev/null 2>&1 || fail "dpkg -P"
! dpkg-query -W switchyard >/dev/null 2>&1 || fail "dpkg still knows switchyard after dpkg -P"
for path in /etc/switchyard /var/lib/switchyard /etc/systemd/system/multi-user.target.wants/switchyard.service \
  /etc/systemd/system/switchyard.service; do
  [ ! -e "$path" ] && [ ! -L "$path" ] || fail "dpkg -P left $path"
done
getent passwd switchyard >/dev/null || fail "dpkg -P removed the system user (Debian keeps it)"
say "dpkg -P: configuration, token, state and the service's enablement are gone; the system user stays (removed by this test's cleanup)"
say "ok"
