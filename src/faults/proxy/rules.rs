//! Message rules and the fate of one message: which rules in force match it (by directed
//! link, message type, path), and what they decide (delay, duplicate, drop, hold). Pure:
//! the rules, the message and a seeded rng decide everything.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// A directed link: traffic `from` one node `to` another.
pub type Link = (String, String);

/// A delay distribution, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum Dist {
    Fixed { ms: f64 },
    Uniform { min_ms: f64, max_ms: f64 },
    Exponential { mean_ms: f64 },
}

impl Dist {
    pub fn draw(&self, rng: &mut impl rand::Rng) -> Duration {
        let ms = match *self {
            Dist::Fixed { ms } => ms,
            Dist::Uniform { min_ms, max_ms } if max_ms > min_ms => {
                rng.random_range(min_ms..=max_ms)
            }
            Dist::Uniform { min_ms, .. } => min_ms,
            Dist::Exponential { mean_ms } => {
                // Inverse CDF; 1 - u is in (0, 1], so the log is finite.
                let u: f64 = rng.random_range(0.0..1.0);
                -mean_ms * (1.0 - u).ln()
            }
        };
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    /// The distribution's median, for tests and docs.
    pub fn median_ms(&self) -> f64 {
        match *self {
            Dist::Fixed { ms } => ms,
            Dist::Uniform { min_ms, max_ms } => (min_ms + max_ms) / 2.0,
            Dist::Exponential { mean_ms } => mean_ms * std::f64::consts::LN_2,
        }
    }
}

/// What a rule does to a message it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MsgAction {
    /// Delivered late, by a fresh draw per message (so messages reorder).
    Delay { delay: Dist },
    /// Delivered, and once more after a draw from `after`.
    Dup { after: Dist },
    /// Never delivered (the sender is not told).
    Drop,
    /// Kept until the rule is removed, then released with every other held message in a
    /// shuffled order.
    Hold,
    /// Connections on the link are reset (at once, and each new one while in force).
    Reset,
    /// The link carries at most this many bytes per second.
    Bandwidth { bytes_per_s: u64 },
}

/// One rule in force on the proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MsgRule {
    pub id: u64,
    /// The directed links it applies to.
    pub links: BTreeSet<Link>,
    /// Message types (JSON `type`) it matches; empty: any.
    #[serde(default)]
    pub types: Vec<String>,
    /// Request paths it matches; empty: any.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Chance that a matching message is affected.
    pub probability: f64,
    #[serde(flatten)]
    pub action: MsgAction,
}

/// What the proxy knows of one message.
#[derive(Clone, Copy, Debug)]
pub struct MsgInfo<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// The JSON `type`, if the message has one.
    pub kind: Option<&'a str>,
    /// The HTTP path (L7), or None for an opaque L4 chunk.
    pub path: Option<&'a str>,
}

impl MsgRule {
    /// Whether the rule applies to this message (before its probability is drawn).
    pub fn matches(&self, m: &MsgInfo) -> bool {
        self.links.contains(&(m.from.to_string(), m.to.to_string()))
            && (self.types.is_empty() || m.kind.is_some_and(|k| self.types.iter().any(|t| t == k)))
            && (self.paths.is_empty() || m.path.is_some_and(|p| self.paths.iter().any(|x| x == p)))
    }

    /// Whether the rule needs to see inside messages (type or path filters), which L4 cannot.
    pub fn needs_l7(&self) -> bool {
        !self.types.is_empty()
            || !self.paths.is_empty()
            || matches!(self.action, MsgAction::Dup { .. } | MsgAction::Hold)
            || (matches!(self.action, MsgAction::Drop) && self.probability < 1.0)
    }
}

/// The decided fate of one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fate {
    pub drop: bool,
    /// Held by this rule until it is removed.
    pub hold: Option<u64>,
    pub delay: Duration,
    /// Deliver a second copy this long after the first.
    pub dup: Option<Duration>,
}

impl Fate {
    /// The trace's word for it.
    pub fn word(&self) -> &'static str {
        if self.drop {
            "dropped"
        } else if self.hold.is_some() {
            "held"
        } else if self.dup.is_some() {
            "duplicated"
        } else if !self.delay.is_zero() {
            "delayed"
        } else {
            "delivered"
        }
    }
}

/// Decides one message's fate under `rules` (in the order they were added). A drop wins over
/// everything; delays of several rules add up. Reset and bandwidth act on connections, not
/// here.
pub fn decide(rules: &[MsgRule], m: &MsgInfo, rng: &mut impl rand::Rng) -> Fate {
    let mut f = Fate::default();
    for r in rules.iter().filter(|r| r.matches(m)) {
        if matches!(r.action, MsgAction::Reset | MsgAction::Bandwidth { .. }) {
            continue;
        }
        if r.probability < 1.0 && rng.random_range(0.0..1.0) >= r.probability {
            continue;
        }
        match &r.action {
            MsgAction::Delay { delay } => f.delay += delay.draw(rng),
            MsgAction::Dup { after } => f.dup = Some(after.draw(rng)),
            MsgAction::Drop => f.drop = true,
            MsgAction::Hold => f.hold = f.hold.or(Some(r.id)),
            MsgAction::Reset | MsgAction::Bandwidth { .. } => {}
        }
    }
    if f.drop {
        return Fate {
            drop: true,
            ..Fate::default()
        };
    }
    f
}

