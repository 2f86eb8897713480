//! Partition shapes as grudges: node -> the nodes whose packets it drops. Pure: the nodes,
//! a seeded rng and (for `Leader`) the current leader decide it.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;

use super::fault::{GrudgeSpec, LinkSpec, TargetSpec};

pub type Grudge = BTreeMap<String, Vec<String>>;

/// Every node drops packets from every node outside its own component (symmetric).
pub fn from_components(components: &[Vec<String>]) -> Grudge {
    let mut g = Grudge::new();
    for (i, c) in components.iter().enumerate() {
        let others: Vec<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, o)| o.iter().cloned())
            .collect();
        for n in c {
            if !others.is_empty() {
                g.insert(n.clone(), others.clone());
            }
        }
    }
    g
}

/// The nodes `g` cuts off from a majority: each, with the nodes it still hears (and that
/// hear it), is fewer than a majority of `nodes`. Sorted.
pub fn cut_off(g: &Grudge, nodes: &[String]) -> Vec<String> {
    let drops = |a: &str, b: &str| g.get(a).is_some_and(|v| v.iter().any(|x| x == b));
    let majority = nodes.len() / 2 + 1;
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|a| {
            let heard = nodes
                .iter()
                .filter(|b| *b != *a && !drops(a, b) && !drops(b, a))
                .count();
            heard + 1 < majority
        })
        .cloned()
        .collect();
    out.sort();
    out
}

