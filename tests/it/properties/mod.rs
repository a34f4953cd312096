//! Invariants of the resolver over random policy trees and principals.
//!
//! The generator builds valid policies of up to eight nodes (nested or as a
//! flat list with `parent` links), random roles, users, groups and shares,
//! and asks several random questions of each. The checks read the policy
//! document directly, with a naive walk of the tree, not the resolver's own
//! precomputed settings.
//!
//! `generators` makes the policies, `asks` the questions; the naive reading
//! and the checks every decision must pass are the library's own
//! (`rendition::policy::invariants`, shared with the fuzz targets); the
//! properties themselves are here. Their regression seeds are in
//! `tests/proptest-regressions/properties/mod.txt` (proptest names the file
//! after this one).

mod asks;
mod diffs;
mod generators;
mod invariants;
mod replays;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use rendition::job::Principal;
use rendition::policy::document::{Access, Collection, InheritMode, Marks, PolicyDocument, Visibility};
use rendition::policy::{Decision, DownloadLimits, Limit, Policy, Query, resolve};

use asks::Ask;
use generators::{ROLES, case, limits};
use invariants::check_invariants;
use rendition::policy::invariants::{count_nodes, index, is_within, mode, native_source};

const CASES: u32 = 10_000;

fn now() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

/// The question an ask puts, judged at [`now`].
fn query(ask: &Ask) -> Query<'_> {
    Query {
        purpose: ask.purpose,
        principal: &ask.principal,
        asset: &ask.asset,
        request: &ask.request,
        now: now(),
    }
}

fn decide(policy: &Policy, ask: &Ask) -> Decision {
    resolve(policy, &query(ask))
}

fn decided_limit(d: &Decision) -> Limit {
    d.limit.map_or(Limit::None, |c| c.as_limit())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, max_global_rejects: 50_000, ..ProptestConfig::default() })]

    /// Every generated policy is valid, and every decision keeps the invariants.
    #[test]
    fn decisions_never_exceed_what_the_policy_allows((doc, asks) in case()) {
        let policy = Policy::from_document(doc.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The policy survives a JSON round trip with the same decisions.
        let again = Policy::parse(&serde_json::to_string(&doc).unwrap(), rendition::policy::DocFormat::Json).unwrap();
        for ask in &asks {
            let d = decide(&policy, ask);
            check_invariants(&doc, ask, &d)?;
            prop_assert_eq!(decide(&again, ask), d);
        }
    }

    /// Inheriting from an ancestor decides exactly as copying its settings.
    #[test]
    fn inheriting_equals_copying_the_ancestor((doc, asks) in case(), pick in any::<usize>()) {
        let nodes = index(&doc);
        let mut inheriting: Vec<&str> = nodes.keys().copied().filter(|id| mode(&nodes, id) == InheritMode::Inherit).collect();
        inheriting.sort();
        prop_assume!(!inheriting.is_empty());
        let x = inheriting[pick % inheriting.len()].to_string();
        let source = native_source(&nodes, &x).to_string();
        // Only a chain of plain `inherit` nodes copies the source verbatim.
        let mut at = x.clone();
        while at != source {
            prop_assume!(mode(&nodes, &at) == InheritMode::Inherit);
            at = nodes[at.as_str()].1.unwrap().to_string();
        }
        let copied = copy_settings(&doc, &x, nodes[source.as_str()].0);
        let (before, after) = (Policy::from_document(doc.clone()).unwrap(), Policy::from_document(copied).unwrap());
        for ask in &asks {
            // A password names a collection; one above x no longer reaches x's subtree.
            if let Principal::Password { collection } = &ask.principal
                && is_within(&nodes, &x, collection) && collection != &x {
                continue;
            }
            let (a, b) = (decide(&before, ask), decide(&after, ask));
            prop_assert_eq!(
                (a.allowed, a.limit, a.watermark, a.clamped, &a.role, a.delivery, &a.targets, a.rule),
                (b.allowed, b.limit, b.watermark, b.clamped, &b.role, b.delivery, &b.targets, b.rule),
                "x={} source={}: {} | {}", x, source, a.reason, b.reason
            );
        }
    }

    /// Lowering any limit never raises a decision; adding a watermark never removes one.
    #[test]
    fn tightening_a_policy_never_loosens_a_decision((doc, asks) in case(), pick in any::<usize>(), cut in limits(), mark in any::<usize>()) {
        let before = Policy::from_document(doc.clone()).unwrap();
        let tighter = Policy::from_document(tighten(&doc, pick, &cut)).unwrap();
        let marked = Policy::from_document(add_watermark(&doc, mark)).unwrap();
        for ask in &asks {
            let (a, b, c) = (decide(&before, ask), decide(&tighter, ask), decide(&marked, ask));
            prop_assert!(!b.allowed || a.allowed, "tightening allowed a denied request: {}", b.reason);
            prop_assert!(decided_limit(&b) <= decided_limit(&a), "tightening raised {:?} to {:?}: {}", a.limit, b.limit, b.reason);
            prop_assert!(!c.allowed || a.allowed, "a watermark allowed a denied request: {}", c.reason);
            prop_assert!(!(a.allowed && c.allowed && a.watermark) || c.watermark, "a watermark removed one: {}", c.reason);
            prop_assert!(!(a.allowed && c.allowed && a.forensic) || c.forensic, "a mark removed a forensic one: {}", c.reason);
        }
    }

    /// A revoked, expired or unverified share always denies, whatever else holds.
    #[test]
    fn bad_shares_always_deny((doc, asks) in case(), which in any::<usize>(), how in 0u8..3) {
        prop_assume!(!doc.shares.is_empty());
        let mut doc = doc;
        let i = which % doc.shares.len();
        match how {
            0 => doc.shares[i].revoked = true,
            1 => doc.shares[i].expires_at = Some(now() - Duration::seconds(1)),
            _ => doc.shares[i].verified = false,
        }
        let policy = Policy::from_document(doc.clone()).unwrap();
        let share = &doc.shares[i];
        for ask in &asks {
            let ask = Ask { principal: Principal::Share { share: share.id.clone(), email: share.email.clone() }, ..ask.clone() };
            let d = decide(&policy, &ask);
            prop_assert!(!d.allowed, "bad share admitted: {}", d.reason);
        }
    }
}

