//! What can go wrong inside the engine; all of it is the input's fault,
//! so nothing here is retried.

use std::sync::Arc;

use crate::error::{Coded, ErrorCode};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    #[error("too large: {what} is {value}, the limit is {max}")]
    TooLarge { what: &'static str, value: u64, max: u64 },
    /// A decoder's own safety limit refused the file (libheif's maximum
    /// image size, for one).
    #[error("too large: {0}")]
    DecoderLimit(String),
    /// Metadata past its cap (an ICC profile, EXIF, XMP, text, a header):
    /// refused before the decoder holds it (see `caps`). `too_large`, as
    /// for pixels: the file is well-formed but would cost more than a
    /// render is allowed before the budget is asked, and a smaller file
    /// (its metadata stripped) goes through.
    #[error("too large: {what} is larger than {max} bytes")]
    OverCap { what: String, max: u64 },
    /// The job asked for a page the document does not have.
    #[error("no such page: page {page} was asked, the document has {pages}")]
    NoSuchPage { page: u32, pages: u32 },
    /// A document took longer to draw than its deadline.
    #[error("deadline exceeded: {0}")]
    Deadline(String),
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
    /// An engine process's refusal, as it answered it: its code and message.
    #[error("{message}")]
    Answered { code: ErrorCode, message: String },
    /// The engine process died on this source (a signal, an abort, its
    /// CPU limit), at `stage`.
    #[error("the engine process died while it {stage}: {how}")]
    Crashed { stage: &'static str, how: String },
}

impl Coded for RenderError {
    fn code(&self) -> ErrorCode {
        match self {
            RenderError::UnsupportedFormat(_) => ErrorCode::UnsupportedFormat,
            RenderError::TooLarge { .. } | RenderError::DecoderLimit(_) | RenderError::OverCap { .. } => {
                ErrorCode::TooLarge
            }
            RenderError::CorruptInput(_) | RenderError::Codec { .. } => ErrorCode::CorruptInput,
            RenderError::NoSuchPage { .. } => ErrorCode::NoSuchPage,
            RenderError::Deadline(_) => ErrorCode::DeadlineExceeded,
            RenderError::Answered { code, .. } => *code,
            RenderError::Crashed { .. } => ErrorCode::EngineCrashed,
        }
    }
}

impl RenderError {
    /// A codec's error, kept as the source.
    pub(crate) fn corrupt(e: impl std::error::Error + Send + Sync + 'static) -> RenderError {
        RenderError::codec(e.to_string(), e)
    }

    /// libjpeg's warnings about bytes it skipped (junk before a marker, a
    /// malformed ICC segment): the picture is whole, and a more lenient
    /// decoder reads it. A truncated file is not among them.
    pub(crate) fn is_skipped_bytes_warning(&self) -> bool {
        matches!(self, RenderError::Codec { message, .. }
            if message.contains("extraneous bytes before marker") || message.contains("bad ICC marker"))
    }

    /// A decoder could not read the file (a feature it lacks, bytes it
    /// refused), rather than refusing it for its size: another decoder may
    /// try.
    pub(crate) fn is_unreadable(&self) -> bool {
        matches!(
            self,
            RenderError::UnsupportedFormat(_) | RenderError::CorruptInput(_) | RenderError::Codec { .. }
        )
    }

    /// An `image` decoder's error: a feature it lacks is an unsupported
    /// format, its allocation limit a size, anything else damage.
    pub(crate) fn from_image(e: image::ImageError) -> RenderError {
        match e {
            image::ImageError::Unsupported(_) => RenderError::UnsupportedFormat(e.to_string()),
            image::ImageError::Limits(_) => RenderError::DecoderLimit(e.to_string()),
            e => RenderError::corrupt(e),
        }
    }

    /// The same for the `tiff` decoder.
    pub(crate) fn from_tiff(e: tiff::TiffError) -> RenderError {
        match e {
            tiff::TiffError::UnsupportedError(_) => RenderError::UnsupportedFormat(format!("TIFF: {e}")),
            tiff::TiffError::LimitsExceeded => RenderError::DecoderLimit(format!("TIFF: {e}")),
            e => RenderError::corrupt(e),
        }
    }

    /// A codec's error with what we were doing.
    pub(crate) fn codec(message: String, e: impl std::error::Error + Send + Sync + 'static) -> RenderError {
        RenderError::Codec {
            message,
            source: Arc::new(e),
        }
    }
}
