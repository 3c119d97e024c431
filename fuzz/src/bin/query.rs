//! AFL target: `switchyard::fuzzing::query` (see `fuzz/README.md`).
//! Run with: fuzz/run.sh query

fn main() {
    afl::fuzz!(|data: &[u8]| {
        switchyard::fuzzing::query(data);
    });
}
