//! Compiles the XDP program (`src/server/xdp/dns.bpf.c`) with clang's BPF
//! target into `$OUT_DIR/dns.bpf.o`, which the binary embeds.
//!
//! clang is needed only for `[dns.xdp]`: without it (or off Linux) the
//! object is left empty, cargo prints a warning, and a configuration that
//! turns XDP on is refused at start with the reason (or falls back to
//! sockets with `fallback = "sockets"`). `CLANG` names another compiler.

// A build script that cannot write to OUT_DIR has nothing better to do
// than stop the build with the reason.
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/server/xdp/dns.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("dns.bpf.o");
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let little = std::env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() == Ok("little");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    if !(linux && little) {
        std::fs::write(&object, b"").expect("write to OUT_DIR");
        return;
    }
    let built = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpfel", "-Wall", "-Werror", "-c", SOURCE, "-o",
        ])
        .arg(&object)
        .status();
    match built {
        Ok(s) if s.success() => {
            // Rebuilt when the compiler changes (installed or upgraded).
            if let Some(path) = which(&clang) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        Ok(s) => panic!("{clang} failed ({s}) compiling {SOURCE}"),
        Err(e) => {
            std::fs::write(&object, b"").expect("write to OUT_DIR");
            println!(
                "cargo:warning=no XDP program in this build: cannot run {clang} ({e}); \
                 `apt install clang` and rebuild to use [dns.xdp]"
            );
            // Installing clang adds an entry to a directory on PATH, which
            // changes the directory: then this runs again.
            if let Some(path) = std::env::var_os("PATH") {
                for dir in std::env::split_paths(&path).filter(|d| d.is_dir()) {
                    println!("cargo:rerun-if-changed={}", dir.display());
                }
            }
        }
    }
}

/// The first `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
