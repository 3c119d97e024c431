//! Replays every saved fuzz input through the fuzz targets' bodies (no AFL
//! needed): the seed corpora, and in `fuzz/regressions/` every input that
//! ever crashed a target, so a crash found once stays fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let caught = std::panic::catch_unwind(|| run(&data));
            assert!(caught.is_ok(), "{} fails the {target} target", f.display());
            n += 1;
        }
    }
    assert!(
        n >= 5,
        "only {n} inputs for {target}: is fuzz/corpus/{target} there?"
    );
}

#[test]
fn query_corpus() {
    replay("query", switchyard::fuzzing::query);
}

#[test]
fn config_corpus() {
    replay("config", switchyard::fuzzing::config);
}

#[test]
fn admin_corpus() {
    replay("admin", switchyard::fuzzing::admin);
}
