//! The pbkv example (examples/pbkv.rs) as a system under test: its binary, built by
//! `cargo test`, and systems/pbkv.toml rewritten to point at it.

use std::path::{Path, PathBuf};

/// `target/<profile>/examples/pbkv`, next to this test's `deps/` directory.
pub fn pbkv_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("pbkv");
    assert!(
        p.is_file(),
        "{} missing: cargo test builds examples",
        p.display()
    );
    p
}

/// systems/pbkv.toml's text with an absolute binary and `extra` args.
pub fn descriptor_text(binary: &Path, extra: &[&str]) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systems/pbkv.toml"))
        .unwrap()
        .replace(
            "binary = \"pbkv\"",
            &format!("binary = {:?}", binary.display().to_string()),
        )
        .replace(
            "\"{peers}\"]",
            &format!(
                "\"{{peers}}\"{}]",
                extra.iter().map(|a| format!(", {a:?}")).collect::<String>()
            ),
        )
}

/// systems/pbkv.toml with an absolute binary and `extra` args, written into `dir`.
pub fn descriptor(dir: &Path, binary: &Path, extra: &[&str]) -> PathBuf {
    let p = dir.join("pbkv.toml");
    std::fs::write(&p, descriptor_text(binary, extra)).unwrap();
    p
}
