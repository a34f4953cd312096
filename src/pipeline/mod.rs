//! One job, top to bottom: parse → (remembered?) → decide → (cache?) →
//! render → store → sign → (publish) → answer. The CLI and the worker both
//! call [`Pipeline::run_job`]; nothing else orchestrates.

mod memo;
mod placement;
mod publish;
mod sources;
mod video;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::{Coded, Disposition};
use crate::job::{Job, JobError, Media, Principal, Purpose, Rendition};
use crate::policy::{Decision, Delivery, Policy, Query, Rule, resolve};
use crate::rendition::{self, EngineLimits, OutputFormat, RenderError, Rendered, Size, Spec};
use crate::result::{JobResult, RenditionRecord};
use crate::revocation::is_revoked;
use crate::storage::{ObjectInfo, PutOptions, Store, StoreError, content_type_of};
use crate::video::VideoError;
use placement::{Placement, put_options, stats};
pub use sources::SourceCache;
pub use video::{ProgressSink, VideoEngine};

/// The longest a link may live, whatever a job asks (7 days).
pub const MAX_LINK_TTL_S: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error("source {0} does not exist")]
    MissingSource(String),
    #[error("{0}")]
    Unsupported(String),
}

impl Coded for PipelineError {
    fn code(&self) -> &'static str {
        match self {
            PipelineError::Job(e) => e.code(),
            PipelineError::Render(e) => e.code(),
            PipelineError::Store(e) => e.code(),
            PipelineError::Video(e) => e.code(),
            PipelineError::MissingSource(_) => "missing_source",
            PipelineError::Unsupported(_) => "unsupported_format",
        }
    }
    fn disposition(&self) -> Disposition {
        match self {
            PipelineError::Store(e) => e.disposition(),
            _ => Disposition::Reject,
        }
    }
}

/// What a pipeline needs: where originals come from, where renditions go,
/// and the pool that does the CPU work.
pub struct Pipeline<S> {
    pub originals: S,
    pub renditions: S,
    pub limits: EngineLimits,
    pub pool: Arc<rayon::ThreadPool>,
    /// The operator's cap on link lifetimes (at most [`MAX_LINK_TTL_S`]).
    pub max_link_ttl_s: u64,
    pub sources: SourceCache,
    /// Transcodes and posters run here, never on `pool`.
    pub video: VideoEngine,
}

/// A job's answer, and whether it is final.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: JobResult,
    /// A transient failure (storage unreachable…): worth running again later.
    pub retry: bool,
    /// The result was remembered from an earlier delivery of the same job.
    pub replayed: bool,
}

impl Outcome {
    fn final_(result: JobResult) -> Outcome {
        Outcome {
            result,
            retry: false,
            replayed: false,
        }
    }
}

impl<S: Store> Pipeline<S> {
    /// Runs one job and always answers: bad input becomes a `failed` result.
    pub async fn run(&self, policy: &Policy, bytes: &[u8], now: DateTime<Utc>) -> JobResult {
        self.run_job(policy, bytes, now).await.result
    }

    /// Runs one job, or answers its remembered result. Final results are
    /// remembered; transient failures are not (the retry must really run).
    pub async fn run_job(&self, policy: &Policy, bytes: &[u8], now: DateTime<Utc>) -> Outcome {
        self.run_job_reporting(policy, bytes, now, None).await
    }

    /// [`Pipeline::run_job`], sending progress of long work to `progress`.
    pub async fn run_job_reporting(
        &self,
        policy: &Policy,
        bytes: &[u8],
        now: DateTime<Utc>,
        progress: Option<ProgressSink>,
    ) -> Outcome {
        let job = match Job::parse(bytes) {
            Ok(job) => job,
            Err(e) => return Outcome::final_(JobResult::failed(&job_id_of(bytes), policy.version(), None, &e)),
        };
        let memo = memo::memo_key(&job);
        if let Some(result) = memo::recall(&self.renditions, &memo, &job.job_id, now).await {
            return Outcome {
                replayed: true,
                ..Outcome::final_(result)
            };
        }
        let outcome = self.decide_and_produce(policy, &job, now, progress.as_ref()).await;
        if !outcome.retry
            && let Err(e) = memo::remember(&self.renditions, &memo, &outcome.result).await
        {
            // Without the memo a repeat re-renders nothing (cache hits); it
            // only loses `cached: false`. Not worth failing the job for.
            tracing::warn!(job_id = %job.job_id, error = %e, "could not remember the result");
        }
        outcome
    }

