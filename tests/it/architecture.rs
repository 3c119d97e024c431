//! The layering the README describes holds: no top-level module of
//! `src/` imports, directly or through others, a module that imports it
//! back (issue #10). Read from the source, comments stripped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code that ships: a file's text before its unit-test module (which
/// may use anything: loading a configuration to test the answer path).
fn shipped(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod ")
        .map_or(text, |i| &text[..i])
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The identifiers right after each `prefix` in the shipped code of
/// `text`, comments left out.
fn names_after(text: &str, prefix: &str, found: &mut BTreeSet<String>) {
    for line in shipped(text).lines() {
        let mut rest = line.split("//").next().unwrap_or("");
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            found.insert(ident(rest));
        }
    }
}

/// `crate::NAME` references outside comments and unit tests.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    names_after(text, "crate::", &mut found);
    found
}

/// Every edge `a -> b` of `graph` from which `a` is reached again, as
/// `a -> b -> ... -> a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (m, deps) in graph {
        for d in deps {
            let mut seen = BTreeSet::new();
            let mut stack = vec![d.clone()];
            while let Some(x) = stack.pop() {
                if x == *m {
                    found.push(format!("{m} -> {d} -> ... -> {m}"));
                    break;
                }
                if seen.insert(x.clone()) {
                    stack.extend(graph.get(&x).into_iter().flatten().cloned());
                }
            }
        }
    }
    found
}

#[test]
fn no_module_imports_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        // The binary's own modules (main, its commands and their output)
        // sit on top of the library and are not part of its graph.
        if !["lib", "main", "cli", "commands"].contains(&name.as_str()) {
            modules.insert(name);
        }
    }
    for m in &modules {
        let mut files = Vec::new();
        let dir = src.join(m);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{m}.rs")));
        }
        let deps = graph.entry(m.clone()).or_default();
        for f in files {
            for u in uses(&std::fs::read_to_string(f).unwrap()) {
                if modules.contains(&u) && u != *m {
                    deps.insert(u);
                }
            }
        }
    }
    let circles = circles(&graph);
    assert!(
        circles.is_empty(),
        "modules in a circle:\n{}\n{graph:#?}",
        circles.join("\n")
    );
    // The bottom layers stay at the bottom.
    for (low, allowed) in [
        ("clock", &[][..]),
        ("proto", &[][..]),
        ("secret", &[][..]),
        ("sketch", &[][..]),
        ("netblock", &[][..]),
        // Probes speak DNS through proto's wire helpers (the dns probe),
        // never through hickory itself.
        ("health", &["clock", "fsutil", "proto", "secret"][..]),
        // Keys, signing, the signature cache and the signing budget know
        // names, bytes and counts only.
        ("dnssec", &["clock", "fsutil", "proto", "sketch"][..]),
        // The served snapshot is data: it decides nothing, so it never
        // reaches the routing that decides over it.
        (
            "snapshot",
            &["clock", "dnssec", "fsutil", "geo", "health", "proto"][..],
        ),
        // Routing reads the latency table as it reads GeoIP: through
        // `Client`, keyed by client networks (netblock); the table is a
        // leaf (clock, fsutil, netblock) that never reaches back.
        (
            "routing",
            &[
                "clock", "dnssec", "fsutil", "geo", "health", "latency", "netblock", "proto",
                "snapshot",
            ][..],
        ),
        ("latency", &["clock", "fsutil", "netblock"][..]),
    ] {
        let extra: Vec<&String> = graph[low]
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(extra.is_empty(), "{low} reaches up into {extra:?}");
    }
}

