//! `policy diff` held to the resolver: on pairs of generated policies (one
//! part of a policy swapped for another's, or two unrelated policies),
//! every generated question whose answer differs appears in the diff, and
//! every change the diff lists is a real difference when asked again.

use proptest::prelude::*;
use rendition::job::Purpose;
use rendition::policy::diff::{Change, Who, diff};
use rendition::policy::document::PolicyDocument;
use rendition::policy::{Decision, Policy, Query, resolve};

use super::asks::{Ask, ask};
use super::generators::policy_doc;
use super::{decide, now};
use rendition::policy::invariants::count_nodes;

/// What is delivered, without why (the diff's comparison).
fn delivered(d: &Decision) -> impl PartialEq + std::fmt::Debug + '_ {
    (d.allowed, d.limit, (d.watermark, d.forensic), d.delivery, &d.targets)
}

/// `old` with one part replaced by `other`'s (or all of it, for `part` 5).
fn changed(old: &PolicyDocument, other: &PolicyDocument, part: u8) -> PolicyDocument {
    let mut new = old.clone();
    match part {
        0 => new.roles = other.roles.clone(),
        1 => new.users = other.users.clone(),
        2 => new.collections = other.collections.clone(),
        3 => new.shares = other.shares.clone(),
        4 => new.proxy = other.proxy,
        _ => new = other.clone(),
    }
    new.version = old.version + 1;
    new
}

fn pair() -> impl Strategy<Value = (PolicyDocument, PolicyDocument, Vec<Ask>)> {
    (policy_doc(), policy_doc(), 0u8..6).prop_flat_map(|(old, other, part)| {
        let new = changed(&old, &other, part);
        let nodes = count_nodes(&old.collections).max(count_nodes(&new.collections));
        let shares = old.shares.len().max(new.shares.len());
        (Just(old), Just(new), prop::collection::vec(ask(nodes, shares), 24))
    })
}

/// Whether `change` is about this question.
fn covers(change: &Change, who: &Who, ask: &Ask) -> bool {
    let place = &change.place;
    // Only publishing tells generated assets apart; the diff asks others once.
    let generated = ask.purpose == Purpose::Publish && ask.asset.generated;
    &change.who == who
        && place.node == ask.asset.collection
        && place.media == ask.asset.media
        && place.restricted == ask.asset.restricted
        && place.generated == generated
        && place.purpose == ask.purpose
}

/// The change's own question, asked again of `policy` (without the
/// diff's helper users, so only principals a job can name are re-asked).
fn ask_again(policy: &Policy, change: &Change) -> Option<Decision> {
    let principal = change.who.job_principal()?;
    let (asset, request) = (change.place.asset(), change.place.probe.request());
    let q = Query {
        purpose: change.place.purpose,
        principal: &principal,
        asset: &asset,
        request: &request,
        now: now(),
    };
    Some(resolve(policy, &q))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, max_global_rejects: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_diff_lists_exactly_the_decisions_that_change((old, new, asks) in pair()) {
        let old = Policy::from_document(old).unwrap();
        // A swapped part may not fit the rest (a share scoped to a node
        // the other tree lacks): not a policy, nothing to diff.
        let new = Policy::from_document(new);
        prop_assume!(new.is_ok());
        let new = new.unwrap();
        let diff = diff(&old, &new, now());
        for ask in &asks {
            let (before, after) = (decide(&old, ask), decide(&new, ask));
            if delivered(&before) == delivered(&after) {
                continue;
            }
            let who = Who::of(&ask.principal, &old, &new);
            prop_assert!(
                diff.changes.iter().any(|c| covers(c, &who, ask)),
                "missing from the diff: {} asking {:?} of {:?} at {}: {} | {}",
                who.label(), ask.request, ask.asset.media, ask.asset.collection, before.reason, after.reason
            );
        }
        for change in &diff.changes {
            prop_assert_ne!(&change.before.delivered(), &change.after.delivered());
            if let (Some(before), Some(after)) = (ask_again(&old, change), ask_again(&new, change)) {
                prop_assert_ne!(delivered(&before), delivered(&after), "{}: {:?}", change.who.label(), change.place);
            }
        }
        // A policy against itself changes nothing.
        prop_assert!(same(&new));
    }
}

fn same(policy: &Policy) -> bool {
    diff(policy, policy, now()).changes.is_empty()
}