fn shuffled(nodes: &[String], rng: &mut impl rand::Rng) -> Vec<String> {
    let mut v = nodes.to_vec();
    // Fisher-Yates, written out so the order depends only on the rng's stream.
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

/// The grudge for `spec` over `nodes` (sorted ids), with the (optional) current leader.
pub fn grudge(
    spec: GrudgeSpec,
    nodes: &[String],
    leader: Option<&str>,
    rng: &mut impl rand::Rng,
) -> Grudge {
    let n = nodes.len();
    let half = n / 2; // the smaller side; the majority keeps n - half
    match spec {
        GrudgeSpec::Halves => from_components(&[nodes[..half].to_vec(), nodes[half..].to_vec()]),
        GrudgeSpec::RandomHalves => {
            let s = shuffled(nodes, rng);
            from_components(&[s[..half].to_vec(), s[half..].to_vec()])
        }
        GrudgeSpec::One | GrudgeSpec::Leader => {
            let victim = match (spec, leader) {
                (GrudgeSpec::Leader, Some(l)) if nodes.iter().any(|x| x == l) => l.to_string(),
                _ => nodes[rng.random_range(0..n)].clone(),
            };
            let rest: Vec<String> = nodes.iter().filter(|x| **x != victim).cloned().collect();
            from_components(&[vec![victim], rest])
        }
        GrudgeSpec::MajoritiesRing => {
            // In a shuffled ring, node i hears the majority-sized window of positions
            // around itself and drops the rest: every node sees a majority, no two
            // neighbours see the same one.
            let s = shuffled(nodes, rng);
            let majority = n / 2 + 1;
            let left = (majority - 1) / 2;
            let mut g = Grudge::new();
            for i in 0..n {
                // The window of `majority` ring positions around i.
                let hears: BTreeSet<usize> =
                    (0..majority).map(|d| (i + n - left + d) % n).collect();
                let drops: Vec<String> = (0..n)
                    .filter(|j| !hears.contains(j))
                    .map(|j| s[j].clone())
                    .collect();
                if !drops.is_empty() {
                    g.insert(s[i].clone(), drops);
                }
            }
            g
        }
        GrudgeSpec::Bridge => {
            // [a..] bridge [..b]: the bridge hears both sides, the sides not each other.
            let s = shuffled(nodes, rng);
            if n < 3 {
                return from_components(&[s[..half].to_vec(), s[half..].to_vec()]);
            }
            let mid = n / 2;
            let left = s[..mid].to_vec();
            let right = s[mid + 1..].to_vec();
            let mut g = Grudge::new();
            for l in &left {
                g.insert(l.clone(), right.clone());
            }
            for r in &right {
                g.insert(r.clone(), left.clone());
            }
            g
        }
        GrudgeSpec::OneWay => {
            let s = shuffled(nodes, rng);
            let (a, b) = (s[..half.max(1)].to_vec(), s[half.max(1)..].to_vec());
            a.into_iter().map(|x| (x, b.clone())).collect()
        }
        GrudgeSpec::LeaderLink => {
            let s = shuffled(nodes, rng);
            let l = leader
                .filter(|l| nodes.iter().any(|x| x == l))
                .map_or_else(|| s[0].clone(), str::to_string);
            match s.into_iter().find(|x| *x != l) {
                Some(other) => Grudge::from([(other.clone(), vec![l.clone()]), (l, vec![other])]),
                None => Grudge::new(),
            }
        }
    }
}

/// The nodes a process/loss/clock fault hits, sorted.
pub fn targets(
    spec: TargetSpec,
    nodes: &[String],
    leader: Option<&str>,
    rng: &mut impl rand::Rng,
) -> Vec<String> {
    let n = nodes.len();
    let mut v = match spec {
        TargetSpec::All => nodes.to_vec(),
        TargetSpec::One => vec![nodes[rng.random_range(0..n)].clone()],
        TargetSpec::Leader => match leader {
            Some(l) if nodes.iter().any(|x| x == l) => vec![l.to_string()],
            _ => vec![nodes[rng.random_range(0..n)].clone()],
        },
        TargetSpec::Minority => {
            let k = ((n.saturating_sub(1)) / 2).max(1);
            shuffled(nodes, rng)[..k].to_vec()
        }
        TargetSpec::Majority => shuffled(nodes, rng)[..n / 2 + 1].to_vec(),
        // Without a partition in force (the executor passes that one in: `cut_off`).
        TargetSpec::CutOff => return targets(TargetSpec::Minority, nodes, leader, rng),
    };
    v.sort();
    v
}

/// The directed links (from, to) a message fault acts on.
pub fn links(
    spec: LinkSpec,
    nodes: &[String],
    leader: Option<&str>,
    rng: &mut impl rand::Rng,
) -> BTreeSet<(String, String)> {
    let all = || {
        nodes.iter().flat_map(|a| {
            nodes
                .iter()
                .filter(move |b| *b != a)
                .map(move |b| (a.clone(), b.clone()))
        })
    };
    let touching = |set: &[String]| -> BTreeSet<(String, String)> {
        all()
            .filter(|(a, b)| set.contains(a) || set.contains(b))
            .collect()
    };
    let leader_of = |rng: &mut _| targets(TargetSpec::Leader, nodes, leader, rng);
    match spec {
        LinkSpec::All => all().collect(),
        LinkSpec::Leader => touching(&leader_of(rng)),
        LinkSpec::LeaderOut => {
            let l = leader_of(rng);
            all().filter(|(a, _)| l.contains(a)).collect()
        }
        LinkSpec::LeaderIn => {
            let l = leader_of(rng);
            all().filter(|(_, b)| l.contains(b)).collect()
        }
        LinkSpec::One => touching(&targets(TargetSpec::One, nodes, leader, rng)),
        LinkSpec::Minority => touching(&targets(TargetSpec::Minority, nodes, leader, rng)),
        LinkSpec::OneWay => grudge(GrudgeSpec::OneWay, nodes, leader, rng)
            .into_iter()
            .flat_map(|(hears_not, from)| from.into_iter().map(move |f| (f, hears_not.clone())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn hears(g: &Grudge, a: &str, b: &str) -> bool {
        !g.get(a).is_some_and(|d| d.iter().any(|x| x == b))
    }

    #[test]
    fn cut_off_names_the_side_that_cannot_reach_a_majority() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let halves = grudge(GrudgeSpec::Halves, &ids(5), None, &mut rng);
        assert_eq!(cut_off(&halves, &ids(5)), vec!["n1", "n2"]);
        let alone = grudge(GrudgeSpec::Leader, &ids(3), Some("n2"), &mut rng);
        assert_eq!(cut_off(&alone, &ids(3)), vec!["n2"]);
        // In a bridge partition every node hears a majority: its own side and the bridge.
        let bridge = grudge(GrudgeSpec::Bridge, &ids(5), None, &mut rng);
        assert_eq!(cut_off(&bridge, &ids(5)), Vec::<String>::new());
        assert_eq!(cut_off(&Grudge::new(), &ids(5)), Vec::<String>::new());
        // One-way: the node that no longer hears the others cannot talk to them either.
        let mut one_way = Grudge::new();
        one_way.insert("n1".into(), vec!["n2".into(), "n3".into()]);
        assert_eq!(cut_off(&one_way, &ids(3)), vec!["n1"]);
        // Without a partition in force the target falls back to a random minority.
        assert_eq!(
            targets(TargetSpec::CutOff, &ids(5), None, &mut rng).len(),
            2
        );
    }

    #[test]
    fn halves_is_symmetric_with_majority_side() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let g = grudge(GrudgeSpec::Halves, &ids(5), None, &mut rng);
        assert_eq!(g["n1"], vec!["n3", "n4", "n5"]);
        assert_eq!(g["n5"], vec!["n1", "n2"]);
        for a in ids(5) {
            for b in ids(5) {
                assert_eq!(hears(&g, &a, &b), hears(&g, &b, &a));
            }
        }
    }

    #[test]
    fn leader_isolated() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let g = grudge(GrudgeSpec::Leader, &ids(3), Some("n2"), &mut rng);
        assert_eq!(g["n2"], vec!["n1", "n3"]);
        assert_eq!(g["n1"], vec!["n2"]);
        assert_eq!(g["n3"], vec!["n2"]);
    }

    #[test]
    fn majorities_ring_each_node_hears_a_majority_and_no_global_majority() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let nodes = ids(5);
            let g = grudge(GrudgeSpec::MajoritiesRing, &nodes, None, &mut rng);
            for a in &nodes {
                let heard = nodes.iter().filter(|b| hears(&g, a, b)).count();
                assert_eq!(heard, 3, "seed {seed} node {a}: {g:?}");
            }
            // Not everyone hears the same majority.
            let views: BTreeSet<Vec<&String>> = nodes
                .iter()
                .map(|a| nodes.iter().filter(|b| hears(&g, a, b)).collect())
                .collect();
            assert!(views.len() > 1);
        }
    }

    #[test]
    fn bridge_node_hears_both_sides() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let nodes = ids(5);
        let g = grudge(GrudgeSpec::Bridge, &nodes, None, &mut rng);
        let bridge: Vec<&String> = nodes.iter().filter(|x| !g.contains_key(*x)).collect();
        assert_eq!(bridge.len(), 1);
        for (a, drops) in &g {
            assert_eq!(drops.len(), 2, "{a}: {g:?}");
            assert!(!drops.contains(bridge[0]));
        }
    }

    #[test]
    fn leader_link_cuts_the_link_between_the_leader_and_one_node() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..20 {
            let g = grudge(GrudgeSpec::LeaderLink, &ids(5), Some("n3"), &mut rng);
            assert_eq!(g.len(), 2, "{g:?}");
            let other = g.keys().find(|k| *k != "n3").unwrap().clone();
            assert!(
                !hears(&g, "n3", &other) && !hears(&g, &other, "n3"),
                "{g:?}"
            );
            for n in ids(5).iter().filter(|n| **n != other && *n != "n3") {
                assert!(hears(&g, n, "n3") && hears(&g, &other, n), "{g:?}");
            }
        }
    }

    #[test]
    fn one_way_has_no_reverse_grudge() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let g = grudge(GrudgeSpec::OneWay, &ids(4), None, &mut rng);
        for (a, drops) in &g {
            for b in drops {
                assert!(hears(&g, b, a), "{b} should still hear {a}");
            }
        }
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn link_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = ids(5);
        assert_eq!(links(LinkSpec::All, &n, None, &mut rng).len(), 20);
        let l = links(LinkSpec::Leader, &n, Some("n2"), &mut rng);
        assert_eq!(l.len(), 8);
        assert!(l.iter().all(|(a, b)| a == "n2" || b == "n2"));
        let out = links(LinkSpec::LeaderOut, &n, Some("n2"), &mut rng);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|(a, _)| a == "n2"));
        let one_way = links(LinkSpec::OneWay, &n, None, &mut rng);
        assert_eq!(one_way.len(), 6, "2 x 3 links, one direction");
        for (a, b) in &one_way {
            assert!(!one_way.contains(&(b.clone(), a.clone())));
        }
    }

    #[test]
    fn same_seed_same_choice() {
        let pick = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (
                grudge(GrudgeSpec::RandomHalves, &ids(5), None, &mut rng),
                targets(TargetSpec::Minority, &ids(5), None, &mut rng),
            )
        };
        assert_eq!(pick(42), pick(42));
        let t = targets(
            TargetSpec::Majority,
            &ids(5),
            None,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        assert_eq!(t.len(), 3);
        assert_eq!(
            targets(
                TargetSpec::Leader,
                &ids(3),
                Some("n3"),
                &mut ChaCha8Rng::seed_from_u64(1)
            ),
            vec!["n3"]
        );
    }
}
