//! The invariants every decision keeps: the library's own check
//! (src/policy/invariants.rs, shared with the fuzz targets), on a
//! generated question.

use proptest::prelude::*;
use rendition::policy::document::PolicyDocument;
use rendition::policy::{Decision, Query, invariants};

use super::asks::Ask;
use super::now;

pub(super) fn check_invariants(doc: &PolicyDocument, ask: &Ask, d: &Decision) -> Result<(), TestCaseError> {
    let q = Query {
        purpose: ask.purpose,
        principal: &ask.principal,
        asset: &ask.asset,
        request: &ask.request,
        now: now(),
    };
    invariants::check(doc, &q, d).map_err(TestCaseError::fail)
}
