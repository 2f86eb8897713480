//! Builds the list of built-in nemesis schedules from `nemeses/*.toml`, so adding a schedule
//! is adding a file.

use std::fmt::Write;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("nemeses");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("nemeses/ exists")
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    // `none` first: it is the baseline every list starts from.
    if let Some(i) = names.iter().position(|n| n == "none") {
        let n = names.remove(i);
        names.insert(0, n);
    }
    let mut out = String::from("const BUILTIN: &[(&str, &str)] = &[\n");
    for n in &names {
        let path = dir.join(format!("{n}.toml"));
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    ({n:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_nemeses.rs");
    std::fs::write(dest, out).unwrap();
}