/// The release binary ships stripped (issue 20: it was 85 MB of debug
/// information), and a profiling profile keeps symbols and line tables for
/// perf and callgrind; the benchmark that records perf profiles uses it.
#[test]
fn release_is_stripped_and_profiling_keeps_symbols() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let profile = |name: &str| cargo["profile"][name].as_table().unwrap().clone();
    let release = profile("release");
    assert_eq!(release.get("strip"), Some(&toml::Value::Boolean(true)));
    assert_eq!(release.get("debug"), Some(&toml::Value::Boolean(false)));
    let profiling = profile("profiling");
    assert_eq!(profiling["inherits"].as_str(), Some("release"));
    assert_eq!(profiling["strip"], toml::Value::Boolean(false));
    assert_eq!(profiling["debug"].as_str(), Some("line-tables-only"));
    let prober = std::fs::read_to_string(root.join("benches/prober.sh")).unwrap();
    assert!(
        prober.contains("PROFILE=profiling") && prober.contains("perf record"),
        "benches/prober.sh records perf profiles of a build with symbols"
    );
}

/// Each crate's features as `cargo tree` resolves them, with or without the
/// dev-dependencies' edges: `name version` to the set of features.
fn resolved_features(edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--locked", "--prefix", "none"])
        .args(["-e", edges, "-f", "{p}|{f}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        // A crate printed before is marked " (*)" after its features.
        let line = line.trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // "syn v2.0.1 (proc-macro)" and "syn v2.0.1" are one crate; a
        // path dependency names its folder.
        let package = package.split(" (").next().unwrap_or(package).to_string();
        let set = found.entry(package).or_default();
        set.extend(
            features
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from),
        );
    }
    found
}

/// The examples, tests and benches build on the binary's own compiled
/// dependencies (issue 24): a dev-dependency that turns on one more feature
/// of a crate the binary uses would rebuild that crate and everything above
/// it, so `cargo run --release --example health_backend` after
/// `cargo build --release` was a second full build (7 minutes on 2 cores).
/// The fix is a feature pin in Cargo.toml; this names the crate to pin.
#[test]
fn dev_builds_reuse_the_binarys_dependencies() {
    let binary = resolved_features("normal,build");
    let dev = resolved_features("normal,build,dev");
    let differ: Vec<String> = binary
        .iter()
        .filter_map(|(package, features)| {
            let more: Vec<&String> = dev.get(package)?.difference(features).collect();
            (!more.is_empty()).then(|| format!("{package}: {more:?}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "dev-dependencies turn on features the binary does not use; pin them in \
         Cargo.toml (see the comment above [build-dependencies]): {differ:#?}"
    );
}

/// `super::NAME` and `crate::PATH::NAME` references outside comments, in
/// a file directly inside the folder of module `path` (`dns`,
/// `dns::answer`): the sibling files and folders it uses.
fn sibling_uses(text: &str, path: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    names_after(text, "super::", &mut found);
    names_after(text, &format!("crate::{path}::"), &mut found);
    // `use super::{a, b::C}`: each name in the braces.
    for line in shipped(text).lines() {
        let code = line.split("//").next().unwrap_or("");
        if let Some(i) = code.find("super::{") {
            for part in code[i + 8..].split([',', '}']) {
                found.insert(ident(part.trim()));
            }
        }
    }
    found
}

/// What the files of subfolder `dir` (module `path`::NAME) use of their
/// parent folder's files and folders: `super::super::NAME` from its own
/// files, `crate::PATH::NAME` from any of them.
fn subfolder_uses(dir: &Path, path: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        names_after(&text, &format!("crate::{path}::"), &mut found);
        if f.parent() == Some(dir) {
            names_after(&text, "super::super::", &mut found);
        }
    }
    found
}

/// The circles among the files and subfolders of the folder of module
/// `path`, and in every folder below it.
fn folder_circles(dir: &Path, path: &str, found: &mut Vec<String>) {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let names: BTreeSet<String> = entries
        .iter()
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    for p in &entries {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if !names.contains(&name) {
            continue;
        }
        let uses = if p.is_dir() {
            let uses = subfolder_uses(p, path);
            folder_circles(p, &format!("{path}::{name}"), found);
            uses
        } else {
            sibling_uses(&std::fs::read_to_string(p).unwrap(), path)
        };
        let deps = uses
            .into_iter()
            .filter(|d| *d != name && names.contains(d))
            .collect();
        graph.insert(name, deps);
    }
    found.extend(circles(&graph).into_iter().map(|c| format!("{path}: {c}")));
}

/// Inside each folder of `src/`, at every depth, no file or subfolder
/// imports, directly or through others, a sibling that imports it back
/// (`mod.rs` is the folder's face and may use every file; the files and
/// folders below it do not use each other in a circle). Issue 21:
/// `dns/answer.rs` and `dns/sign.rs` did.
#[test]
fn no_file_imports_a_sibling_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let dir = e.unwrap().path();
        if dir.is_dir() {
            let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
            folder_circles(&dir, &folder, &mut found);
        }
    }
    assert!(found.is_empty(), "files in a circle:\n{}", found.join("\n"));
}

/// hickory-proto (the wire format and DNSSEC primitives) is named only
/// where the wire is: `proto`, `dns`, `dnssec`, and the fuzzing harness
/// that checks our parser against it. Everything else asks `proto`.
#[test]
fn only_the_wire_modules_name_hickory() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = ["proto", "dns", "dnssec"];
    let mut named = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        if allowed.contains(&top.as_ref()) || top == "fuzzing.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        if text
            .lines()
            .any(|l| l.split("//").next().unwrap_or("").contains("hickory_proto"))
        {
            named.push(rel.display().to_string());
        }
    }
    assert!(named.is_empty(), "hickory-proto named in {named:?}");
}

