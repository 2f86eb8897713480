//! L7: HTTP/1.1 between peers. A request whose JSON body carries the batch field is a batch
//! of one-way messages: acknowledged at once (204), then each message meets its own fate and
//! is delivered through the link's queue (due time, then arrival order; messages due
//! together go out as one batch). Any other request is relayed as request and response, with
//! its fate (by path and JSON `type`) applied to the request.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::rules::{self, Link, MsgInfo};
use super::{Held, PeerProxy};

/// A request body larger than this is refused (413), like a node would.
const MAX_BODY: usize = 64 << 20;
/// Messages waiting on one link; beyond this, new ones are dropped (and traced so).
const MAX_QUEUED: usize = 100_000;
/// Most messages delivered in one batch.
const MAX_BATCH: usize = 256;
/// A delivery's connect and request limits: a partitioned peer never answers, and a delivery
/// that waits on it would hold up the link. The connect limit is above TCP's first SYN
/// retransmit (1 s), so packet loss alone does not turn into lost batches.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1200);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Tries per batch: one retry on a fresh connection covers a lost segment or a connection the
/// peer closed while idle; more would let one unreachable peer hold the link for long.
const DELIVERY_TRIES: usize = 2;
/// Bodies at least this big (snapshots) get `LARGE_TIMEOUT`.
const LARGE_BODY: usize = 1 << 20;
const LARGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A relayed request (a forwarded client request) waits this long for its answer.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

/// One message of a batch, on its way.
pub(super) struct Item {
    pub envelope: Arc<Map<String, Value>>,
    pub path: Arc<str>,
    pub msg: Value,
    pub kind: Option<String>,
    pub bytes: usize,
    pub due: Instant,
    seq: u64,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // Reversed: BinaryHeap is a max-heap and the earliest due (then first queued) goes first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// A directed link's delivery queue and the task draining it.
pub(super) struct LinkQueue {
    tx: mpsc::Sender<Item>,
    seq: u64,
    pub task: tokio::task::JoinHandle<()>,
}

impl LinkQueue {
    pub fn spawn(p: PeerProxy, link: Link) -> LinkQueue {
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        let task = tokio::spawn(deliver_loop(p, link, rx));
        LinkQueue { tx, seq: 0, task }
    }

