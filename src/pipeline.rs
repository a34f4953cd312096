//! One job, top to bottom: parse → decide → (cache?) → render → store →
//! sign → answer. The CLI and the worker both call [`Pipeline::run`];
//! nothing else orchestrates.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::error::{Coded, Disposition};
use crate::job::{Job, JobError, Media, Principal};
use crate::policy::{Decision, Delivery, Policy, Query, resolve};
use crate::rendition::{self, EngineLimits, OutputFormat, RenderError, Rendered, Size, Spec};
use crate::result::{JobResult, RenditionRecord};
use crate::storage::{ObjectInfo, PutOptions, Store, StoreError, content_type_of};

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
}

impl<S: Store> Pipeline<S> {
    /// Runs one job and always answers: bad input becomes a `failed` result.
    pub async fn run(&self, policy: &Policy, bytes: &[u8], now: DateTime<Utc>) -> JobResult {
        let job = match Job::parse(bytes) {
            Ok(job) => job,
            Err(e) => return JobResult::failed(&job_id_of(bytes), policy.version(), None, &e),
        };
        let decision = resolve(policy, &Query::of(&job, now));
        if !decision.allowed {
            return JobResult::denied(&job.job_id, policy.version(), decision);
        }
        match self.produce(policy, &job, &decision, now).await {
            Ok(records) => JobResult::done(&job.job_id, policy.version(), decision, records),
            Err(e) => JobResult::failed(&job.job_id, policy.version(), Some(decision), &e),
        }
    }

    async fn produce(
        &self,
        policy: &Policy,
        job: &Job,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        let source = self.originals.head(&job.asset.source).await?;
        let source = source.ok_or_else(|| PipelineError::MissingSource(job.asset.source.clone()))?;
        let expires_at = now + Duration::seconds(job.link_ttl_s.min(MAX_LINK_TTL_S) as i64);
        let place = Placement::of(job, &source);
        if decision.delivery == Some(Delivery::Original) {
            return Ok(vec![self.copy_original(job, &place, expires_at).await?]);
        }
        if job.asset.media != Media::Image {
            let media = format!("{:?}", job.asset.media).to_lowercase();
            return Err(PipelineError::Unsupported(format!(
                "{media} renditions are not made by this engine yet"
            )));
        }
        let watermark = &policy.document().watermark;
        let mut spec = Spec::for_image(decision, &job.request, watermark, job.principal.recipient())
            .expect("an allowed decision that is not an original has image targets");
        if let (Some(mark), Some(key)) = (spec.watermark.as_mut(), &watermark.logo) {
            mark.logo = Some(self.logo(key).await?);
        }
        self.render_image(job, &spec, &place, expires_at).await
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
                let bytes = self.source_bytes(job).await?;
                let options = put_options(
                    content_type_of(&key),
                    &place.filename(ext),
                    stats(&bytes, image_size(&bytes), false),
                );
                self.put(&key, bytes, options).await?
            }
        };
        self.record(&key, &info, expires_at, hit)
    }

    async fn render_image(
        &self,
        job: &Job,
        spec: &Spec,
        place: &Placement,
        expires_at: DateTime<Utc>,
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
        let mut made = if missing.is_empty() {
            Vec::new()
        } else {
            let bytes = self.source_bytes(job).await?;
            self.render_on_pool(
                bytes,
                Spec {
                    sizes: missing,
                    ..spec.clone()
                },
            )
            .await?
        };
        let mut records = Vec::new();
        for (size, hit) in spec.sizes.iter().zip(found) {
            let record = match hit {
                Some((key, info)) => self.record(&key, &info, expires_at, true)?,
                None => {
                    let at = made.iter().position(|r| r.size == *size).expect("rendered every miss");
                    let out = made.swap_remove(at);
                    let key = place.key(spec, *size, out.format);
                    let ext = out.format.extension();
                    let meta = stats(&out.bytes, Some((out.width, out.height)), out.watermarked);
                    let options = put_options(out.format.content_type(), &place.filename(ext), meta);
                    let info = self.put(&key, out.bytes, options).await?;
                    self.record(&key, &info, expires_at, false)?
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

    async fn source_bytes(&self, job: &Job) -> Result<Vec<u8>, PipelineError> {
        match self.originals.get(&job.asset.source).await {
            Err(StoreError::NotFound(key)) => Err(PipelineError::MissingSource(key)),
            other => Ok(other?),
        }
    }

    /// Runs the engine on the rayon pool, never on the async runtime.
    async fn render_on_pool(&self, bytes: Vec<u8>, spec: Spec) -> Result<Vec<Rendered>, PipelineError> {
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

    fn record(
        &self,
        key: &str,
        info: &ObjectInfo,
        expires_at: DateTime<Utc>,
        cached: bool,
    ) -> Result<RenditionRecord, PipelineError> {
        let link = self.renditions.sign(key, expires_at)?;
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
        })
    }
}

/// Where a job's renditions live and what they are called.
struct Placement {
    /// `renditions/{asset}`, or `renditions/shares/{share}/{asset}` so that
    /// revoking a share is one listing.
    prefix: String,
    source_digest: String,
    stem: String,
}

impl Placement {
    fn of(job: &Job, source: &ObjectInfo) -> Placement {
        let prefix = match &job.principal {
            Principal::Share { share, .. } => format!("renditions/shares/{share}/{}", job.asset.id),
            _ => format!("renditions/{}", job.asset.id),
        };
        let identity = format!("{}|{}", job.asset.source, source.identity);
        let name = job.asset.filename.as_deref().unwrap_or(&job.asset.source);
        let base = name.rsplit('/').next().unwrap_or(name);
        let stem = base.rsplit_once('.').map_or(base, |(s, _)| s).to_string();
        Placement {
            prefix,
            source_digest: hex::encode(Sha256::digest(identity.as_bytes())),
            stem,
        }
    }

    fn key(&self, spec: &Spec, size: Size, format: OutputFormat) -> String {
        format!(
            "{}/{}.{}",
            self.prefix,
            spec.digest(&self.source_digest, size, format),
            format.extension()
        )
    }

    /// The asset's file name with the rendition's extension.
    fn filename(&self, ext: &str) -> String {
        format!("{}.{ext}", self.stem)
    }
}

fn stats(bytes: &[u8], dims: Option<(u32, u32)>, watermarked: bool) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("sha256".into(), hex::encode(Sha256::digest(bytes)));
    meta.insert("bytes".into(), bytes.len().to_string());
    meta.insert("watermarked".into(), watermarked.to_string());
    if let Some((w, h)) = dims {
        meta.insert("width".into(), w.to_string());
        meta.insert("height".into(), h.to_string());
    }
    meta
}

fn put_options(content_type: &str, filename: &str, meta: BTreeMap<String, String>) -> PutOptions {
    PutOptions {
        content_type: content_type.to_string(),
        filename: Some(filename.to_string()),
        meta,
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
