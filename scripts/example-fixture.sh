#!/usr/bin/env bash
# The tests, benchmarks and fuzz targets read tests/fixtures/example/, a
# copy of the bundled example (switchyard.toml and the profiles in
# profiles/), never the bundled files themselves: those are yours to edit
# (the README's walkthroughs change them), and your edits must not make
# the tests fail.
#
#   scripts/example-fixture.sh           # check the copy is the bundled example (CI, on a clean clone)
#   scripts/example-fixture.sh --update  # copy the bundled example over it (after changing the example on purpose)
set -euo pipefail
cd "$(dirname "$0")/.."

copy=tests/fixtures/example
files=(switchyard.toml)
for f in profiles/*.toml profiles/keys/*; do files+=("$f"); done

if [ "${1:-}" = --update ]; then
  rm -rf "$copy/profiles"
  for f in "${files[@]}"; do
    mkdir -p "$copy/$(dirname "$f")"
    cp -p "$f" "$copy/$f"
  done
  ln -sfn ../../../geoip "$copy/geoip"
  echo "copied the bundled example to $copy"
  exit 0
fi

differ=0
for f in "${files[@]}"; do
  if ! cmp -s "$f" "$copy/$f"; then
    echo "$f differs from $copy/$f" >&2
    differ=1
  fi
done
for f in "$copy"/profiles/*.toml "$copy"/profiles/keys/*; do
  rel=${f#"$copy"/}
  [ -e "$rel" ] || { echo "$f is not in the bundled example" >&2; differ=1; }
done
if [ "$differ" = 1 ]; then
  echo "the bundled example changed: if on purpose, run scripts/example-fixture.sh --update and commit the copy" >&2
  exit 1
fi
echo "tests/fixtures/example is the bundled example"
