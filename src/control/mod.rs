//! Signed control messages (docs/control-plane.md): a policy update or a
//! revoke is obeyed only when a key the operator listed signed it. Anyone
//! who may publish jobs may publish on the policy exchange or with the
//! `revoke` routing key too (the broker cannot always tell them apart), so
//! the broker's word is not enough: the signature is.
//!
//! - [`keys`]: the verifying keys from settings (`RENDITION_CONTROL_KEYS`),
//!   signing key files, and new key pairs.
//! - [`message`]: exactly which bytes are signed, signing, and verifying a
//!   policy update or a revoke.
//! - [`plane`]: the keys and the one place policy documents may come from.
//!
//! Pure, except for reading and writing a key file.

pub mod keys;
pub mod message;
pub mod plane;

pub use keys::{ControlKeys, SigningKey};
pub use message::{PolicyBody, REVOKE_DOMAIN, SignedPolicyUpdate, VerifiedUpdate};
pub use plane::{ControlPlane, Place, PolicyLocations};

use crate::error::{Coded, ErrorCode};
use crate::policy::Standing;

/// Why a control message was refused. Each has its own stable code; the
/// code is also the `reason` label of `rendition_control_refused_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("not signed: {0}")]
    Unsigned(String),
    #[error("signed with key {0:?}, which RENDITION_CONTROL_KEYS does not list")]
    UnknownKey(String),
    #[error("the signature does not verify with key {0:?}: the message was altered or signed with another key")]
    BadSignature(String),
    #[error("malformed control message: {0}")]
    Malformed(String),
    #[error("policy location refused: {0}")]
    Location(String),
    #[error("the document at {0} is not the one signed (its SHA-256 differs)")]
    Digest(String),
    #[error(
        "policy {offered} does not follow {current} in force (a replay, out of order, or an epoch skipped: \
         docs/control-plane.md#versions)"
    )]
    Stale { current: Standing, offered: Standing },
    #[error("the document at {location} stands at {found}, not at {signed} as signed")]
    Standing {
        location: String,
        signed: Standing,
        found: Standing,
    },
}

impl Coded for ControlError {
    fn code(&self) -> ErrorCode {
        match self {
            ControlError::Unsigned(_) => ErrorCode::UnsignedControl,
            ControlError::UnknownKey(_) => ErrorCode::UnknownControlKey,
            ControlError::BadSignature(_) => ErrorCode::BadSignature,
            ControlError::Malformed(_) => ErrorCode::InvalidControl,
            ControlError::Location(_) => ErrorCode::PolicyLocationRefused,
            ControlError::Digest(_) => ErrorCode::PolicyDigestMismatch,
            ControlError::Stale { .. } => ErrorCode::StalePolicy,
            ControlError::Standing { .. } => ErrorCode::PolicyDigestMismatch,
        }
    }
}
