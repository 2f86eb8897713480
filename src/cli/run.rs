//! `faultline run`.

#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`faultline run` is not built yet")
}
