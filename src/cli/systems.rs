//! `faultline systems new NAME`: write `NAME.toml`, a descriptor skeleton with every key
//! explained, for a system faultline has never seen. Never overwrites a file.

use std::io::Write;
use std::path::PathBuf;

use faultline::cluster::descriptor;

use super::BadInput;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write NAME.toml: a descriptor skeleton with every key commented (refuses to overwrite).
    New {
        /// The system's name (letters, digits, `-`, `_`); the file is NAME.toml.
        name: String,
        /// Where to write it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    match args.command {
        Command::New { name, dir } => new(&name, &dir),
    }
}

fn new(name: &str, dir: &std::path::Path) -> anyhow::Result<u8> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(BadInput(format!(
            "system name {name:?}: use letters, digits, `-` and `_` only (the file is NAME.toml)"
        ))
        .into());
    }
    let path = dir.join(format!("{name}.toml"));
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BadInput(format!(
                "{} exists; not overwriting it (remove it or pick another name)",
                path.display()
            ))
            .into());
        }
        Err(e) => return Err(BadInput(format!("{}: {e}", path.display())).into()),
    };
    file.write_all(descriptor::skeleton(name).as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    println!(
        "wrote {}: set `binary` and `args`, then `faultline run --system {} --time-limit 10`",
        path.display(),
        path.display()
    );
    Ok(0)
}