/// The tightest bandwidth limit on a link, if any.
pub fn bandwidth(rules: &[MsgRule], from: &str, to: &str) -> Option<u64> {
    let link = (from.to_string(), to.to_string());
    rules
        .iter()
        .filter(|r| r.links.contains(&link))
        .filter_map(|r| match r.action {
            MsgAction::Bandwidth { bytes_per_s } => Some(bytes_per_s),
            _ => None,
        })
        .min()
}

/// Whether a reset rule covers the link (either direction of a connection resets it).
pub fn resets(rules: &[MsgRule], a: &str, b: &str) -> bool {
    rules.iter().any(|r| {
        matches!(r.action, MsgAction::Reset)
            && (r.links.contains(&(a.to_string(), b.to_string()))
                || r.links.contains(&(b.to_string(), a.to_string())))
    })
}

/// A rule on `links` matching every message (for tests of this module and its users).
#[cfg(test)]
pub(crate) fn rule(id: u64, links: &[(&str, &str)], action: MsgAction) -> MsgRule {
    MsgRule {
        id,
        links: links
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        types: vec![],
        paths: vec![],
        probability: 1.0,
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn msg<'a>(from: &'a str, to: &'a str, kind: &'a str) -> MsgInfo<'a> {
        MsgInfo {
            from,
            to,
            kind: Some(kind),
            path: Some("/raft/batch"),
        }
    }

    #[test]
    fn links_are_directed_and_types_filter() {
        let mut r = rule(1, &[("n1", "n2")], MsgAction::Drop);
        r.types = vec!["request_vote".into()];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(decide(&[r.clone()], &msg("n1", "n2", "request_vote"), &mut rng).drop);
        assert!(!decide(&[r.clone()], &msg("n2", "n1", "request_vote"), &mut rng).drop);
        assert!(!decide(&[r], &msg("n1", "n2", "append_entries"), &mut rng).drop);
    }

    #[test]
    fn drop_wins_and_delays_add() {
        let d = |ms| MsgAction::Delay {
            delay: Dist::Fixed { ms },
        };
        let rules = [
            rule(1, &[("a", "b")], d(10.0)),
            rule(2, &[("a", "b")], d(5.0)),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let f = decide(&rules, &msg("a", "b", "x"), &mut rng);
        assert_eq!(f.delay, Duration::from_millis(15));
        assert_eq!(f.word(), "delayed");
        let mut with_drop = rules.to_vec();
        with_drop.push(rule(3, &[("a", "b")], MsgAction::Drop));
        assert_eq!(
            decide(&with_drop, &msg("a", "b", "x"), &mut rng),
            Fate {
                drop: true,
                ..Fate::default()
            }
        );
    }

    #[test]
    fn probability_is_drawn_per_message() {
        let mut r = rule(1, &[("a", "b")], MsgAction::Drop);
        r.probability = 0.3;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let dropped = (0..10_000)
            .filter(|_| decide(&[r.clone()], &msg("a", "b", "x"), &mut rng).drop)
            .count();
        assert!((2700..3300).contains(&dropped), "{dropped}");
    }

    #[test]
    fn distribution_medians() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for d in [
            Dist::Fixed { ms: 20.0 },
            Dist::Uniform {
                min_ms: 10.0,
                max_ms: 50.0,
            },
            Dist::Exponential { mean_ms: 40.0 },
        ] {
            let mut v: Vec<f64> = (0..20_001)
                .map(|_| d.draw(&mut rng).as_secs_f64() * 1000.0)
                .collect();
            v.sort_by(f64::total_cmp);
            let med = v[v.len() / 2];
            assert!(
                (med - d.median_ms()).abs() <= 0.05 * d.median_ms(),
                "{d:?}: {med}"
            );
        }
    }

    #[test]
    fn what_l4_cannot_do() {
        let mut r = rule(1, &[("a", "b")], MsgAction::Drop);
        assert!(!r.needs_l7());
        r.types = vec!["x".into()];
        assert!(r.needs_l7());
        assert!(rule(1, &[], MsgAction::Hold).needs_l7());
        assert!(
            !rule(
                1,
                &[],
                MsgAction::Delay {
                    delay: Dist::Fixed { ms: 1.0 }
                }
            )
            .needs_l7()
        );
    }

    #[test]
    fn connection_rules() {
        let rules = [
            rule(1, &[("a", "b")], MsgAction::Reset),
            rule(2, &[("a", "b")], MsgAction::Bandwidth { bytes_per_s: 100 }),
            rule(3, &[("a", "b")], MsgAction::Bandwidth { bytes_per_s: 50 }),
        ];
        assert!(resets(&rules, "b", "a"));
        assert!(!resets(&rules, "a", "c"));
        assert_eq!(bandwidth(&rules, "a", "b"), Some(50));
        assert_eq!(bandwidth(&rules, "b", "a"), None);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            decide(&rules, &msg("a", "b", "x"), &mut rng),
            Fate::default()
        );
    }
}
