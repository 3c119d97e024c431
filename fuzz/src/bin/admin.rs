//! AFL target: `switchyard::fuzzing::admin` (see `fuzz/README.md`).
//! Run with: fuzz/run.sh admin

fn main() {
    afl::fuzz!(|data: &[u8]| {
        switchyard::fuzzing::admin(data);
    });
}
