//! Named failpoints (`POST /admin/failpoint {"name","action","arg"}`), so a scenario can
//! reach states a random schedule never does. The node loop passes these points:
//!
//! | name | where |
//! |---|---|
//! | `propose` | a client command arrives at the node loop |
//! | `sync` | before the WAL is synced for a batch |
//! | `apply` | before committed entries are applied |
//! | `send:TYPE` | before a peer message whose JSON `"type"` is TYPE is queued |
//! | `recv:TYPE` | before a received peer message whose JSON `"type"` is TYPE is stepped |
//!
//! Actions: `crash` (exit at once, as kill -9 would leave it), `pause` (stop the node loop
//! for `arg` ms), `delay-ms` (the same, then go on: for one message or batch), `drop-next`
//! (drop the next `arg` (default 1) events at the point: messages, proposals), `hold` (at a
//! `send:` point: deliver every message that passes `arg` ms late, while the node goes on, as
//! a slow link would; until `off`), `off` (disarm the point now). An action fires once, then
//! the failpoint is disarmed, except `drop-next`, which counts down, and `hold`.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Crash,
    Pause(u64),
    Delay(u64),
    DropNext(u64),
    /// Delays each message by this many ms without stopping the node loop.
    Hold(u64),
    /// Disarms the point (never stored).
    Off,
}

impl Action {
    /// Parses a request body, naming the bad field.
    pub fn parse(body: &Value) -> Result<(String, Action), String> {
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("field \"name\": expected a failpoint name")?;
        let arg = match body.get("arg") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or("field \"arg\": expected a non-negative integer")?,
            ),
        };
        let action = match body.get("action").and_then(Value::as_str) {
            Some("crash") => Action::Crash,
            Some("pause") => Action::Pause(arg.unwrap_or(1000)),
            Some("delay-ms") => Action::Delay(arg.unwrap_or(100)),
            Some("drop-next") => Action::DropNext(arg.unwrap_or(1).max(1)),
            Some("hold") => Action::Hold(arg.unwrap_or(1000)),
            Some("off") => Action::Off,
            _ => {
                return Err(
                    "field \"action\": expected crash, pause, drop-next, delay-ms, hold or off"
                        .to_string(),
                );
            }
        };
        Ok((name.to_string(), action))
    }
}

/// What the point should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hit {
    Go,
    Drop,
    /// Send it this many ms late.
    Later(u64),
}

#[derive(Debug, Default)]
pub struct Failpoints {
    armed: Mutex<HashMap<String, Action>>,
    /// Fast path: most nodes never arm one.
    any: AtomicBool,
}

impl Failpoints {
    pub fn arm(&self, name: String, action: Action) {
        let mut armed = self.armed.lock().expect("failpoints lock");
        if action == Action::Off {
            armed.remove(&name);
        } else {
            armed.insert(name, action);
        }
        self.any.store(!armed.is_empty(), Ordering::Release);
    }

    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// Passes point `WHERE:TYPE` for a peer message (`send` or `recv`), TYPE its JSON `type`.
    pub fn hit_message<M: serde::Serialize>(&self, at: &str, msg: &M) -> Hit {
        if self.is_empty() {
            return Hit::Go;
        }
        let ty = serde_json::to_value(msg)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        self.hit(&format!("{at}:{ty}"))
    }

    /// Passes point `name`: crashes, sleeps, or says whether to drop what passes.
    pub fn hit(&self, name: &str) -> Hit {
        if self.is_empty() {
            return Hit::Go;
        }
        let action = {
            let mut armed = self.armed.lock().expect("failpoints lock");
            match armed.get_mut(name) {
                None => return Hit::Go,
                Some(Action::DropNext(n)) if *n > 1 => {
                    *n -= 1;
                    return Hit::Drop;
                }
                Some(Action::Hold(ms)) => return Hit::Later(*ms),
                Some(_) => {
                    let a = armed.remove(name).expect("present");
                    if armed.is_empty() {
                        self.any.store(false, Ordering::Release);
                    }
                    a
                }
            }
        };
        match action {
            Action::Crash => {
                crate::log!("failpoint {name}: crash");
                std::process::exit(137);
            }
            Action::Pause(ms) | Action::Delay(ms) => {
                crate::log!("failpoint {name}: stopping the node loop for {ms} ms");
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Hit::Go
            }
            Action::DropNext(_) => Hit::Drop,
            Action::Hold(ms) => Hit::Later(ms),
            Action::Off => Hit::Go,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_parse_and_bad_fields_are_named() {
        let (n, a) =
            Action::parse(&json!({"name":"send:vote_response","action":"drop-next","arg":2}))
                .unwrap();
        assert_eq!((n.as_str(), a), ("send:vote_response", Action::DropNext(2)));
        assert_eq!(
            Action::parse(&json!({"name":"sync","action":"crash"}))
                .unwrap()
                .1,
            Action::Crash
        );
        assert!(
            Action::parse(&json!({"action":"crash"}))
                .unwrap_err()
                .contains("name")
        );
        assert!(
            Action::parse(&json!({"name":"x","action":"explode"}))
                .unwrap_err()
                .contains("action")
        );
        assert!(
            Action::parse(&json!({"name":"x","action":"pause","arg":-1}))
                .unwrap_err()
                .contains("arg")
        );
    }

    #[test]
    fn drop_next_counts_down_then_disarms() {
        let f = Failpoints::default();
        assert_eq!(f.hit("apply"), Hit::Go);
        f.arm("send:x".into(), Action::DropNext(2));
        assert_eq!(f.hit("send:y"), Hit::Go);
        assert_eq!(f.hit("send:x"), Hit::Drop);
        assert_eq!(f.hit("send:x"), Hit::Drop);
        assert_eq!(f.hit("send:x"), Hit::Go);
        assert!(f.is_empty());
        f.arm("sync".into(), Action::Delay(1));
        assert_eq!(f.hit("sync"), Hit::Go);
        assert!(f.is_empty());
    }

    #[test]
    fn message_points_go_by_type_and_off_disarms() {
        let f = Failpoints::default();
        let prepare = json!({"type": "prepare", "ballot": 3});
        assert_eq!(f.hit_message("recv", &prepare), Hit::Go);
        f.arm("recv:prepare".into(), Action::DropNext(100));
        assert_eq!(f.hit_message("send", &prepare), Hit::Go);
        assert_eq!(f.hit_message("recv", &json!({"type": "accept"})), Hit::Go);
        assert_eq!(f.hit_message("recv", &prepare), Hit::Drop);
        assert_eq!(
            Action::parse(&json!({"name":"recv:prepare","action":"off"})).unwrap(),
            ("recv:prepare".to_string(), Action::Off)
        );
        f.arm("recv:prepare".into(), Action::Off);
        assert!(f.is_empty());
        assert_eq!(f.hit_message("recv", &prepare), Hit::Go);
        f.arm("send:accept".into(), Action::Hold(300));
        for _ in 0..3 {
            assert_eq!(
                f.hit_message("send", &json!({"type": "accept"})),
                Hit::Later(300)
            );
        }
        f.arm("send:accept".into(), Action::Off);
        assert_eq!(f.hit_message("send", &json!({"type": "accept"})), Hit::Go);
    }
}