    pub fn push(&mut self, mut item: Item) {
        self.seq += 1;
        item.seq = self.seq;
        // Full: the message is lost, as on a congested network.
        let _ = self.tx.try_send(item);
    }
}

async fn deliver_loop(p: PeerProxy, link: Link, mut rx: mpsc::Receiver<Item>) {
    let mut heap: BinaryHeap<Item> = BinaryHeap::new();
    let mut conn: Option<SendRequest<Body>> = None;
    loop {
        let next = heap.peek().map(|i| i.due);
        let sleep = tokio::time::sleep_until(
            next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
                .into(),
        );
        tokio::select! {
            m = rx.recv() => match m {
                Some(it) => heap.push(it),
                None => return,
            },
            _ = sleep, if next.is_some() => {}
        }
        while let Ok(it) = rx.try_recv() {
            heap.push(it);
        }
        let now = Instant::now();
        let mut batch = Vec::new();
        while batch.len() < MAX_BATCH && heap.peek().is_some_and(|i| i.due <= now) {
            batch.push(heap.pop().expect("peeked"));
        }
        if batch.is_empty() {
            continue;
        }
        let first = &batch[0];
        let mut env = (*first.envelope).clone();
        let path = first.path.clone();
        let bytes: usize = batch.iter().map(|i| i.bytes).sum();
        let field = p.shared.cfg.batch_field.clone().unwrap_or_default();
        let kinds: Vec<(Option<String>, usize)> =
            batch.iter().map(|i| (i.kind.clone(), i.bytes)).collect();
        env.insert(
            field,
            Value::Array(batch.into_iter().map(|i| i.msg).collect()),
        );
        let body = Bytes::from(serde_json::to_vec(&env).expect("json serialises"));
        let limit = if body.len() >= LARGE_BODY {
            LARGE_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        let mut ok = false;
        for _ in 0..DELIVERY_TRIES {
            // A connect that times out means the peer is cut off: no retry, so a partition
            // costs the link one connect limit per batch, not more.
            if conn.as_ref().is_none_or(|c| c.is_closed()) {
                match open(&p, &link).await {
                    Ok(c) => conn = Some(c),
                    Err(_) => break,
                }
            }
            let req = Request::post(&*path)
                .header("content-type", "application/json")
                .header("host", "peer")
                .body(Full::new(body.clone()))
                .expect("request builds");
            ok = matches!(
                tokio::time::timeout(limit, send_and_read(&p, &link, &mut conn, req)).await,
                Ok(Ok(st)) if st.is_success()
            );
            if ok {
                break;
            }
            conn = None;
        }
        if !ok {
            // A failed delivery is lost messages, as on the wire (Raft-like peers
            // retransmit), and so is everything else already due: a peer that cannot be
            // reached must not leave a backlog of stale messages for when it can.
            conn = None;
            for (k, b) in &kinds {
                p.trace(&link, k.as_deref(), *b, "lost", None);
            }
            let now = Instant::now();
            while heap.peek().is_some_and(|i| i.due <= now) {
                let i = heap.pop().expect("peeked");
                p.trace(&link, i.kind.as_deref(), i.bytes, "lost", None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        throttle(&p, &link, bytes).await;
    }
}

/// Sends and reads the answer to its end (so the connection can carry the next request).
async fn send_and_read(
    p: &PeerProxy,
    link: &Link,
    conn: &mut Option<SendRequest<Body>>,
    req: Request<Body>,
) -> Result<StatusCode, String> {
    let r = send(p, link, conn, req).await?;
    let status = r.status();
    r.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(status)
}

/// Sleeps as long as `bytes` take on the link's bandwidth limit, if one is in force.
pub(super) async fn throttle(p: &PeerProxy, link: &Link, bytes: usize) {
    let bps = rules::bandwidth(&super::lock(&p.shared.rules), &link.0, &link.1);
    if let Some(bps) = bps {
        let d = Duration::from_secs_f64(bytes as f64 / bps.max(1) as f64);
        tokio::time::sleep(d).await;
    }
}

/// Sends on the link's kept connection, opening one if needed.
async fn send(
    p: &PeerProxy,
    link: &Link,
    conn: &mut Option<SendRequest<Body>>,
    req: Request<Body>,
) -> Result<Response<Incoming>, String> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(open(p, link).await?);
    }
    let c = conn.as_mut().expect("opened");
    c.ready().await.map_err(|e| e.to_string())?;
    c.send_request(req).await.map_err(|e| e.to_string())
}

async fn open(p: &PeerProxy, link: &Link) -> Result<SendRequest<Body>, String> {
    let s = p
        .connect(&link.0, &link.1, CONNECT_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(tx)
}

/// Serves one inbound peer connection (from `from`, for `to`).
pub(super) async fn serve(p: PeerProxy, from: String, to: String, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let link: Link = (from, to);
    // Requests on one inbound connection come one at a time; they reuse one outbound one.
    let out = Arc::new(tokio::sync::Mutex::new(None::<SendRequest<Body>>));
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (p, link, out) = (p.clone(), link.clone(), out.clone());
        async move { handle(p, link, out, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn handle(
    p: PeerProxy,
    link: Link,
    out: Arc<tokio::sync::Mutex<Option<SendRequest<Body>>>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "")),
    };
    let path = parts.uri.path().to_string();
    let mut json: Option<Value> = serde_json::from_slice(&body).ok();
    // A batch is taken apart in place: the body can be large (entries, snapshots), and this
    // runs for every peer message of the run.
    if let Some(field) = &p.shared.cfg.batch_field
        && let Some(Value::Object(env)) = json.as_mut()
        && matches!(env.get(field), Some(Value::Array(_)))
    {
        let Some(Value::Array(msgs)) = env.remove(field) else {
            unreachable!("matched above")
        };
        batch(&p, &link, std::mem::take(env), &path, msgs, body.len());
        return Ok(plain(StatusCode::NO_CONTENT, ""));
    }
    let kind = json
        .as_ref()
        .and_then(|v| v.get("type"))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let info = MsgInfo {
        from: &link.0,
        to: &link.1,
        kind: kind.as_deref(),
        path: Some(&path),
    };
    let (fate, _) = p.decide(&info);
    let ms = |d: Duration| Some(d.as_secs_f64() * 1000.0);
    let label = kind.as_deref().or(Some(path.as_str()));
    p.trace(&link, label, body.len(), fate.word(), ms(fate.delay));
    if fate.drop {
        // The request never arrives: the sender's connection ends without an answer.
        return Err(std::io::Error::other("dropped by the peer proxy"));
    }
    if let Some(rule) = fate.hold {
        let (tx, rx) = tokio::sync::oneshot::channel();
        p.hold(rule, Held::Request(tx));
        let _ = rx.await;
    }
    if !fate.delay.is_zero() {
        tokio::time::sleep(fate.delay).await;
    }
    throttle(&p, &link, body.len()).await;
    let build = || {
        let mut b = Request::builder().method(parts.method.clone()).uri(
            parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string(),
        );
        for (k, v) in &parts.headers {
            if k != "transfer-encoding" && k != "content-length" {
                b = b.header(k, v);
            }
        }
        b.header("content-length", body.len())
            .body(Full::new(body.clone()))
            .expect("request builds")
    };
    if let Some(after) = fate.dup {
        let (p2, link2, req2) = (p.clone(), link.clone(), build());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut c = None;
            let copy = send_and_read(&p2, &link2, &mut c, req2);
            let _ = tokio::time::timeout(RELAY_TIMEOUT, copy).await;
        });
    }
    let relayed = async {
        let mut c = out.lock().await;
        let r = send(&p, &link, &mut c, build()).await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                *c = None;
                return Err(e);
            }
        };
        let (rp, rb) = r.into_parts();
        match rb.collect().await {
            Ok(b) => Ok((rp, b.to_bytes())),
            Err(e) => {
                *c = None;
                Err(e.to_string())
            }
        }
    };
    let (rp, rb) = match tokio::time::timeout(RELAY_TIMEOUT, relayed).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(std::io::Error::other(e)),
        Err(_) => {
            *out.lock().await = None;
            return Err(std::io::Error::other("no answer from the peer in time"));
        }
    };
    let mut r = Response::new(Full::new(rb));
    *r.status_mut() = rp.status;
    for (k, v) in &rp.headers {
        if k != "transfer-encoding" {
            r.headers_mut().append(k, v.clone());
        }
    }
    Ok(r)
}

