//! The CPU work of a job, off the async runtime: image renders, posters and
//! transcodes on their own rayon pools, and every hash of what they made
//! computed there too. A panic in engine code becomes an `engine_error`
//! answer for that job, never a dead worker.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use super::PipelineError;
use super::lanes::{LanePool, on_pool};
use crate::budget::MemoryBudget;
use crate::isolated::{EnginePool, EngineSettings};
use crate::priority::Priority;
use crate::rendition::probe::Header;
use crate::rendition::{self, EngineLimits, Input, Logo, OutputFormat, RenderError, Size, Spec, decode::Picture};
use crate::result::JobProgress;
use crate::storage::RenditionMeta;
use crate::video::{self, ProxySpec, Sheet, VideoError, VideoLimits};

/// Sources that start so make the image engine panic (unit tests only).
#[cfg(test)]
pub(crate) const PANIC_TRIGGER: &[u8] = b"rendition-test:panic";

/// Where a job's progress messages go, if anywhere.
pub type ProgressSink = UnboundedSender<JobProgress>;

/// One output, encoded and described, ready to store.
pub(super) struct Made {
    pub(super) size: Size,
    pub(super) format: OutputFormat,
    pub(super) bytes: Vec<u8>,
    pub(super) meta: RenditionMeta,
}

pub(super) struct Engines {
    /// Renders, posters and transcodes started (tests count them).
    pub(super) started: std::sync::atomic::AtomicUsize,
    images: LanePool,
    /// Image jobs are probed and rendered in engine processes
    /// (docs/security.md#engine-processes); `None`: in this process.
    pub(super) processes: Option<Arc<EnginePool>>,
    /// Where posters and proxies are made.
    pub(super) video_work: VideoWork,
    video: LanePool,
    pub(super) limits: EngineLimits,
    pub(super) video_limits: VideoLimits,
    pub(super) budget: MemoryBudget,
}

/// What a transcode or a poster holds at its peak (decoder, filter graph,
/// encoder, frames), measured at about 105 MiB for a 1080p ProRes master;
/// not probed per source.
const PROXY_MEMORY: u64 = 160 << 20;
const POSTER_MEMORY: u64 = 96 << 20;

/// Where posters and proxies are made: FFmpeg in this process, or video
/// engine processes (`rendition-video-engine`).
#[derive(Debug, Clone)]
pub enum VideoEngines {
    InProcess(video::InProcess),
    Processes(EngineSettings),
}

pub(super) enum VideoWork {
    Here(video::InProcess),
    Processes(Arc<EnginePool>),
}

/// An image original: in memory, or staged in a local file.
#[derive(Clone)]
pub(super) enum ImageSource {
    Bytes(Arc<Vec<u8>>),
    /// The file, and its directory kept while the render runs.
    File(PathBuf, #[expect(dead_code, reason = "held, never read")] Keep),
}

impl ImageSource {
    fn input(&self) -> Input<'_> {
        match self {
            ImageSource::Bytes(b) => Input::Bytes(b),
            ImageSource::File(path, _) => Input::File(path),
        }
    }

    /// The header of `page`, read off the runtime's threads: a file's
    /// header is read from disk, and a PDF's or a legacy format's is a
    /// child process's answer.
    async fn probe(&self, limits: EngineLimits, page: u32) -> Result<Header, PipelineError> {
        let source = self.clone();
        let probed = tokio::task::spawn_blocking(move || rendition::probe::probe_input(source.input(), &limits, page))
            .await
            .map_err(|e| PipelineError::Panicked(e.to_string()))?;
        Ok(probed?)
    }

    /// The original as an open file for an engine process: the staged file,
    /// or its bytes in an anonymous one.
    fn open(&self) -> Result<std::fs::File, PipelineError> {
        let opened = match self {
            ImageSource::Bytes(b) => crate::isolated::wire::sealed_memory_file("rendition-source", b),
            ImageSource::File(path, _) => std::fs::File::open(path),
        };
        opened.map_err(|e| PipelineError::Render(RenderError::codec(format!("the source for an engine: {e}"), e)))
    }

