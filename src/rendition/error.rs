//! What can go wrong inside the engine; all of it is the input's fault,
//! so nothing here is retried.

use crate::error::{Coded, Disposition};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    #[error("too large: {what} is {value}, the limit is {max}")]
    TooLarge { what: &'static str, value: u64, max: u64 },
    #[error("corrupt input: {0}")]
    CorruptInput(String),
}

impl Coded for RenderError {
    fn code(&self) -> &'static str {
        match self {
            RenderError::UnsupportedFormat(_) => "unsupported_format",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::CorruptInput(_) => "corrupt_input",
        }
    }
    fn disposition(&self) -> Disposition {
        Disposition::Reject
    }
}

impl RenderError {
    pub(crate) fn corrupt(e: impl std::fmt::Display) -> RenderError {
        RenderError::CorruptInput(e.to_string())
    }
}
