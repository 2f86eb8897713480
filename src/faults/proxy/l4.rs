//! L4: opaque TCP, forwarded chunk by chunk. A chunk's delay keeps the stream's order (a
//! chunk never overtakes the one before); a drop cannot leave a gap in a byte stream, so it
//! resets the connection (a blackhole while the rule holds, since new connections meet the
//! same fate).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::PeerProxy;
use super::l7::throttle;
use super::rules::{Link, MsgInfo};

const CHUNK: usize = 64 * 1024;
/// How long a forwarding connect may take (etcd's own peer dial timeout is 1 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Chunks in flight per direction (delayed ones wait here).
const IN_FLIGHT: usize = 1024;

pub(super) async fn serve(p: PeerProxy, from: String, to: String, inbound: TcpStream) {
    let _ = inbound.set_nodelay(true);
    let Ok(outbound) = p.connect(&from, &to, CONNECT_TIMEOUT).await else {
        super::reset(inbound);
        return;
    };
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let fwd = pump(p.clone(), (from.clone(), to.clone()), ir, ow);
    let back = pump(p, (to, from), or, iw);
    // Either direction ending (EOF, error, a drop) ends both: the halves drop and close.
    tokio::select! {
        _ = fwd => {}
        _ = back => {}
    }
}

/// Copies one direction; returns when it ends or a chunk is dropped.
async fn pump(p: PeerProxy, link: Link, mut r: OwnedReadHalf, w: OwnedWriteHalf) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let writer = tokio::spawn(write_loop(p.clone(), link.clone(), rx, w));
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let info = MsgInfo {
            from: &link.0,
            to: &link.1,
            kind: None,
            path: None,
        };
        let (fate, _) = p.decide(&info);
        p.trace(
            &link,
            None,
            n,
            if fate.drop { "reset" } else { fate.word() },
            Some(fate.delay.as_secs_f64() * 1000.0),
        );
        if fate.drop {
            writer.abort();
            return;
        }
        last_due = last_due.max(Instant::now() + fate.delay);
        if tx.send((last_due, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_loop(
    p: PeerProxy,
    link: Link,
    mut rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    mut w: OwnedWriteHalf,
) {
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due.into()).await;
        if w.write_all(&chunk).await.is_err() {
            return;
        }
        throttle(&p, &link, chunk.len()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
}