    /// The bytes of the original the render holds: all of them when in
    /// memory, and a JPEG or HEIF file's too (decoded from memory).
    fn in_memory(&self, header: &Header) -> u64 {
        match self {
            ImageSource::Bytes(b) => b.len() as u64,
            ImageSource::File(path, _) if header.format.decoded_in_memory() => {
                std::fs::metadata(path).map_or(0, |m| m.len())
            }
            ImageSource::File(..) => 0,
        }
    }
}

impl Engines {
    pub(super) fn new(
        threads: usize,
        video_threads: usize,
        limits: EngineLimits,
        video_limits: VideoLimits,
        budget: MemoryBudget,
        (processes, video_engines): (Option<EngineSettings>, VideoEngines),
    ) -> Engines {
        Engines {
            started: Default::default(),
            images: LanePool::new(threads, "render", None),
            processes: processes.map(|settings| Arc::new(EnginePool::new(settings))),
            video_work: match video_engines {
                VideoEngines::InProcess(ffmpeg) => VideoWork::Here(ffmpeg),
                VideoEngines::Processes(settings) => VideoWork::Processes(Arc::new(EnginePool::new(settings))),
            },
            // FFmpeg's stack, not Rust's 2 MiB default (see the constant).
            video: LanePool::new(video_threads, "video", Some(video::THREAD_STACK_BYTES)),
            limits,
            video_limits,
            budget,
        }
    }

