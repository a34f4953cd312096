//! The video engine (FFmpeg through `ffmpeg-next`): watermarked H.264/AAC
//! MP4 proxies and JPEG posters. Synchronous and CPU-bound like the image
//! engine, with no I/O but local files: async callers run it on the video
//! pool, so a long transcode never holds an image thread.
//!
//! - [`input`]: the one way FFmpeg opens a source (allowed containers, local files).
//! - [`probe`]: what the source is; every limit checked before decoding.
//! - [`graph`]: the filter graphs (upright, scaled, yuv420p; audio to AAC's format).
//! - [`overlay`]: the watermark drawn once per job, blended into each frame.
//! - [`transcode`]: the proxy MP4; [`poster`]: the still; [`storyboard`]:
//!   a sheet of stills for scrubbing.

pub mod error;
mod graph;
pub mod input;
pub mod overlay;
pub mod poster;
pub mod probe;
pub mod storyboard;
pub mod transcode;

use std::sync::Once;
use std::time::{Duration, Instant};

pub use error::VideoError;
pub use poster::poster;
pub use storyboard::{Sheet, Storyboard, storyboard};
pub use transcode::{ProxySpec, Transcoded, transcode};

/// The stack of each video pool thread, where FFmpeg demuxes, filters and
/// (on one CPU) decodes, and a poster's image rules run. FFmpeg is written
/// for the 8 MiB a glibc thread gets (its own threads, the `ffmpeg` CLI's
/// main thread), not the 2 MiB Rust gives a spawned one.
/// Measured: 1080p H.264, HEVC, VP9, ProRes, DNxHD in MXF and MPEG-2 in TS
/// transcode within 128 KiB, decoding on the calling thread. With the files
/// that name other files refused ([`input`]) nothing FFmpeg reads nests
/// without bound (QuickTime atoms and Matroska elements are depth-capped),
/// so twice the 8 MiB is a wide margin; it is address space, committed
/// only as touched.
pub const THREAD_STACK_BYTES: usize = 16 << 20;

/// Bumped when the video engine's output for the same spec changes.
pub const VIDEO_ENGINE_VERSION: u32 = 1;

/// Caps on a video source, checked from its header and again while decoding.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct VideoLimits {
    pub max_duration_s: f64,
    /// Width × height of the stored frames.
    pub max_source_pixels: u64,
    pub max_frames: u64,
    /// Sources are copied to local disk a chunk at a time, so this bounds
    /// disk, not memory; free disk is checked before each copy.
    pub max_source_bytes: u64,
    /// Wall time one job may take, decode to trailer.
    pub deadline: Duration,
}

impl Default for VideoLimits {
    fn default() -> Self {
        VideoLimits {
            max_duration_s: 3.0 * 3600.0,
            max_source_pixels: 8192 * 4320,
            max_frames: 3 * 3600 * 60,
            max_source_bytes: 1 << 40,
            deadline: Duration::from_secs(900),
        }
    }
}

/// How far a transcode has come.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub percent: f32,
    pub frames: u64,
    pub fps: f32,
}

/// FFmpeg in the calling process: the video engine's two entry points, for
/// a pipeline that runs video in-process (the library's default, tests).
/// Reached only through [`InProcess::FFMPEG`], so a program that never
/// names it (the `rendition` worker) links no FFmpeg library.
#[derive(Clone, Copy)]
pub struct InProcess {
    pub poster: fn(&std::path::Path, Option<f64>, &VideoLimits) -> Result<image::RgbImage, VideoError>,
    pub storyboard: fn(&std::path::Path, Sheet, &VideoLimits) -> Result<Storyboard, VideoError>,
    pub transcode: Transcode,
}

/// [`transcode`]'s signature: source, output, spec, limits, progress.
pub type Transcode = fn(
    &std::path::Path,
    &std::path::Path,
    &ProxySpec,
    &VideoLimits,
    &mut dyn FnMut(Progress),
) -> Result<Transcoded, VideoError>;

impl InProcess {
    pub const FFMPEG: InProcess = InProcess {
        poster,
        storyboard,
        transcode,
    };
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FFmpeg in this process")
    }
}

/// The moment a job must give up by.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    pub fn check(&self) -> Result<(), VideoError> {
        if self.passed() {
            return Err(VideoError::Deadline(self.budget.as_secs()));
        }
        Ok(())
    }
}

/// FFmpeg's one-time setup; its own log is silenced because every failure
/// reaches the result with its code and message.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        ffmpeg_next::init().expect("FFmpeg initialises");
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}