/// Gives each message of a batch its fate and queues (or holds) it.
/// A message's size is exact when the run traces messages; otherwise (only bandwidth limits
/// use it) its share of the body, which saves serialising every message once more.
fn batch(
    p: &PeerProxy,
    link: &Link,
    env: Map<String, Value>,
    path: &str,
    msgs: Vec<Value>,
    body_len: usize,
) {
    let env = Arc::new(env);
    let path: Arc<str> = Arc::from(path);
    let now = Instant::now();
    let share = body_len / msgs.len().max(1);
    let exact = p.shared.cfg.trace.is_some();
    for msg in msgs {
        let kind = msg.get("type").and_then(|t| t.as_str()).map(str::to_string);
        let bytes = if exact {
            serde_json::to_vec(&msg).map_or(0, |v| v.len())
        } else {
            share
        };
        let info = MsgInfo {
            from: &link.0,
            to: &link.1,
            kind: kind.as_deref(),
            path: Some(path.as_ref()),
        };
        let (fate, _) = p.decide(&info);
        let ms = |d: Duration| Some(d.as_secs_f64() * 1000.0);
        p.trace(link, kind.as_deref(), bytes, fate.word(), ms(fate.delay));
        if fate.drop {
            continue;
        }
        let item = |due: Instant, msg: Value| Item {
            envelope: env.clone(),
            path: path.clone(),
            msg,
            kind: kind.clone(),
            bytes,
            due,
            seq: 0,
        };
        if let Some(dup) = fate.dup {
            p.enqueue(link.clone(), item(now + fate.delay + dup, msg.clone()));
        }
        match fate.hold {
            Some(rule) => p.hold(
                rule,
                Held::Message {
                    link: link.clone(),
                    item: item(now, msg),
                },
            ),
            None => p.enqueue(link.clone(), item(now + fate.delay, msg)),
        }
    }
}