/// `doc` with node `x` made native and given `source`'s settings.
fn copy_settings(doc: &PolicyDocument, x: &str, source: &Collection) -> PolicyDocument {
    let mut doc = doc.clone();
    visit_mut(&mut doc.collections, &mut |c| {
        if c.id == x {
            c.inherit = Some(InheritMode::Native);
            c.visibility = Some(source.visibility.unwrap_or(Visibility::WithPermission));
            c.access = Some(source.access.unwrap_or(Access::People));
            c.password_sha256 = source.password_sha256.clone();
            c.download = Some(source.download.unwrap_or(DownloadLimits::NOTHING));
            c.invited = source.invited.clone();
            c.watermark = source.watermark;
        }
    });
    doc
}

/// `doc` with one node's (or role's) limits cut type by type.
fn tighten(doc: &PolicyDocument, pick: usize, cut: &DownloadLimits) -> PolicyDocument {
    let mut doc = doc.clone();
    let lower = |d: &DownloadLimits| DownloadLimits {
        image: d.image.min(cut.image),
        video: d.video.min(cut.video),
        audio: d.audio.min(cut.audio),
        audio_seconds: match (d.audio_seconds, cut.audio_seconds) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        other: d.other && cut.other,
    };
    let n = count_nodes(&doc.collections);
    if pick.is_multiple_of(2) {
        let role = doc.roles.values_mut().nth(pick / 2 % ROLES.len()).unwrap();
        role.download = Some(role.download.as_ref().map_or(*cut, lower));
    } else {
        let target = format!("n{}", pick / 2 % n);
        visit_mut(&mut doc.collections, &mut |c| {
            if c.id == target {
                c.download = c.download.as_ref().map(lower);
            }
        });
    }
    doc
}

/// `marks` with the visible or the forensic mark added.
fn plus(marks: Marks, forensic: bool) -> Marks {
    match (marks.visible() || !forensic, marks.forensic() || forensic) {
        (true, true) => Marks::Both,
        (true, false) => Marks::Visible,
        _ => Marks::Forensic,
    }
}

/// `doc` with a watermark (visible or forensic) asked for by one role,
/// node or share.
fn add_watermark(doc: &PolicyDocument, pick: usize) -> PolicyDocument {
    let mut doc = doc.clone();
    let n = count_nodes(&doc.collections);
    let forensic = pick / 7 % 2 == 1;
    match pick % 3 {
        0 => {
            let role = doc.roles.values_mut().nth(pick / 3 % ROLES.len()).unwrap();
            role.watermark = plus(role.watermark, forensic);
        }
        1 => {
            let target = format!("n{}", pick / 3 % n);
            visit_mut(&mut doc.collections, &mut |c| {
                if c.id == target {
                    c.watermark = Some(true);
                }
            });
        }
        _ if !doc.shares.is_empty() => {
            let i = pick / 3 % doc.shares.len();
            doc.shares[i].watermark = plus(doc.shares[i].watermark, forensic);
        }
        _ => {}
    }
    doc
}

fn visit_mut(list: &mut [Collection], f: &mut impl FnMut(&mut Collection)) {
    for c in list {
        f(c);
        visit_mut(&mut c.children, f);
    }
}

/// The generator reaches every rule and every kind of delivery, so the
/// properties above are not passing on denials alone.
#[test]
fn random_cases_reach_every_rule_and_delivery() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    use rendition::policy::Rule;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(Default::default()));
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let (mut allowed, mut total, mut marked) = (0, 0, 0);
    let mut deliveries = BTreeMap::new();
    for _ in 0..3_000 {
        let (doc, asks) = case().new_tree(&mut runner).unwrap().current();
        let policy = Policy::from_document(doc).unwrap();
        for ask in &asks {
            let d = decide(&policy, ask);
            total += 1;
            allowed += usize::from(d.allowed);
            marked += usize::from(d.watermark);
            *rules.entry(format!("{:?}", d.rule)).or_default() += 1;
            if let Some(delivery) = d.delivery {
                *deliveries.entry(format!("{delivery:?}")).or_insert(0) += 1;
            }
        }
    }
    let all_rules = [
        Rule::Staff,
        Rule::UnknownUser,
        Rule::Visibility,
        Rule::Access,
        Rule::Share,
        Rule::Password,
        Rule::Restricted,
        Rule::Purpose,
        Rule::Watermark,
        Rule::Limit,
        Rule::OnExceed,
    ];
    for rule in all_rules {
        assert!(
            rules.contains_key(&format!("{rule:?}")),
            "no case decided by {rule:?}: {rules:?}"
        );
    }
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(allowed * 8 > total, "only {allowed} of {total} allowed: {rules:?}");
    assert!(marked * 10 > allowed, "only {marked} of {allowed} watermarked");
}
