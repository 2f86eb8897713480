//! `faultline serve`: browse stored runs (newest first, colored by verdict) and their
//! reports and files over HTTP, on loopback unless told otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The store of runs to serve.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on; loopback by default, so nothing is exposed unless asked.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        println!(
            "serving {} at http://{local}/ (Ctrl-C stops)",
            args.store.display()
        );
        tokio::select! {
            r = faultline::report::server::serve(listener, args.store.clone()) => r.context("serving")?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(0)
    })
}
