//! `faultline analyze`.

#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`faultline analyze` is not built yet")
}
