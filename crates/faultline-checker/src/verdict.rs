//! What every checker returns: `check(&History, &Options) -> Verdict`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `true`, `false` or `"unknown"` in JSON, as DESIGN.md's `--json` output specifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    Valid,
    Invalid,
    /// A budget ran out (or the checker could not decide) before a verdict was reached.
    Unknown,
}

impl Validity {
    /// Combines verdicts of independent parts: any invalid part makes the whole invalid;
    /// otherwise any unknown part makes it unknown.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            (Valid, Valid) => Valid,
        }
    }

    /// What a checker that decides by finding anomalies says: valid when it found none.
    pub fn from_anomalies(anomalies: &[Anomaly]) -> Validity {
        if anomalies.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }

    /// The process exit code DESIGN.md assigns: 0 valid, 1 anomalies found, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Validity::Valid),
            Value::Bool(false) => Ok(Validity::Invalid),
            Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "valid must be true, false or \"unknown\", found {other}"
            ))),
        }
    }
}

/// One thing found wrong, with the smallest witness the checker could find.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// A stable name: `nonlinearizable`, `G1c`, `lost-write`, `two-leaders-one-term`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The witness in words.
    pub description: String,
    /// Event indexes of the operations involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<u64>,
    /// The witness as data the report can draw.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which checker (and model) produced this: `linearizable/cas-register`, `elle/list-append`, ...
    pub checker: String,
    pub valid: Validity,
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// A sentence or two a person reads first.
    pub explanation: String,
    /// Checker-specific figures (ops, keys decided, states explored, elapsed ms, ...).
    #[serde(default)]
    pub stats: Value,
}

/// Limits on a check. A checker that exceeds one returns `Unknown` with what it decided.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    pub time_limit: Option<Duration>,
    pub memory_limit_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_serializes_as_design_says() {
        let v = [Validity::Valid, Validity::Invalid, Validity::Unknown];
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"[true,false,"unknown"]"#
        );
        let back: Vec<Validity> = serde_json::from_str(r#"[true,false,"unknown"]"#).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn invalid_dominates_unknown_dominates_valid() {
        use Validity::*;
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(Invalid.exit_code(), 1);
    }
}
