//! `faultline check` end to end: the real binary on real files, its output and exit codes.

mod common;

use common::corpora;
use std::process::{Command, Output};

use serde_json::Value;

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("runs faultline")
}

fn corpus(rel: &str) -> String {
    corpora().join(rel).display().to_string()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

const VALID: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"index":1,"time":5,"process":0,"type":"ok","f":"write","key":"a","value":1}
{"index":2,"time":6,"process":1,"type":"invoke","f":"read","key":"a","value":null}
{"index":3,"time":9,"process":1,"type":"ok","f":"read","key":"a","value":1}
"#;

#[test]
fn valid_invalid_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.jsonl");
    std::fs::write(&ok, VALID).unwrap();
    let out = faultline(&["check", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (cas-register, 2 ops, 1 keys"));

    let bad = corpus("knossos/cas-register/bad/rethink-fail-minimal.edn");
    let out = faultline(&["check", "--json", ok.to_str().unwrap(), &bad]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["valid"], Value::Bool(true));
    assert_eq!(lines[1]["valid"], Value::Bool(false));
    assert_eq!(lines[1]["model"], "cas-register");
    let a = &lines[1]["anomalies"][0];
    assert_eq!(a["kind"], "nonlinearizable");
    // The read of 3 (process 1) is what cannot be placed.
    assert_eq!(a["data"]["unplaceable"][0]["process"], 1);
    assert_eq!(a["data"]["unplaceable"][0]["value"], 3);
    assert!(
        a["description"].as_str().unwrap().contains("read → 3"),
        "{a}"
    );
}

#[test]
fn malformed_input_exits_254_naming_file_line_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        VALID.replace("\"type\":\"ok\",\"f\":\"read\"", "\"type\":\"ok\",\"f\":7"),
    )
    .unwrap();
    let out = faultline(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:4: f: must be a string"), "{err}");

    let edn = dir.path().join("bad.edn");
    std::fs::write(&edn, "[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0, :type :ok, :f :read, :value [1}]").unwrap();
    let out = faultline(&["check", edn.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.edn:2: edn:"),
        "{out:?}"
    );

    let missing = dir.path().join("missing.jsonl");
    let out = faultline(&["check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    let out = faultline(&[
        "check",
        "--model",
        "nonsense",
        dir.path().join("bad.edn").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
}

/// A report without the figures that vary from run to run (times).
fn steady(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "elapsed_ms" | "ms"))
                .map(|(k, v)| (k.clone(), steady(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(steady).collect()),
        v => v.clone(),
    }
}

#[test]
fn files_checked_at_once_report_in_order_as_one_by_one() {
    let mut files: Vec<String> = (0..12)
        .map(|i| corpus(&format!("porcupine/etcd/etcd_{i:03}.log")))
        .collect();
    files.push(corpus("knossos/cas-register/bad/rethink-fail-minimal.edn"));
    let run = |extra: &[&str]| {
        let mut args = vec!["check", "--json", "--model", "cas-register"];
        args.extend(extra);
        args.extend(files.iter().map(String::as_str));
        let out = faultline(&args);
        (
            out.status.code(),
            json_lines(&out).iter().map(steady).collect::<Vec<_>>(),
        )
    };
    let (code, alone) = run(&["--threads", "1"]);
    assert_eq!(alone.len(), files.len());
    for (line, file) in alone.iter().zip(&files) {
        assert_eq!(line["file"], file.as_str());
    }
    assert_eq!(run(&["--threads", "3"]), (code, alone.clone()));
    // No memory at all: every file is undecided within its part, checked again alone,
    // and undecided as when checked one by one.
    let (code, none) = run(&["--threads", "3", "--memory-limit", "0"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        (code, none),
        run(&["--threads", "1", "--memory-limit", "0"])
    );

    // An unreadable file ends the run after the reports before it, as one by one.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.log");
    std::fs::write(&bad, "INFO  jepsen.util - x\t:invoke\t:read\tnil\n").unwrap();
    let mut args = vec!["check", "--json", "--threads", "2"];
    args.extend(files[..3].iter().map(String::as_str));
    args.push(bad.to_str().unwrap());
    args.extend(files[3..].iter().map(String::as_str));
    let out = faultline(&args);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    let lines: Vec<Value> = json_lines(&out).iter().map(steady).collect();
    assert_eq!(lines, alone[..3]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.log:1: process:"),
        "{out:?}"
    );
}

#[test]
fn budgets_give_unknown_exit_2() {
    let file = corpus("porcupine/kv/c50-ok.txt");
    let out = faultline(&["check", "--json", "--time-limit", "0", &file]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["valid"], "unknown");
    assert!(
        v["explanation"].as_str().unwrap().contains("time limit"),
        "{v}"
    );

    let out = faultline(&["check", "--json", "--memory-limit", "0", &file]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        json_lines(&out)[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("memory limit")
    );
}

#[test]
fn all_keys_decides_every_key_of_c50_bad() {
    let file = corpus("porcupine/kv/c50-bad.txt");
    let out = faultline(&["check", "--json", "--all-keys", "--time-limit", "60", &file]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["model"], "append-kv");
    assert_eq!(v["stats"]["keys"], 10);
    assert_eq!(v["stats"]["keys_unknown"], 0, "{}", v["stats"]);
    assert_eq!(
        v["anomalies"].as_array().unwrap().len(),
        v["stats"]["keys_invalid"].as_u64().unwrap() as usize
    );
}

#[test]
fn exports_jepsen_edn_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = corpus("porcupine/etcd/etcd_002.log");
    let edn = dir.path().join("out.edn");
    let out = faultline(&["check", "--export-edn", edn.to_str().unwrap(), &src]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&edn).unwrap();
    assert!(
        text.starts_with("[{:index 0, :time 0, :process"),
        "{}",
        &text[..80]
    );
    let out = faultline(&["check", "--json", edn.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json_lines(&out)[0]["stats"]["ops"], 64);
}

#[test]
fn html_report_of_an_invalid_history_draws_its_counterexample() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("check.html");
    let src = corpus("knossos/cas-register/bad/cas-failure.edn");
    let out = faultline(&["check", "--html", page.to_str().unwrap(), &src]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(r#"data-valid="invalid""#));
    assert!(
        html.contains("cx-stuck"),
        "the op that cannot be placed is drawn"
    );
    let two = faultline(&["check", "--html", page.to_str().unwrap(), &src, &src]);
    assert_eq!(two.status.code(), Some(254), "{two:?}");
}

/// A write of 1 completes, a write of 2 completes, then a read returns 1: linearizability and
/// read-after-write both reject it; monotonic-reads (one read per session) and the staleness
/// figure (k = 1) do not.
const STALE: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"index":1,"time":5,"process":0,"type":"ok","f":"write","key":"a","value":1}
{"index":2,"time":6,"process":0,"type":"invoke","f":"write","key":"a","value":2}
{"index":3,"time":9,"process":0,"type":"ok","f":"write","key":"a","value":2}
{"index":4,"time":10,"process":1,"type":"invoke","f":"read","key":"a","value":null}
{"index":5,"time":12,"process":1,"type":"ok","f":"read","key":"a","value":1}
"#;

#[test]
fn weak_consistency_models_judge_a_stale_read() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("stale.jsonl");
    std::fs::write(&f, STALE).unwrap();
    let f = f.to_str().unwrap();
    let run = |model: &str| {
        let out = faultline(&["check", "--json", "--model", model, f]);
        let line = json_lines(&out).remove(0);
        (out.status.code(), line)
    };
    let (code, raw) = run("read-after-write");
    assert_eq!(code, Some(1), "{raw}");
    assert_eq!(raw["checker"], "read-after-write");
    assert_eq!(raw["anomalies"][0]["kind"], "stale-read", "{raw}");
    let (code, mono) = run("monotonic-reads");
    assert_eq!(code, Some(0), "{mono}");
    let (code, st) = run("staleness");
    assert_eq!(code, Some(0), "{st}");
    assert_eq!(st["stats"]["stale_reads"], 1, "{st}");
    let (code, _) = run("register");
    assert_eq!(code, Some(1));
}

/// Jepsen-format EDN histories of the workload models: `--model auto` picks the model from
/// the ops (a counter reads integers, a set lists), each checker names what is wrong, and an
/// op the model cannot interpret exits 254 naming the event.
#[test]
fn jepsen_workload_models_are_inferred_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        let out = faultline(&["check", "--json", f.to_str().unwrap()]);
        let code = out.status.code();
        let line = json_lines(&out).pop();
        (code, line, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let cases = [
        (
            "counter.edn",
            "[{:process 0, :type :invoke, :f :add, :value 1}
              {:process 0, :type :ok, :f :add, :value 1}
              {:process 1, :type :invoke, :f :read, :value nil}
              {:process 1, :type :ok, :f :read, :value 5}]",
            "counter",
            "out-of-bounds",
        ),
        (
            "ids.edn",
            "[{:process 0, :type :invoke, :f :generate, :value nil}
              {:process 1, :type :invoke, :f :generate, :value nil}
              {:process 0, :type :ok, :f :generate, :value 7}
              {:process 1, :type :ok, :f :generate, :value 7}]",
            "unique-ids",
            "duplicated-id",
        ),
        (
            "queue.edn",
            "[{:process 0, :type :invoke, :f :enqueue, :value 1}
              {:process 0, :type :ok, :f :enqueue, :value 1}
              {:process 0, :type :invoke, :f :enqueue, :value 2}
              {:process 0, :type :ok, :f :enqueue, :value 2}
              {:process 1, :type :invoke, :f :dequeue, :value nil}
              {:process 1, :type :ok, :f :dequeue, :value 2}]",
            "queue",
            "nonlinearizable",
        ),
        (
            "bank.edn",
            "[{:process 0, :type :invoke, :f :read, :value nil}
              {:process 0, :type :ok, :f :read, :value {0 10, 1 10}}
              {:process 1, :type :invoke, :f :transfer, :value {:from 0, :to 1, :amount 4}}
              {:process 1, :type :ok, :f :transfer, :value {:from 0, :to 1, :amount 4}}
              {:process 0, :type :invoke, :f :read, :value nil}
              {:process 0, :type :ok, :f :read, :value {0 6, 1 15}}]",
            "bank",
            "wrong-total",
        ),
    ];
    for (name, text, model, kind) in cases {
        let (code, line, err) = run(name, text);
        let line = line.unwrap_or_else(|| panic!("{name}: {err}"));
        assert_eq!(code, Some(1), "{name}: {line}");
        assert_eq!(line["model"], model, "{name}");
        assert_eq!(line["anomalies"][0]["kind"], kind, "{name}: {line}");
    }
    let (code, line, _) = run(
        "set.edn",
        "[{:process 0, :type :invoke, :f :add, :value 1}
          {:process 0, :type :ok, :f :add, :value 1}
          {:process 1, :type :invoke, :f :read, :value nil}
          {:process 1, :type :ok, :f :read, :value [1]}]",
    );
    assert_eq!(code, Some(0));
    assert_eq!(line.unwrap()["model"], "set");
    let (code, _, err) = run(
        "bad-bank.edn",
        "[{:process 0, :type :invoke, :f :read, :value nil}
          {:process 0, :type :ok, :f :read, :value {0 10, 1 :lots}}
          {:process 1, :type :invoke, :f :transfer, :value 3}
          {:process 1, :type :ok, :f :transfer, :value 3}]",
    );
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("event 0 (read): account 1's balance"), "{err}");
}

