//! Every history in the shared corpora imports (format auto-detected) without error.

mod common;

use common::corpora;

use faultline::history::{Format, read_file};

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
