//! `faultline cleanup --cluster FILE`: on every host of the inventory, the journals a dead
//! controller left are read and their pending undo scripts run, newest first; a journal
//! whose every entry is undone is removed. Nothing the journals do not name is touched, a
//! journal of a live controller (on this machine) is left alone, and a second cleanup finds
//! nothing to do.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use super::inventory::{Inventory, sh_quote};
use crate::faults::ssh::journal::{self, Journal};
use crate::faults::ssh::remote::{Remote, RemoteLog};
use crate::faults::ssh::{join_all, remotes};

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ClusterCleanup {
    /// `host: run` of each journal found.
    pub journals: Vec<String>,
    /// `host: what` of each change undone.
    pub undone: Vec<String>,
    /// Journals of controllers still alive here: left alone.
    pub live: Vec<String>,
    pub errors: Vec<String>,
}

impl ClusterCleanup {
    pub fn is_empty(&self) -> bool {
        self.journals.is_empty() && self.errors.is_empty()
    }
}

async fn host(r: Arc<Remote>, dir: String) -> ClusterCleanup {
    let mut rep = ClusterCleanup::default();
    let h = r.host();
    let key = journal::dest_key(&r.key());
    let list = format!(
        "for f in {}/*@{key}.journal; do [ -e \"$f\" ] && echo \"$f\"; done; true",
        sh_quote(&dir)
    );
    let files = match r.check(&list).await {
        Ok(o) => o,
        Err(e) => {
            rep.errors.push(e.to_string());
            return rep;
        }
    };
    for file in files.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(run) = file
            .rsplit('/')
            .next()
            .and_then(journal::parse_name)
            .filter(|(_, k)| *k == key)
            .map(|(run, _)| run.to_string())
        else {
            continue;
        };
        let text = match r.check(&format!("cat {}", sh_quote(file))).await {
            Ok(t) => t,
            Err(e) => {
                rep.errors.push(e.to_string());
                continue;
            }
        };
        let j = Journal::parse(&text);
        if j.controller.as_ref().is_some_and(|c| c.is_alive_here()) {
            rep.live.push(format!("{h}: {run}"));
            continue;
        }
        rep.journals.push(format!("{h}: {run}"));
        let mut ok = true;
        for e in j.pending.iter().rev() {
            let script = format!(
                "{{ {}; }} && {}",
                e.undo,
                journal::append(&dir, file, &journal::undone_line(e.id))
            );
            match r.check(&script).await {
                Ok(_) => rep.undone.push(format!("{h}: {}", e.what)),
                Err(err) => {
                    ok = false;
                    rep.errors.push(format!("{h}: undoing {}: {err}", e.what));
                }
            }
        }
        for l in &j.unreadable {
            rep.errors.push(format!(
                "{h}: {file}: unreadable journal line {l:?} (left as is)"
            ));
        }
        // the dead controller's ControlMaster (it outlives its controller until idle)
        let control = std::env::temp_dir().join(format!("fl-ssh-{run}"));
        let master = r.sibling(&control);
        if master.has_socket() {
            master.exit_master().await;
            let _ = std::fs::remove_dir(&control);
        }
        if ok && j.unreadable.is_empty() {
            let restart_log = format!("{}.restart.log", file.trim_end_matches(".journal"));
            if let Err(e) = r
                .check(&format!(
                    "rm -f {} {}",
                    sh_quote(file),
                    sh_quote(&restart_log)
                ))
                .await
            {
                rep.errors.push(e.to_string());
            }
        }
    }
    rep
}

/// Cleans every distinct SSH host of `inv`, all at once.
pub async fn cleanup(
    inv: &Inventory,
    control_dir: &std::path::Path,
    log: &RemoteLog,
) -> ClusterCleanup {
    let mut seen = BTreeSet::new();
    let hosts: Vec<Arc<Remote>> = remotes(inv, control_dir, log)
        .into_iter()
        .flatten()
        .filter(|r| seen.insert(r.host()))
        .collect();
    let parts = join_all(
        hosts
            .iter()
            .map(|r| host(r.clone(), inv.journal_dir.clone())),
    )
    .await;
    let mut all = ClusterCleanup::default();
    for p in parts {
        all.journals.extend(p.journals);
        all.undone.extend(p.undone);
        all.live.extend(p.live);
        all.errors.extend(p.errors);
    }
    for r in &hosts {
        r.close().await;
    }
    all
}
