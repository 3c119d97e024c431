#!/usr/bin/env bash
# Installs Debian packages the tests, benchmarks or release scripts need:
#
#   scripts/apt-install.sh WHO PACKAGE...    # nothing to do without packages
#
# As root, or through sudo. Waits (up to 5 minutes) for another apt run to
# let go of the dpkg lock, since install tests can follow one another.
set -euo pipefail
who=$1
shift
(($#)) || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "$who: installing $* (Debian)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
  --no-install-recommends "$@" >/dev/null
