//! `faultline cleanup`.

#[derive(clap::Args)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`faultline cleanup` is not built yet")
}