#[test]
fn elle_cli_options_reach_the_elle_checker() {
    let keys = corpus("elle/elle-cli/rw-register-keys-linearizable-anomaly.json");
    // Elle's verdict needs version order from real time: without the flag the three txns
    // fit strict serializability, with it the versions of x form a cycle.
    let out = faultline(&["check", "--json", "--model", "rw-register", &keys]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = faultline(&[
        "check",
        "--json",
        "--model",
        "rw-register",
        "--linearizable-keys",
        &keys,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = &json_lines(&out)[0];
    assert_eq!(
        v["stats"]["anomaly_types"],
        serde_json::json!(["cyclic-versions"])
    );
    let sources = &v["anomalies"][0]["data"]["sources"];
    assert!(
        sources
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "linearizable-keys"),
        "{sources}"
    );

    // gh-30 shows G2-item, which serializability forbids too, and nothing weaker.
    let gh30 = corpus("elle/elle-cli/list-append-gh-30.edn");
    for (models, code) in [("serializable", 1), ("read-committed", 0)] {
        let out = faultline(&["check", "--json", "--consistency-models", models, &gh30]);
        assert_eq!(out.status.code(), Some(code), "{models}: {out:?}");
    }
    let out = faultline(&["check", "--consistency-models", "serializable,bogus", &gh30]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown consistency model \"bogus\""));
}
