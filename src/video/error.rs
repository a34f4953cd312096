//! What can go wrong making a video rendition. All of it is the input's
//! fault or a deadline, so nothing here is retried: a second run would
//! meet the same file.

use crate::error::{Coded, ErrorCode};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoError {
    /// Not a container FFmpeg recognises, or no video stream in it.
    #[error("unsupported format: {0}")]
    NotVideo(String),
    /// A file FFmpeg would read with a demuxer outside the allow-list (a
    /// playlist, a manifest, a script naming other files): never opened.
    #[error(
        "unsupported format: FFmpeg reads the file as {0}, not an allowed media container \
         (playlists, manifests and scripts naming other files are refused)"
    )]
    NotAllowed(String),
    /// A video stream no decoder here can read.
    #[error("unsupported format: no decoder for codec {0}")]
    UnsupportedCodec(String),
    #[error("corrupt input: {0}")]
    Corrupt(String),
    #[error("too large: {what} is {value}, the limit is {max}")]
    TooLarge { what: &'static str, value: u64, max: u64 },
    #[error("deadline exceeded: the job ran for more than {0} s")]
    Deadline(u64),
    /// FFmpeg refused our own settings (a missing encoder, a bad graph):
    /// the machine's fault, reported rather than retried forever.
    #[error("video engine: {0}")]
    Engine(String),
    /// FFmpeg could not read the source; its error is kept as the source.
    #[error("corrupt input: {doing}: {source}")]
    Unreadable {
        doing: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    /// FFmpeg refused our own setup; its error is kept as the source.
    #[error("video engine: {doing}: {source}")]
    Ffmpeg {
        doing: String,
        #[source]
        source: ffmpeg_next::Error,
    },
}

impl Coded for VideoError {
    fn code(&self) -> ErrorCode {
        match self {
            VideoError::NotVideo(_) | VideoError::NotAllowed(_) | VideoError::UnsupportedCodec(_) => {
                ErrorCode::UnsupportedFormat
            }
            VideoError::Corrupt(_) | VideoError::Unreadable { .. } => ErrorCode::CorruptInput,
            VideoError::TooLarge { .. } => ErrorCode::TooLarge,
            VideoError::Deadline(_) => ErrorCode::DeadlineExceeded,
            VideoError::Engine(_) | VideoError::Ffmpeg { .. } => ErrorCode::EngineError,
        }
    }
}

impl VideoError {
    /// An FFmpeg failure in our own setup, with what we were doing.
    pub(crate) fn engine(doing: &str) -> impl Fn(ffmpeg_next::Error) -> VideoError + '_ {
        move |source| VideoError::Ffmpeg {
            doing: doing.to_string(),
            source,
        }
    }

    /// An FFmpeg failure reading the source, with what we were doing.
    pub(crate) fn corrupt(doing: &str) -> impl Fn(ffmpeg_next::Error) -> VideoError + '_ {
        move |source| VideoError::Unreadable {
            doing: doing.to_string(),
            source,
        }
    }
}