    fn count(&self) {
        self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every size of `spec` from one decode of `source`, once the budget
    /// has room for what the header says it will take.
    pub(super) async fn images(
        &self,
        source: ImageSource,
        spec: Spec,
        priority: Priority,
    ) -> Result<Vec<Made>, PipelineError> {
        self.count();
        let limits = self.limits;
        #[cfg(test)]
        if let ImageSource::Bytes(b) = &source
            && b.starts_with(PANIC_TRIGGER)
        {
            return on_pool(&self.images, priority, || panic!("an injected engine panic")).await;
        }
        if let Some(processes) = &self.processes {
            return self.images_in_processes(processes, source, spec, priority).await;
        }
        let header = source.probe(limits, spec.page).await?;
        let room = self
            .budget
            .reserve(rendition::estimate(&header, &spec, source.in_memory(&header)))
            .await?;
        on_pool(&self.images, priority, move || {
            let _room = room;
            let rendered = rendition::render_probed(source.input(), &header, &spec, &limits)?;
            Ok(rendered.into_iter().map(made).collect())
        })
        .await
    }

    /// [`Engines::images`] in an engine process. One that dies under the
    /// job is replaced and the job tried once more in the new one; a
    /// second death answers it `engine_crashed`.
    async fn images_in_processes(
        &self,
        processes: &Arc<EnginePool>,
        source: ImageSource,
        spec: Spec,
        priority: Priority,
    ) -> Result<Vec<Made>, PipelineError> {
        let file = Arc::new(source.open()?);
        let spec = Arc::new(spec);
        once_more_on_crash(|| self.once_in_an_engine(processes, &source, &file, &spec, priority)).await
    }

    /// Probe, reserve, render.
    async fn once_in_an_engine(
        &self,
        processes: &Arc<EnginePool>,
        source: &ImageSource,
        file: &Arc<std::fs::File>,
        spec: &Arc<Spec>,
        priority: Priority,
    ) -> Result<Vec<Made>, PipelineError> {
        let limits = self.limits;
        let (engines, probed, page) = (processes.clone(), file.clone(), spec.page);
        let header = on_pool(&self.images, priority, move || {
            Ok(engines.session()?.probe(&probed, page, &limits)?)
        })
        .await?;
        let memory = rendition::estimate(&header, spec, source.in_memory(&header));
        let room = self.budget.reserve(memory).await?;
        // An engine only while a pool thread runs the job: no more engines
        // than render threads, and none held while the budget is awaited.
        let (engines, file, spec) = (processes.clone(), file.clone(), spec.clone());
        on_pool(&self.images, priority, move || {
            let _room = room;
            let rendered = engines.session()?.render(&file, &header, &spec, &limits, memory)?;
            Ok(rendered.into_iter().map(made).collect())
        })
        .await
    }

    /// The original as it is, described (size from its header, sha256).
    pub(super) async fn describe(
        &self,
        source: Arc<Vec<u8>>,
        priority: Priority,
    ) -> Result<RenditionMeta, PipelineError> {
        on_pool(&self.images, priority, move || {
            let (width, height) = image_size(&source).unzip();
            Ok(RenditionMeta {
                bytes: source.len() as u64,
                sha256: sha256(&source),
                width,
                height,
                watermarked: false,
            })
        })
        .await
    }

    /// The policy's logo, decoded and named (once per policy version).
    pub(super) async fn logo(&self, bytes: Vec<u8>, key: String) -> Result<Logo, PipelineError> {
        // Once per policy version, and every job waits for it.
        on_pool(&self.images, Priority::Interactive, move || {
            let decoded =
                image::load_from_memory(&bytes).map_err(|e| RenderError::codec(format!("logo {key}: {e}"), e))?;
            Ok(Logo::new(decoded.to_rgba8()))
        })
        .await
    }

    /// Whether `bytes` still are what `sha256` names (a check before publishing).
    pub(super) async fn matches(
        &self,
        bytes: Arc<Vec<u8>>,
        sha: String,
        priority: Priority,
    ) -> Result<bool, PipelineError> {
        on_pool(&self.images, priority, move || Ok(sha256(&bytes) == sha)).await
    }

    /// A poster frame of the video file at `input`, then the image rules,
    /// on the video pool.
    pub(super) async fn poster(
        &self,
        (input, keep): (PathBuf, Keep),
        spec: Spec,
        priority: Priority,
    ) -> Result<Vec<Made>, PipelineError> {
        self.count();
        let (video_limits, limits) = (self.video_limits, self.limits);
        let room = Arc::new(self.budget.reserve(POSTER_MEMORY).await?);
        let engines = match &self.video_work {
            VideoWork::Here(ffmpeg) => {
                let poster = ffmpeg.poster;
                return on_pool(&self.video, priority, move || {
                    let _hold = (keep, room);
                    let frame = poster(&input, None, &video_limits)?;
                    let picture = Picture::new(image::DynamicImage::ImageRgb8(frame));
                    let rendered = rendition::render_picture(&picture, &spec, &limits)?;
                    Ok(rendered.into_iter().map(made).collect())
                })
                .await;
            }
            VideoWork::Processes(engines) => engines,
        };
        let spec = Arc::new(spec);
        once_more_on_crash(|| {
            let (engines, input, spec, hold) = (
                engines.clone(),
                input.clone(),
                spec.clone(),
                (keep.clone(), room.clone()),
            );
            on_pool(&self.video, priority, move || {
                let _hold = hold;
                let rendered = engines
                    .session()?
                    .poster(&input, &spec, (&limits, &video_limits), POSTER_MEMORY)?;
                Ok(rendered.into_iter().map(made).collect())
            })
        })
        .await
    }

    /// A storyboard's sheet of the video at `input` in every size of
    /// `spec`, and the duration its tiles share.
    pub(super) async fn storyboard(
        &self,
        (input, keep): (PathBuf, Keep),
        (spec, sheet): (Spec, Sheet),
        priority: Priority,
    ) -> Result<(Vec<Made>, f64), PipelineError> {
        self.count();
        let (video_limits, limits) = (self.video_limits, self.limits);
        let room = Arc::new(self.budget.reserve(POSTER_MEMORY).await?);
        let engines = match &self.video_work {
            VideoWork::Here(ffmpeg) => {
                let storyboard = ffmpeg.storyboard;
                return on_pool(&self.video, priority, move || {
                    let _hold = (keep, room);
                    let board = storyboard(&input, sheet, &video_limits)?;
                    let picture = Picture::new(image::DynamicImage::ImageRgb8(board.image));
                    let rendered = rendition::render_picture(&picture, &spec, &limits)?;
                    Ok((rendered.into_iter().map(made).collect(), board.duration_s))
                })
                .await;
            }
            VideoWork::Processes(engines) => engines,
        };
        let spec = Arc::new(spec);
        once_more_on_crash(|| {
            let (engines, input, spec, hold) = (
                engines.clone(),
                input.clone(),
                spec.clone(),
                (keep.clone(), room.clone()),
            );
            on_pool(&self.video, priority, move || {
                let _hold = hold;
                let (rendered, duration) =
                    engines
                        .session()?
                        .storyboard(&input, (&spec, sheet), (&limits, &video_limits), POSTER_MEMORY)?;
                Ok((rendered.into_iter().map(made).collect(), duration))
            })
        })
        .await
    }

    /// A watermarked H.264/AAC proxy of the file at `input`, written to
    /// `output`, reporting progress to `sink`.
    pub(super) async fn proxy(
        &self,
        (input, output, keep): (PathBuf, PathBuf, Keep),
        spec: ProxySpec,
        job_id: String,
        sink: Option<ProgressSink>,
        priority: Priority,
    ) -> Result<RenditionMeta, PipelineError> {
        self.count();
        let limits = self.video_limits;
        let room = Arc::new(self.budget.reserve(PROXY_MEMORY).await?);
        let report = move |p: video::Progress| {
            if let Some(sink) = &sink {
                let _ = sink.send(JobProgress::new(&job_id, p.percent, p.frames, p.fps));
            }
        };
        let engines = match &self.video_work {
            VideoWork::Here(ffmpeg) => {
                let transcode = ffmpeg.transcode;
                return on_pool(&self.video, priority, move || {
                    let _hold = (keep, room);
                    let mut report = report;
                    let done = transcode(&input, &output, &spec, &limits, &mut report)?;
                    described(&output, (done.width, done.height), spec.watermark.is_some())
                })
                .await;
            }
            VideoWork::Processes(engines) => engines,
        };
        let (spec, report) = (Arc::new(spec), Arc::new(report));
        once_more_on_crash(|| {
            let (engines, spec, report) = (engines.clone(), spec.clone(), report.clone());
            let (input, output, hold) = (input.clone(), output.clone(), (keep.clone(), room.clone()));
            on_pool(&self.video, priority, move || {
                let _hold = hold;
                let done = engines
                    .session()?
                    .proxy((&input, &output), &spec, &limits, PROXY_MEMORY, &mut |p| report(p))?;
                described(&output, (done.width, done.height), spec.watermark.is_some())
            })
        })
        .await
    }

    /// A file as it is (an original too large to hold), described: size,
    /// sha256 and an image's pixel size, read a block at a time.
    pub(super) async fn describe_file(
        &self,
        (path, keep): (PathBuf, Keep),
        priority: Priority,
    ) -> Result<RenditionMeta, PipelineError> {
        on_pool(&self.video, priority, move || {
            let _keep = keep;
            describe_file(&path)
        })
        .await
    }
}

/// Holds a job's temporary directory while the pool works in it.
pub(super) type Keep = Arc<tempfile::TempDir>;

/// Runs `attempt`; when an engine process died under it, the pool has
/// replaced it and the job is tried once more in the new one (a second
/// death answers it `engine_crashed`).
async fn once_more_on_crash<T, F>(attempt: impl Fn() -> F) -> Result<T, PipelineError>
where
    F: std::future::Future<Output = Result<T, PipelineError>>,
{
    match attempt().await {
        Err(PipelineError::Render(RenderError::Crashed { stage, how })) => {
            tracing::warn!(
                stage,
                how,
                "an engine process died; the job is tried once more in a new one"
            );
            attempt().await
        }
        other => other,
    }
}

/// A proxy on disk, described: its bytes and sha256, the frame size the
/// transcode made and whether the spec marked it.
fn described(output: &Path, (width, height): (u32, u32), watermarked: bool) -> Result<RenditionMeta, PipelineError> {
    let mut meta = describe_file(output)?;
    // An audio proxy has no frame size.
    let frame = |n: u32| (n > 0).then_some(n);
    (meta.width, meta.height, meta.watermarked) = (frame(width), frame(height), watermarked);
    Ok(meta)
}

fn describe_file(path: &Path) -> Result<RenditionMeta, PipelineError> {
    let failed = |e: std::io::Error| VideoError::Engine(format!("reading {}: {e}", path.display()));
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let (mut hasher, mut block, mut bytes) = (Sha256::new(), vec![0; 1 << 20], 0);
    let mut size = None;
    loop {
        let n = file.read(&mut block).map_err(failed)?;
        if n == 0 {
            break;
        }
        // An image's size is in its header, which the first block holds.
        if bytes == 0 {
            size = image_size(&block[..n]);
        }
        hasher.update(&block[..n]);
        bytes += n as u64;
    }
    let (width, height) = size.unzip();
    Ok(RenditionMeta {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        width,
        height,
        watermarked: false,
    })
}

fn made(r: rendition::Rendered) -> Made {
    let meta = RenditionMeta {
        bytes: r.bytes.len() as u64,
        sha256: sha256(&r.bytes),
        width: Some(r.width),
        height: Some(r.height),
        watermarked: r.watermarked,
    };
    Made {
        size: r.size,
        format: r.format,
        bytes: r.bytes,
        meta,
    }
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The pixel size of an image file, from its header; `None` for anything else.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Coded;

    #[tokio::test]
    async fn a_panic_on_the_pool_is_an_engine_error_and_the_pool_lives_on() {
        let engines = Engines::new(
            1,
            1,
            EngineLimits::default(),
            VideoLimits::default(),
            MemoryBudget::new(1 << 30),
            (None, VideoEngines::InProcess(video::InProcess::FFMPEG)),
        );
        let panicked = on_pool(
            &engines.images,
            Priority::Interactive,
            || -> Result<(), PipelineError> { panic!("a decoder bug") },
        )
        .await;
        let error = panicked.unwrap_err();
        assert_eq!(error.code(), "engine_error");
        assert!(error.to_string().contains("a decoder bug"), "{error}");
        // The same one-thread pool still runs work.
        let hero = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/originals/hero.jpg")).unwrap();
        let spec = Spec {
            sizes: vec![Size::LongEdge(64)],
            format: OutputFormat::Jpeg,
            quality: 80,
            watermark: None,
            page: 1,
            metadata: Default::default(),
            colour: Default::default(),
            dpi: None,
            forensic: None,
        };
        let made = engines
            .images(ImageSource::Bytes(Arc::new(hero)), spec, Priority::Bulk)
            .await
            .unwrap();
        assert_eq!(made[0].meta.width, Some(64));
        assert_eq!(made[0].meta.sha256, sha256(&made[0].bytes));
    }

    /// The stack the calling thread was started with.
    fn stack_size() -> usize {
        // SAFETY: this thread's attributes, read into a local and freed.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
            let mut size = 0;
            assert_eq!(libc::pthread_attr_getstacksize(&attr, &mut size), 0);
            libc::pthread_attr_destroy(&mut attr);
            size
        }
    }

    #[tokio::test]
    async fn video_threads_have_at_least_the_stack_ffmpeg_threads_get() {
        let engines = Engines::new(
            1,
            1,
            EngineLimits::default(),
            VideoLimits::default(),
            MemoryBudget::new(1 << 30),
            (None, VideoEngines::InProcess(video::InProcess::FFMPEG)),
        );
        let stack = on_pool(&engines.video, Priority::Bulk, || Ok(stack_size()))
            .await
            .unwrap();
        // 8 MiB: glibc's default for a thread (and FFmpeg's own threads).
        assert!(stack >= 8 << 20, "{stack} bytes");
    }
}
