//! What can go wrong inside the engine; all of it is the input's fault,
//! so nothing here is retried.

use std::sync::Arc;

use crate::error::{Coded, Disposition};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    #[error("too large: {what} is {value}, the limit is {max}")]
    TooLarge { what: &'static str, value: u64, max: u64 },
    /// What we found wrong ourselves.
    #[error("corrupt input: {0}")]
    CorruptInput(String),
    /// A decoder, encoder or colour transform refused the bytes; its own
    /// error is kept as the source.
    #[error("corrupt input: {message}")]
    Codec {
        message: String,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl Coded for RenderError {
    fn code(&self) -> &'static str {
        match self {
            RenderError::UnsupportedFormat(_) => "unsupported_format",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::CorruptInput(_) | RenderError::Codec { .. } => "corrupt_input",
        }
    }
    fn disposition(&self) -> Disposition {
        Disposition::Reject
    }
}

impl RenderError {
    /// A codec's error, kept as the source.
    pub(crate) fn corrupt(e: impl std::error::Error + Send + Sync + 'static) -> RenderError {
        RenderError::codec(e.to_string(), e)
    }

    /// A codec's error with what we were doing.
    pub(crate) fn codec(message: String, e: impl std::error::Error + Send + Sync + 'static) -> RenderError {
        RenderError::Codec {
            message,
            source: Arc::new(e),
        }
    }
}
