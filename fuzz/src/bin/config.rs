//! AFL target: `switchyard::fuzzing::config` (see `fuzz/README.md`).
//! Run with: fuzz/run.sh config

fn main() {
    afl::fuzz!(|data: &[u8]| {
        switchyard::fuzzing::config(data);
    });
}
