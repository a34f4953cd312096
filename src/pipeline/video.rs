//! Video jobs in the pipeline: proxies (transcoded on the video pool) and
//! posters (a frame from the video pool, then the image rules).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedSender;

use super::placement::{Placement, put_options, stats};
use super::{Pipeline, PipelineError};
use crate::job::Job;
use crate::policy::{Decision, Policy, Target};
use crate::rendition::{self, EngineLimits, Rendered, Spec, WatermarkSpec, decode::Picture};
use crate::result::{JobProgress, RenditionRecord};
use crate::storage::Store;
use crate::video::{self, ProxySpec, VideoError, VideoLimits};

/// Where a job's progress messages go, if anywhere.
pub type ProgressSink = UnboundedSender<JobProgress>;

/// The pool transcodes run on, apart from the image pool, and their limits.
pub struct VideoEngine {
    pub pool: Arc<rayon::ThreadPool>,
    pub limits: VideoLimits,
}

impl VideoEngine {
    /// One transcode at a time per worker by default: x264 and the decoder
    /// use every core on their own.
    pub fn new(threads: usize, limits: VideoLimits) -> VideoEngine {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("video-{i}"))
            .build()
            .expect("the video pool starts");
        VideoEngine {
            pool: Arc::new(pool),
            limits,
        }
    }

    /// Runs `work` on the source written to a temporary file, on the video pool.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        source: Arc<Vec<u8>>,
        work: impl FnOnce(&Path, &Path) -> Result<T, PipelineError> + Send + 'static,
    ) -> Result<T, PipelineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let run = || {
                let dir = tempfile::tempdir().map_err(|e| VideoError::Engine(format!("temporary directory: {e}")))?;
                let input = dir.path().join("source");
                std::fs::write(&input, &*source).map_err(|e| VideoError::Engine(format!("temporary file: {e}")))?;
                work(&input, dir.path())
            };
            let _ = tx.send(run());
        });
        rx.await
            .map_err(|_| VideoError::Engine("the video task panicked".into()))?
    }
}

impl<S: Store> Pipeline<S> {
    /// A proxy or a sized video: transcoded unless already stored.
    pub(super) async fn make_video(
        &self,
        job: &Job,
        decision: &Decision,
        watermark: Option<WatermarkSpec>,
        place: &Placement,
        expires_at: DateTime<Utc>,
        progress: Option<&ProgressSink>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        let max_height = match decision.targets.first() {
            Some(Target::MaxHeight(n)) => Some(*n),
            _ => None,
        };
        let spec = ProxySpec { max_height, watermark };
        let key = format!("{}/{}.mp4", place.prefix, spec.digest(&place.source_digest));
        if let Some(info) = self.renditions.head(&key).await? {
            return Ok(vec![self.record(&key, &info, expires_at, true).await?]);
        }
        let source = self.video_source(job, place).await?;
        let limits = self.video.limits;
        let sink = progress.cloned();
        let job_id = job.job_id.clone();
        let (bytes, made) = self
            .video
            .run(source, move |input, dir| {
                let output = dir.join("proxy.mp4");
                let mut report = |p: video::Progress| {
                    if let Some(sink) = &sink {
                        let _ = sink.send(JobProgress::new(&job_id, p.percent, p.frames, p.fps));
                    }
                };
                let made = video::transcode(input, &output, &spec, &limits, &mut report)?;
                let bytes =
                    std::fs::read(&output).map_err(|e| VideoError::Engine(format!("reading the proxy: {e}")))?;
                Ok((bytes, made))
            })
            .await?;
        let meta = stats(&bytes, Some((made.width, made.height)), made.watermarked);
        let options = put_options("video/mp4", &place.filename("mp4"), meta);
        let info = self.put(&key, bytes, options).await?;
        Ok(vec![self.record(&key, &info, expires_at, false).await?])
    }

    /// The poster frame, sized, watermarked and encoded by the image engine.
    pub(super) async fn render_poster(&self, source: Arc<Vec<u8>>, spec: Spec) -> Result<Vec<Rendered>, PipelineError> {
        let (video_limits, image_limits): (VideoLimits, EngineLimits) = (self.video.limits, self.limits);
        self.video
            .run(source, move |input, _| {
                let frame = video::poster(input, None, &video_limits)?;
                let picture = Picture {
                    image: image::DynamicImage::ImageRgb8(frame),
                    credits: Default::default(),
                };
                Ok(rendition::render_picture(&picture, &spec, &image_limits)?)
            })
            .await
    }

    /// A video's bytes, refused before download when over the size limit.
    /// Videos bypass the source cache: one would evict every image.
    pub(super) async fn video_source(&self, job: &Job, place: &Placement) -> Result<Arc<Vec<u8>>, PipelineError> {
        let max = self.video.limits.max_source_bytes;
        if place.source_size > max {
            return Err(VideoError::TooLarge {
                what: "source bytes",
                value: place.source_size,
                max,
            }
            .into());
        }
        match self.originals.get(&job.asset.source).await {
            Err(crate::storage::StoreError::NotFound(key)) => Err(PipelineError::MissingSource(key)),
            other => Ok(Arc::new(other?)),
        }
    }
}

/// The watermark a decision asks for, with the policy's text and logo.
pub(super) fn watermark_of(policy: &Policy, job: &Job, decision: &Decision) -> Option<WatermarkSpec> {
    decision
        .watermark
        .then(|| WatermarkSpec::from_policy(&policy.document().watermark, job.principal.recipient()))
}