    async fn decide_and_produce(
        &self,
        policy: &Policy,
        job: &Job,
        now: DateTime<Utc>,
        progress: Option<&ProgressSink>,
    ) -> Outcome {
        let version = policy.version();
        let failed = |decision, e: &PipelineError| Outcome {
            retry: e.disposition() == Disposition::Retry,
            ..Outcome::final_(JobResult::failed(&job.job_id, version, decision, e))
        };
        match self.revoked_share(job).await {
            Ok(Some(denial)) => return Outcome::final_(JobResult::denied(&job.job_id, version, denial)),
            Ok(None) => {}
            Err(e) => return failed(None, &e),
        }
        let decision = resolve(policy, &Query::of(job, now));
        if !decision.allowed {
            return Outcome::final_(JobResult::denied(&job.job_id, version, decision));
        }
        let records = match self.produce(policy, job, &decision, now, progress).await {
            Ok(records) => records,
            Err(e) => return failed(Some(decision), &e),
        };
        // A revoke that landed while this job rendered must still win.
        match self.revoked_share(job).await {
            Ok(Some(denial)) => {
                for record in &records {
                    let _ = self.renditions.delete(&record.key).await;
                }
                Outcome::final_(JobResult::denied(&job.job_id, version, denial))
            }
            Ok(None) => Outcome::final_(JobResult::done(&job.job_id, version, decision, records)),
            Err(e) => failed(Some(decision), &e),
        }
    }

    /// A denial when a revoke message has reached the store before the
    /// policy saying so reached this worker.
    async fn revoked_share(&self, job: &Job) -> Result<Option<Decision>, PipelineError> {
        let Principal::Share { share, .. } = &job.principal else {
            return Ok(None);
        };
        let revoked = is_revoked(&self.renditions, share).await?;
        Ok(revoked.then(|| Decision::deny(Rule::Share, None, format!("share {share} was revoked"))))
    }

    async fn produce(
        &self,
        policy: &Policy,
        job: &Job,
        decision: &Decision,
        now: DateTime<Utc>,
        progress: Option<&ProgressSink>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        let source = self.originals.head(&job.asset.source).await?;
        let source = source.ok_or_else(|| PipelineError::MissingSource(job.asset.source.clone()))?;
        let ttl = job.link_ttl_s.min(self.max_link_ttl_s).min(MAX_LINK_TTL_S);
        let expires_at = now + Duration::seconds(ttl as i64);
        let place = Placement::of(job, &source);
        let mut records = self.make(policy, job, decision, &place, expires_at, progress).await?;
        if let (Purpose::Publish, Some(destination)) = (job.purpose, &job.destination) {
            publish::publish(&self.renditions, destination, &place.stem, &mut records).await?;
        }
        Ok(records)
    }

    /// The original or the renditions the decision allows, stored and signed.
    async fn make(
        &self,
        policy: &Policy,
        job: &Job,
        decision: &Decision,
        place: &Placement,
        expires_at: DateTime<Utc>,
        progress: Option<&ProgressSink>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        if decision.delivery == Some(Delivery::Original) {
            return Ok(vec![self.copy_original(job, place, expires_at).await?]);
        }
        let mut mark = video::watermark_of(policy, job, decision);
        if let (Some(mark), Some(key)) = (mark.as_mut(), &policy.document().watermark.logo) {
            mark.logo = Some(self.logo(key).await?);
        }
        let poster = job.request.rendition == Rendition::Poster;
        match job.asset.media {
            Media::Image | Media::Video if poster || job.asset.media == Media::Image => {
                let watermark = &policy.document().watermark;
                let spec = Spec::for_image(decision, &job.request, watermark, job.principal.recipient())
                    .expect("an allowed decision that is not an original has image targets");
                let spec = Spec {
                    watermark: mark,
                    ..spec
                };
                self.render_image(job, &spec, place, expires_at, poster).await
            }
            Media::Video => self.make_video(job, decision, mark, place, expires_at, progress).await,
            media => Err(PipelineError::Unsupported(format!(
                "{media:?} files are delivered whole or not at all"
            ))),
        }
    }

    /// Delivers the stored original, byte for byte, under its own key.
    async fn copy_original(
        &self,
        job: &Job,
        place: &Placement,
        expires_at: DateTime<Utc>,
    ) -> Result<RenditionRecord, PipelineError> {
        let ext = job.asset.source.rsplit_once('.').map_or("bin", |(_, e)| e);
        let key = format!("{}/original-{}.{ext}", place.prefix, &place.source_digest[..32]);
        let cached = self.renditions.head(&key).await?;
        let hit = cached.is_some();
        let info = match cached {
            Some(info) => info,
            None => {
                let bytes = self.source_bytes(job, place).await?.to_vec();
                let options = put_options(
                    content_type_of(&key),
                    &place.filename(ext),
                    stats(&bytes, image_size(&bytes), false),
                );
                self.put(&key, bytes, options).await?
            }
        };
        self.record(&key, &info, expires_at, hit).await
    }

