//! The invariants every decision keeps: the library's own check
//! (src/policy/invariants.rs, shared with the fuzz targets), on a
//! generated question.

use proptest::prelude::*;
use rendition::policy::document::PolicyDocument;
use rendition::policy::{Decision, invariants};

use super::asks::Ask;

pub(super) fn check_invariants(doc: &PolicyDocument, ask: &Ask, d: &Decision) -> Result<(), TestCaseError> {
    invariants::check(doc, &super::query(ask), d).map_err(TestCaseError::fail)
}
