//! An operation a checker cannot interpret under its model (a counter `add` of a string, a
//! bank `read` that is not a map, an `f` the model does not know): bad input, reported as
//! an error that names the op, never as a verdict.

use faultline_history::Operation;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event} ({f}): {message}")]
pub struct BadOp {
    /// Event index of the op's invocation.
    pub event: u64,
    pub f: String,
    pub message: String,
}

impl BadOp {
    pub fn new(op: &Operation, message: impl Into<String>) -> Self {
        BadOp {
            event: op.call,
            f: op.f.clone(),
            message: message.into(),
        }
    }

    /// `op`'s `f` is not one of `known`.
    pub fn unknown_f(op: &Operation, model: &str, known: &[&str]) -> Self {
        BadOp::new(
            op,
            format!(
                "the {model} checker knows {}, not {:?}",
                known.join(", "),
                op.f
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::EventType::*;
    use serde_json::json;

    #[test]
    fn names_the_event_and_the_function() {
        let h = faultline_history::testkit::client_history(
            None,
            &[(0, Invoke, "pop", json!(null)), (0, Ok, "pop", json!(1))],
        );
        let e = BadOp::unknown_f(&h.operations[0], "counter", &["add", "read"]);
        assert_eq!(
            e.to_string(),
            "event 0 (pop): the counter checker knows add, read, not \"pop\""
        );
    }
}
