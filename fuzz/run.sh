#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ on stable Rust (the `afl` crate).
#
#   fuzz/run.sh                 # every target, 10 minutes each
#   SECONDS_EACH=3600 fuzz/run.sh query
#   MERGE=1 fuzz/run.sh         # then add AFL's queue (inputs reaching new paths) to fuzz/corpus
#
# Installs cargo-afl when missing (it builds AFL++ once, a few minutes).
# Each target starts from fuzz/corpus/TARGET and runs for SECONDS_EACH
# seconds; a crash is copied to fuzz/regressions/TARGET/, where the test
# suite replays it (tests/it/fuzz_corpus.rs), and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${SECONDS_EACH:-600}
targets=("$@")
((${#targets[@]})) || targets=(query config admin)

if ! cargo afl --version >/dev/null 2>&1; then
  echo "installing cargo-afl (builds AFL++ once)" >&2
  cargo install cargo-afl --locked
fi
cargo run --quiet --bin seeds
cargo afl build --release --bins

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
failed=0
for t in "${targets[@]}"; do
  out="out/$t"
  rm -rf "$out"; mkdir -p out
  echo "fuzzing $t for ${SECONDS_EACH}s" >&2
  cargo afl fuzz -V "$SECONDS_EACH" -i "corpus/$t" -o "$out" "target/release/$t" >"out-$t.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  if [ -f "$stats" ]; then
    grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg) ' "$stats" | sed "s/^/$t: /"
  else
    echo "$t: AFL did not start; see fuzz/out-$t.log" >&2; failed=1; continue
  fi
  crashes=("$out"/default/crashes/id:*)
  if [ -e "${crashes[0]}" ]; then
    mkdir -p "regressions/$t"
    for c in "${crashes[@]}"; do cp "$c" "regressions/$t/$(sha1sum "$c" | cut -c1-16)"; done
    echo "$t: ${#crashes[@]} crashing input(s) saved in fuzz/regressions/$t" >&2
    failed=1
  fi
  if [ "${MERGE:-0}" = 1 ]; then
    # AFL's queue inputs that reached new coverage (+cov): keep them (named
    # by content, small ones only) so the tests replay what AFL explored.
    for f in "$out"/default/queue/id:*+cov*; do
      [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 65536 ] || continue
      cp -n "$f" "corpus/$t/q-$(sha1sum "$f" | cut -c1-16)"
    done
  fi
done
exit $failed
