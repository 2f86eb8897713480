//! JUnit XML for CI systems: one test case per checker; invalid is a failure, unknown an
//! error (nothing was decided, which CI must not read as a pass), and no verdict at all is
//! an error too.

use std::fmt::Write;

use serde_json::Value;

use super::escape::html as xml;
use crate::checker::{Validity, Verdict};

const MAX_ANOMALIES_LISTED: usize = 50;

fn elapsed_s(v: &Verdict) -> f64 {
    v.stats
        .get("elapsed_ms")
        .and_then(Value::as_f64)
        .map_or(0.0, |ms| ms / 1000.0)
}

/// A `<testsuites>` document for `verdicts`. `suite` names the run (e.g. `raft-kv`),
/// `properties` (seed, system, ...) are recorded as suite properties.
pub fn junit_xml(
    verdicts: &[Verdict],
    suite: &str,
    properties: &[(String, String)],
    elapsed_s_total: f64,
) -> String {
    let failures = verdicts
        .iter()
        .filter(|v| v.valid == Validity::Invalid)
        .count();
    let errors = verdicts
        .iter()
        .filter(|v| v.valid == Validity::Unknown)
        .count()
        + usize::from(verdicts.is_empty());
    let tests = verdicts.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="faultline" tests="{tests}" failures="{failures}" errors="{errors}" time="{elapsed_s_total:.3}">"#
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="0" time="{elapsed_s_total:.3}">"#,
        xml(suite)
    );
    if !properties.is_empty() {
        out.push_str("    <properties>\n");
        for (k, v) in properties {
            let _ = writeln!(
                out,
                r#"      <property name="{}" value="{}"/>"#,
                xml(k),
                xml(v)
            );
        }
        out.push_str("    </properties>\n");
    }
    if verdicts.is_empty() {
        let _ = writeln!(
            out,
            r#"    <testcase classname="{}" name="check" time="0"><error type="no-verdict" message="no checker ran on this history"/></testcase>"#,
            xml(suite)
        );
    }
    for v in verdicts {
        let _ = write!(
            out,
            r#"    <testcase classname="{}" name="{}" time="{:.3}">"#,
            xml(suite),
            xml(&v.checker),
            elapsed_s(v)
        );
        let mut body = String::new();
        for a in v.anomalies.iter().take(MAX_ANOMALIES_LISTED) {
            let _ = writeln!(
                body,
                "{}{}: {}",
                a.kind,
                a.key
                    .as_deref()
                    .map(|k| format!(" (key {k})"))
                    .unwrap_or_default(),
                a.description
            );
        }
        if v.anomalies.len() > MAX_ANOMALIES_LISTED {
            let _ = writeln!(
                body,
                "... {} more in results.json",
                v.anomalies.len() - MAX_ANOMALIES_LISTED
            );
        }
        match v.valid {
            Validity::Valid => {}
            Validity::Invalid => {
                let _ = write!(
                    out,
                    r#"<failure type="invalid" message="{}">{}</failure>"#,
                    xml(&v.explanation),
                    xml(&body)
                );
            }
            Validity::Unknown => {
                let _ = write!(
                    out,
                    r#"<error type="unknown" message="{}">{}</error>"#,
                    xml(&v.explanation),
                    xml(&body)
                );
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Anomaly;
    use serde_json::json;

    fn verdict(checker: &str, valid: Validity) -> Verdict {
        Verdict {
            checker: checker.into(),
            valid,
            anomalies: vec![],
            explanation: format!("{checker} says <{valid:?}>"),
            stats: json!({"elapsed_ms": 1500}),
        }
    }

    #[test]
    fn one_case_per_checker_with_failures_and_errors() {
        let mut bad = verdict("linearizable/cas-register", Validity::Invalid);
        bad.anomalies.push(Anomaly {
            kind: "nonlinearizable".into(),
            key: Some("k1".into()),
            description: "read 1 & then 2".into(),
            events: vec![3],
            data: Value::Null,
        });
        let xml = junit_xml(
            &[
                verdict("elle/list-append", Validity::Valid),
                bad,
                verdict("split-brain", Validity::Unknown),
            ],
            "raft-kv",
            &[("seed".into(), "42".into())],
            61.5,
        );
        assert!(
            xml.contains(r#"<testsuite name="raft-kv" tests="3" failures="1" errors="1""#),
            "{xml}"
        );
        assert!(xml.contains(
            r#"<testcase classname="raft-kv" name="elle/list-append" time="1.500"></testcase>"#
        ));
        assert!(xml.contains(r#"<failure type="invalid" message="linearizable/cas-register says &lt;Invalid&gt;">nonlinearizable (key k1): read 1 &amp; then 2"#));
        assert!(xml.contains(r#"<error type="unknown""#));
        assert!(xml.contains(r#"<property name="seed" value="42"/>"#));
    }

    #[test]
    fn no_verdict_is_an_error_not_a_pass() {
        let xml = junit_xml(&[], "s", &[], 0.0);
        assert!(xml.contains(r#"tests="1" failures="0" errors="1""#));
        assert!(xml.contains("no-verdict"));
    }
}
