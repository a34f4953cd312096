//! The resolver: a pure function from (policy, principal, asset, request)
//! to a [`Decision`]. No I/O, no clock: the time a share's expiry is judged
//! against comes in with the query.

use super::Policy;
use super::admit::admit;
use super::decision::{Decision, Rule};
use super::deliver::deliver;
use super::limit::Limit;
use super::query::Query;

/// What may this principal get of this asset?
pub fn resolve(policy: &Policy, q: &Query) -> Decision {
    let Some(node) = policy.node_idx(&q.asset.collection) else {
        let reason = format!(
            "collection {} is not in policy {}",
            q.asset.collection,
            policy.version()
        );
        return Decision::deny(Rule::UnknownCollection, None, reason);
    };
    match admit(policy, q, node) {
        Ok(admissions) => admissions
            .into_iter()
            .map(|admission| deliver(policy, q, admission))
            .reduce(|best, d| if generosity(&d) > generosity(&best) { d } else { best })
            .expect("an admission"),
        Err(denial) => denial,
    }
}

/// Orders decisions for a principal invited several ways ("the most generous
/// invitation"): allowed first, then the larger limit, then no watermark.
fn generosity(d: &Decision) -> (bool, Limit, bool) {
    (d.allowed, d.limit.map_or(Limit::None, |c| c.as_limit()), !d.watermark)
}
