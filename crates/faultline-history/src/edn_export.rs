//! Export to Jepsen EDN (a vector of op maps, one a line) so Jepsen and Knossos users can
//! cross-check a faultline history with their own tools.

use std::io::{self, Write};

use super::edn::{self, Edn};
use super::event::{Event, Process};

/// One event as a Jepsen op map.
pub fn event_to_edn(e: &Event) -> Edn {
    let mut m = vec![
        (kw("index"), Edn::Int(e.index as i64)),
        (kw("time"), Edn::Int(e.time as i64)),
        (
            kw("process"),
            match &e.process {
                Process::Client(p) => Edn::Int(*p as i64),
                Process::Named(n) => Edn::Keyword(n.clone()),
            },
        ),
        (kw("type"), Edn::Keyword(e.kind.as_str().to_string())),
        (kw("f"), Edn::Keyword(e.f.clone())),
    ];
    if let Some(k) = &e.key {
        m.push((kw("key"), Edn::Str(k.clone())));
    }
    let mut value = edn::from_json(&e.value);
    // Jepsen writes transaction micro-op names as keywords: [:append k v].
    if e.f == "txn"
        && let Edn::Vector(ops) = &mut value
    {
        for op in ops {
            if let Edn::Vector(parts) = op
                && let Some(Edn::Str(name)) = parts.first()
            {
                parts[0] = Edn::Keyword(name.clone());
            }
        }
    }
    m.push((kw("value"), value));
    if let Some(n) = &e.node {
        m.push((kw("node"), Edn::Str(n.clone())));
    }
    if let Some(err) = &e.error {
        m.push((kw("error"), Edn::Str(err.clone())));
    }
    Edn::Map(m)
}

/// Writes `events` as one EDN vector, one op map a line.
pub fn write(events: &[Event], out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.write_all(b"\n ")?;
        }
        write!(out, "{}", event_to_edn(e))?;
    }
    out.write_all(b"]\n")
}

fn kw(s: &str) -> Edn {
    Edn::Keyword(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Format, read_str};
    use std::path::Path;

    #[test]
    fn export_reads_back_as_the_same_history() {
        let jsonl = r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"cas","key":"k1","value":[1,2]}
{"index":1,"time":6,"process":"nemesis","type":"info","f":"start-partition","value":{"targets":["n1"]}}
{"index":2,"time":9,"process":3,"type":"ok","f":"cas","key":"k1","value":[1,2],"node":"n2"}
{"index":3,"time":10,"process":4,"type":"invoke","f":"txn","value":[["append","x",1],["r","x",null]]}
{"index":4,"time":12,"process":4,"type":"fail","f":"txn","value":[["append","x",1],["r","x",null]],"error":"aborted"}
"#;
        let h = read_str(jsonl, Path::new("h.jsonl"), Format::Jsonl).unwrap();
        let mut out = Vec::new();
        write(&h.events, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("[:append \"x\" 1]"), "{text}");
        let back = read_str(&text, Path::new("h.edn"), Format::Auto).unwrap();
        assert_eq!(back.events, h.events);
    }
}