    async fn render_image(
        &self,
        job: &Job,
        spec: &Spec,
        place: &Placement,
        expires_at: DateTime<Utc>,
        poster: bool,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        // Look every size up first: only the misses are rendered.
        let mut found: Vec<Option<(String, ObjectInfo)>> = Vec::new();
        for &size in &spec.sizes {
            found.push(self.cached(spec, place, size).await?);
        }
        let missing: Vec<Size> = spec
            .sizes
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(s, _)| *s)
            .collect();
        let missing = Spec {
            sizes: missing,
            ..spec.clone()
        };
        let mut made = if missing.sizes.is_empty() {
            Vec::new()
        } else if poster {
            self.render_poster(self.video_source(job, place).await?, missing)
                .await?
        } else {
            self.render_on_pool(self.source_bytes(job, place).await?, missing)
                .await?
        };
        let mut records = Vec::new();
        for (size, hit) in spec.sizes.iter().zip(found) {
            let record = match hit {
                Some((key, info)) => self.record(&key, &info, expires_at, true).await?,
                None => {
                    let at = made.iter().position(|r| r.size == *size).expect("rendered every miss");
                    let out = made.swap_remove(at);
                    let key = place.key(spec, *size, out.format);
                    let ext = out.format.extension();
                    let meta = stats(&out.bytes, Some((out.width, out.height)), out.watermarked);
                    let options = put_options(out.format.content_type(), &place.filename(ext), meta);
                    let info = self.put(&key, out.bytes, options).await?;
                    self.record(&key, &info, expires_at, false).await?
                }
            };
            records.push(record);
        }
        Ok(records)
    }

    /// Stores a new object and describes it as a later `head` would.
    async fn put(&self, key: &str, bytes: Vec<u8>, options: PutOptions) -> Result<ObjectInfo, PipelineError> {
        let size = bytes.len() as u64;
        let meta = options.meta.clone();
        self.renditions.put(key, bytes, options).await?;
        Ok(ObjectInfo {
            size,
            identity: String::new(),
            meta,
        })
    }

    /// A rendition already stored for this size, in any format `auto` may pick.
    async fn cached(
        &self,
        spec: &Spec,
        place: &Placement,
        size: Size,
    ) -> Result<Option<(String, ObjectInfo)>, PipelineError> {
        let formats = match spec.format {
            OutputFormat::Auto => vec![OutputFormat::Jpeg, OutputFormat::Png],
            f => vec![f],
        };
        for format in formats {
            let key = place.key(spec, size, format);
            if let Some(info) = self.renditions.head(&key).await? {
                return Ok(Some((key, info)));
            }
        }
        Ok(None)
    }

    /// The policy's watermark logo, read from the originals store. A logo
    /// that is configured but missing fails the job rather than being skipped.
    async fn logo(&self, key: &str) -> Result<Arc<image::RgbaImage>, PipelineError> {
        let bytes = match self.originals.get(key).await {
            Err(StoreError::NotFound(_)) => return Err(PipelineError::MissingSource(format!("watermark logo {key}"))),
            other => other?,
        };
        let logo =
            image::load_from_memory(&bytes).map_err(|e| RenderError::CorruptInput(format!("logo {key}: {e}")))?;
        Ok(Arc::new(logo.to_rgba8()))
    }

    async fn source_bytes(&self, job: &Job, place: &Placement) -> Result<Arc<Vec<u8>>, PipelineError> {
        if let Some(bytes) = self.sources.get(&place.source_digest) {
            return Ok(bytes);
        }
        let bytes = match self.originals.get(&job.asset.source).await {
            Err(StoreError::NotFound(key)) => return Err(PipelineError::MissingSource(key)),
            other => Arc::new(other?),
        };
        self.sources.insert(&place.source_digest, bytes.clone());
        Ok(bytes)
    }

    /// Runs the engine on the rayon pool, never on the async runtime.
    async fn render_on_pool(&self, bytes: Arc<Vec<u8>>, spec: Spec) -> Result<Vec<Rendered>, PipelineError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let limits = self.limits;
        self.pool.spawn(move || {
            let _ = tx.send(rendition::render(&bytes, &spec, &limits));
        });
        let rendered = rx
            .await
            .map_err(|_| RenderError::CorruptInput("the render task panicked".into()))?;
        Ok(rendered?)
    }

    async fn record(
        &self,
        key: &str,
        info: &ObjectInfo,
        expires_at: DateTime<Utc>,
        cached: bool,
    ) -> Result<RenditionRecord, PipelineError> {
        let link = self.renditions.sign(key, expires_at).await?;
        let meta = |k: &str| info.meta.get(k).cloned().unwrap_or_default();
        Ok(RenditionRecord {
            key: key.to_string(),
            url: link.url,
            expires_at: link.expires_at,
            content_type: content_type_of(key).to_string(),
            width: meta("width").parse().ok(),
            height: meta("height").parse().ok(),
            bytes: meta("bytes").parse().unwrap_or(info.size),
            sha256: meta("sha256"),
            watermarked: meta("watermarked") == "true",
            cached,
            published: None,
        })
    }
}

/// The pixel size of an image file, from its header; `None` for anything else.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The job id of a job that did not parse, if it has one at all.
fn job_id_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("job_id").and_then(|id| id.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}