/// Routing's method files import only downward: each `super::` path names
/// a sibling file below them (`table`, `client`, `picks`), never an item of
/// `routing/mod.rs`, which calls them (issue 21).
#[test]
fn routing_methods_import_only_downward() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routing");
    let below = ["table", "client", "picks", "key"];
    let mut wrong = Vec::new();
    for method in [
        "priority",
        "weighted",
        "multivalue",
        "performance",
        "geographic",
        "subnet",
        "sticky",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{method}.rs"))).unwrap();
        for name in sibling_uses(&text, "routing") {
            if !name.is_empty() && !below.contains(&name.as_str()) {
                wrong.push(format!("{method}.rs uses super::{name}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// The answer path (the UDP and TCP workers, and what they call in `dns`)
/// holds only what it serves with ([`switchyard::state::Serving`]: the
/// snapshot, GeoIP, rate limiting, counters, the re-sync gate), never the
/// control plane's state: a handle on the whole would let a hot loop reach
/// a lock.
#[test]
fn the_answer_path_holds_only_what_it_serves_with() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["server", "dns"] {
        rust_files(&root.join(dir), &mut files);
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut found = BTreeSet::new();
        names_after(&text, "state::", &mut found);
        names_after(&text, "crate::state::{", &mut found);
        let wrong: Vec<_> = found.iter().filter(|n| *n != "Serving").collect();
        assert!(
            wrong.is_empty(),
            "{} reaches the control plane's state: {wrong:?}",
            f.display()
        );
    }
}

/// Issue 21: no hand-written file in `src/` over 800 lines (tests beside
/// the code included) and no function over 150, so a file is one subject
/// and a function reads as its stages. `geo/tables.rs` is generated data.
/// Functions are found as rustfmt lays them out: a `fn` line, and the
/// closing brace at its indentation.
#[test]
fn files_and_functions_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for f in files {
        if f.ends_with("geo/tables.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let name = f.strip_prefix(&src).unwrap().display().to_string();
        if lines.len() > 800 {
            long.push(format!("{name}: {} lines", lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
                "pub async fn ",
                "const fn ",
                "pub const fn ",
                "unsafe fn ",
            ]
            .iter()
            .any(|p| code.starts_with(p));
            if !is_fn || code.ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close)
                && len + 2 > 150
            {
                long.push(format!("{name}:{}: a function of {} lines", i + 1, len + 2));
            }
        }
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
}

/// `unsafe` is denied crate-wide and allowed in one module: the XDP
/// path's memory shared with the kernel and its ioctls. Anything else
/// that needs it belongs there, or in a crate.
#[test]
fn unsafe_code_stays_in_one_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = src.join("server/xdp/kernel.rs");
    let mut found = Vec::new();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        if f == allowed {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("unsafe ") || code.contains("unsafe_code") {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside src/server/xdp/kernel.rs:\n{}",
        found.join("\n")
    );
}
