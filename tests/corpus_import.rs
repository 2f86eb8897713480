//! Every history in the shared corpora imports (format auto-detected) without error.

use std::path::{Path, PathBuf};

use faultline::history::{Format, read_file};

/// `FAULTLINE_CORPORA`, else `../shared/corpora` next to the repository (or its worktree).
fn corpora() -> PathBuf {
    if let Ok(dir) = std::env::var("FAULTLINE_CORPORA") {
        return PathBuf::from(dir);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpora"))
        .find(|p| p.join("EXPECTED.tsv").exists())
        .expect("shared/corpora not found; set FAULTLINE_CORPORA")
}

#[test]
fn every_listed_corpus_file_imports() {
    let root = corpora();
    let listing = std::fs::read_to_string(root.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut n = 0;
    for line in listing
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let path = root.join(line.split('\t').next().unwrap());
        let h = read_file(&path, Format::Auto).unwrap_or_else(|e| panic!("{e}"));
        assert!(!h.events.is_empty(), "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 245);
}
