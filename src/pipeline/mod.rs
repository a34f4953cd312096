//! The executor: one job, top to bottom, for the worker and the CLI alike.
//!
//! ```text
//! remembered? (only for a repeat) → facts → plan (pure) → for each target:
//!   cache check → render on the pool → store → sign → (publish) → answer → remember
//! ```
//!
//! Everything decided is decided by [`crate::plan`]; this file only reads,
//! runs the engines on their pools and writes.

mod engines;
mod facts;
mod lanes;
mod progress;
mod publish;
mod recent;
mod sources;
mod staging;
mod storyboard;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::budget::MemoryBudget;
use crate::control::ControlPlane;
use crate::destinations::PublishDestinations;
use crate::error::{Coded, Disposition, ErrorCode};
use crate::isolated::EngineSettings;
use crate::job::{Job, JobError};
use crate::layout;
use crate::plan::{self, Facts, Make, Plan, PlanError};
use crate::policy::{Decision, Policy};
use crate::rendition::forensic::ForensicSpec;
use crate::rendition::{EngineLimits, OutputFormat, RenderError, Spec};
use crate::result::{JobResult, RenditionRecord};
use crate::revocation::{RevokeMessage, revoke_share};
use crate::storage::{RenditionMeta, Store, StoreError, content_type_of};
use crate::video::{ProxySpec, VideoError, VideoLimits};
use crate::work::Work;
#[cfg(test)]
pub(crate) use engines::PANIC_TRIGGER;
use engines::{Engines, Made};
pub use engines::{ProgressSink, VideoEngines};
pub use plan::MAX_LINK_TTL_S;
use recent::Memory;
use sources::SourceCache;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error("source {0} does not exist")]
    MissingSource(String),
    #[error("storage error: {0} changed or vanished while it was being published")]
    Changed(String),
    #[error("the engine panicked: {0}")]
    Panicked(String),
    #[error("not enough temporary disk: {needed} bytes needed in {dir}, {free} free")]
    TempSpace { needed: u64, free: u64, dir: String },
}

impl Coded for PipelineError {
    fn code(&self) -> ErrorCode {
        match self {
            PipelineError::Job(e) => e.code(),
            PipelineError::Plan(e) => e.code(),
            PipelineError::Render(e) => e.code(),
            PipelineError::Store(e) => e.code(),
            PipelineError::Video(e) => e.code(),
            PipelineError::MissingSource(_) => ErrorCode::MissingSource,
            PipelineError::Changed(_) => ErrorCode::StorageError,
            PipelineError::Panicked(_) => ErrorCode::EngineError,
            PipelineError::TempSpace { .. } => ErrorCode::TempSpace,
        }
    }
}

/// Originals at least this large are handed out through local disk, a
/// chunk at a time, rather than read whole into memory.
pub const STREAM_ORIGINALS_FROM: u64 = 32 << 20;

/// When the store is asked before work that may already be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookups {
    /// Before every job: the remembered result and each image rendition.
    /// For stores where a lookup is a system call (the filesystem).
    Always,
    /// Only when it can matter: a remembered result for redeliveries,
    /// retries and job ids this worker answered; image renditions this
    /// worker did not make are rendered again (same bytes, same key).
    /// Transcodes and original copies are always looked up first. For
    /// stores where every lookup is a network round trip (S3).
    OnRepeat,
}

/// What a pipeline is built from (see [`crate::settings::Settings`]).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub limits: EngineLimits,
    /// Threads of the image pool.
    pub render_threads: usize,
    /// The operator's cap on link lifetimes (at most [`MAX_LINK_TTL_S`]).
    pub max_link_ttl_s: u64,
    /// The process's memory budget in bytes: renders reserve from it, the
    /// originals cache is a share of it ([`crate::budget`]).
    pub memory_budget: u64,
    /// Transcodes at once (threads of the video pool).
    pub video_threads: usize,
    pub video_limits: VideoLimits,
    pub lookups: Lookups,
    /// Where video sources are copied for FFmpeg (default: the system's).
    pub temp_dir: Option<std::path::PathBuf>,
    /// Where publish jobs may copy to (default: nowhere).
    pub publish: PublishDestinations,
    /// The keys revokes (and policy updates) must be signed with (default:
    /// none, so every control message is refused).
    pub control: ControlPlane,
    /// Image jobs in engine processes (default: in this process; the
    /// `rendition` program's settings turn them on).
    pub engines: Option<EngineSettings>,
    /// Posters and proxies: FFmpeg in this process (the default), or in
    /// video engine processes (the `rendition` program's settings).
    pub video_engines: VideoEngines,
    /// CMYK output profiles by name (settings `print_profiles`; default:
    /// none).
    pub print_profiles: crate::plan::PrintProfiles,
    /// The key forensic marks are made with (default: none; jobs that need
    /// a mark fail `invalid_policy`).
    pub forensic_key: Option<crate::forensic::ForensicKey>,
}

/// One render thread per core.
pub fn default_render_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for PipelineConfig {
    /// Every default, and video made by FFmpeg in this process.
    fn default() -> Self {
        PipelineConfig::with_video(VideoEngines::InProcess(crate::video::InProcess::FFMPEG))
    }
}

impl PipelineConfig {
    /// Every default but where video is made. A program that never names
    /// `video::InProcess::FFMPEG` (this constructor does not) maps no
    /// FFmpeg library.
    pub fn with_video(video_engines: VideoEngines) -> Self {
        PipelineConfig {
            limits: EngineLimits::default(),
            render_threads: default_render_threads(),
            max_link_ttl_s: MAX_LINK_TTL_S,
            memory_budget: MemoryBudget::for_this_machine().total(),
            video_threads: 1,
            video_limits: VideoLimits::default(),
            lookups: Lookups::Always,
            temp_dir: None,
            publish: PublishDestinations::default(),
            control: ControlPlane::default(),
            engines: None,
            video_engines,
            print_profiles: Default::default(),
            forensic_key: None,
        }
    }
}

/// Where originals come from, where renditions go, the pools that do the
/// CPU work, and what this worker remembers between jobs.
pub struct Pipeline<S> {
    originals: S,
    renditions: S,
    config: PipelineConfig,
    engines: Engines,
    sources: SourceCache,
    memory: Memory,
    logo: facts::LogoCache,
}

/// How a piece of work reached this worker.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub now: DateTime<Utc>,
    /// The broker delivered it before, or it is a retry: it may have an answer already.
    pub repeat: bool,
}

impl Arrival {
    pub fn now() -> Arrival {
        Arrival {
            now: Utc::now(),
            repeat: false,
        }
    }
}

/// A job's answer, and whether it is final.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: JobResult,
    /// A transient failure (storage unreachable…): worth running again later.
    pub retry: bool,
    /// The result was remembered from an earlier delivery of the same job.
    pub replayed: bool,
    /// Engine code panicked (caught on its pool; answered `engine_error`).
    pub panicked: bool,
    /// A replayed answer that was dead-lettered when it was first made:
    /// the repeat dead-letters it again.
    pub dead_letter: bool,
    /// When the answer was made; a replayed answer keeps its first time,
    /// so its audit record is the same record.
    pub answered_at: DateTime<Utc>,
    /// Why the job failed, as a value to decide on (`result.error` carries
    /// the same code as text).
    pub error: Option<ErrorCode>,
}

impl Outcome {
    fn final_(result: JobResult) -> Outcome {
        Outcome {
            result,
            retry: false,
            replayed: false,
            panicked: false,
            dead_letter: false,
            answered_at: Utc::now(),
            error: None,
        }
    }

    fn failed(job_id: &str, version: u64, decision: Option<Decision>, e: &PipelineError) -> Outcome {
        Outcome {
            panicked: matches!(e, PipelineError::Panicked(_)),
            ..Outcome::rejected(job_id, version, decision, e)
        }
    }

    /// A `failed` answer for any coded error, retried when its code says so.
    fn rejected(
        job_id: &str,
        version: u64,
        decision: Option<Decision>,
        e: &(impl Coded + std::fmt::Display),
    ) -> Outcome {
        Outcome {
            retry: e.disposition() == Disposition::Retry,
            error: Some(e.code()),
            ..Outcome::final_(JobResult::failed(job_id, version, decision, e))
        }
    }
}

impl<S: Store> Pipeline<S> {
    pub fn new(originals: S, renditions: S, config: PipelineConfig) -> Pipeline<S> {
        let budget = MemoryBudget::new(config.memory_budget);
        let sources = SourceCache::new(usize::try_from(budget.cache_bytes()).unwrap_or(usize::MAX));
        let engines = Engines::new(
            config.render_threads,
            config.video_threads,
            config.limits,
            config.video_limits,
            budget,
            (config.engines.clone(), config.video_engines.clone()),
        );
        Pipeline {
            originals,
            renditions,
            sources,
            engines,
            memory: Memory::new(),
            logo: Default::default(),
            config,
        }
    }

    /// The memory budget: bytes renders hold now, and bytes they may hold.
    pub fn memory_budget(&self) -> (u64, u64) {
        let budget = &self.engines.budget;
        (budget.reserved(), budget.for_jobs())
    }

    /// Engine processes (image and video) started and crashed so far
    /// (`None`: every job is made in this process).
    pub fn engine_counts(&self) -> Option<(u64, u64)> {
        let video = match &self.engines.video_work {
            engines::VideoWork::Processes(pool) => Some(pool),
            engines::VideoWork::Here(_) => None,
        };
        let pools: Vec<_> = self.engines.processes.iter().chain(video).collect();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        (!pools.is_empty()).then(|| {
            pools
                .iter()
                .fold((0, 0), |(s, c), p| (s + get(&p.started), c + get(&p.crashed)))
        })
    }

    /// What control messages are verified with.
    pub fn control(&self) -> &ControlPlane {
        &self.config.control
    }

    pub fn originals(&self) -> &S {
        &self.originals
    }

    pub fn renditions(&self) -> &S {
        &self.renditions
    }

    /// Runs one piece of work and always answers: bad input becomes a
    /// `failed` result. Final results of jobs are remembered; transient
    /// failures are not (the retry must really run).
    pub async fn run(
        &self,
        policy: &Policy,
        work: &Work,
        arrival: Arrival,
        progress: Option<&ProgressSink>,
    ) -> Outcome {
        let job = match work {
            Work::Job(job) => job,
            Work::Revoke(revoke) => return self.revoke(policy, revoke).await,
            Work::Unreadable { job_id, error, .. } => return Outcome::rejected(job_id, policy.version(), None, error),
        };
        let memo = layout::memo_key(job);
        if self.may_be_answered(&memo, arrival) {
            match self.recall(&memo, &job.job_id, policy.version(), arrival.now).await {
                // A dead-lettered answer answers only a redelivery (a crash
                // between its record and its answer); the operator's replay
                // of the dead letter, a fresh delivery, runs the job again.
                Ok(Some(remembered)) if remembered.dead_letter && !arrival.repeat => {}
                Ok(Some(remembered)) => {
                    return Outcome {
                        replayed: true,
                        dead_letter: remembered.dead_letter,
                        answered_at: remembered.answered_at,
                        ..Outcome::final_(remembered.result)
                    };
                }
                Ok(None) => {}
                Err(e) => return Outcome::failed(&job.job_id, policy.version(), None, &e),
            }
        }
        let outcome = match self.config.publish_checked(job) {
            Ok(None) => self.run_job(policy, job, arrival.now, progress).await,
            Ok(Some(checked)) => self.run_job(policy, &checked, arrival.now, progress).await,
            Err(e) => Outcome::failed(&job.job_id, policy.version(), None, &e.into()),
        };
        if !outcome.retry
            && let Err(e) = self.remember(&memo, &outcome.result, outcome.answered_at, false).await
        {
            // An answer sent without its memo could be answered otherwise
            // on a redelivery (new links), leaving two audit records for
            // one job: the job is tried again instead.
            tracing::warn!(job_id = %job.job_id, error = %e, "could not remember the result; the job is retried");
            return Outcome::failed(&job.job_id, policy.version(), None, &e.into());
        }
        outcome
    }

    /// Facts → plan → make → (publish) → answer.
    async fn run_job(
        &self,
        policy: &Policy,
        job: &Job,
        now: DateTime<Utc>,
        progress: Option<&ProgressSink>,
    ) -> Outcome {
        let version = policy.version();
        let mut facts = match self.facts(policy, job, now).await {
            Ok(facts) => facts,
            Err(e) => return Outcome::failed(&job.job_id, version, None, &e),
        };
        let mut plan = plan::plan(policy, job, &facts);
        if plan.needs_logo() {
            // Only a plan that draws the logo reads it (once per policy version).
            match self.read_logo(policy).await {
                Ok(logo) => facts.logo = logo,
                Err(e) => return Outcome::failed(&job.job_id, version, Some(plan.decision), &e),
            }
            plan = plan::plan(policy, job, &facts);
        }
        let failed = |e: &PipelineError| Outcome::failed(&job.job_id, version, Some(plan.decision.clone()), e);
        let made = match &plan.make {
            Make::Nothing => return Outcome::final_(JobResult::denied(&job.job_id, version, plan.decision.clone())),
            Make::Fail(e) => return failed(&e.clone().into()),
            Make::Original => self.original(&plan).await,
            Make::Images(spec) => self.images(&plan, spec).await,
            Make::Poster(spec) => self.poster(&plan, spec).await,
            Make::Storyboard(spec) => self.storyboard(&plan, spec).await,
            Make::Proxy(spec) => self.proxy(&plan, spec, progress).await,
        };
        let mut records = match made {
            Ok(records) => records,
            Err(e) => return failed(&e),
        };
        if let Some(destination) = &plan.publish
            && let Err(e) = self.publish(destination, &plan, &mut records).await
        {
            return failed(&e);
        }
        match self.revoked_meanwhile(policy, job, &plan, facts).await {
            Ok(None) => Outcome::final_(JobResult::done(&job.job_id, version, plan.decision, records)),
            Ok(Some(denied)) => {
                for record in &records {
                    self.memory.stored.remove(&record.key);
                    let _ = self.renditions.delete(&record.key).await;
                }
                Outcome::final_(JobResult::denied(&job.job_id, version, denied.decision))
            }
            Err(e) => failed(&e),
        }
    }

    /// The stored original, byte for byte, under its own key.
    async fn original(&self, plan: &Plan) -> Result<Vec<RenditionRecord>, PipelineError> {
        let info = self.source_info(&plan.source).await?;
        let key = plan.original_key(&layout::source_digest(&plan.source, &info.identity));
        if let Some(meta) = self.lookup(&key, true).await? {
            return self.record(&key, &meta, plan, true).await.map(|r| vec![r]);
        }
        if info.size >= STREAM_ORIGINALS_FROM {
            let staged = self.stage(&plan.source, &info).await?;
            let key = plan.original_key(&layout::source_digest(&plan.source, &staged.identity));
            let file = (staged.source.clone(), staged.keep());
            let meta = self.engines.describe_file(file, plan.priority).await?;
            let (ext, content_type) = (layout::extension(&plan.source), content_type_of(&key));
            self.store_file(&key, &staged.source, &meta, content_type, &plan.filename(ext))
                .await?;
            return self.record(&key, &meta, plan, false).await.map(|r| vec![r]);
        }
        let source = self.source_bytes(&plan.source, Some(&info.identity)).await?;
        let meta = self.engines.describe(source.clone(), plan.priority).await?;
        let bytes = Arc::try_unwrap(source).unwrap_or_else(|shared| (*shared).clone());
        let ext = layout::extension(&plan.source);
        self.store(&key, bytes, &meta, content_type_of(&key), &plan.filename(ext))
            .await?;
        self.record(&key, &meta, plan, false).await.map(|r| vec![r])
    }

    /// Image renditions: only the sizes not already stored are rendered,
    /// all from one decode; the original is read only when one is missing.
    async fn images(&self, plan: &Plan, spec: &Spec) -> Result<Vec<RenditionRecord>, PipelineError> {
        let known = self.source_identity(&plan.source).await?;
        let mut found = match &known {
            Some(identity) => {
                let digest = layout::source_digest(&plan.source, identity);
                let found = self.found_sizes(plan, spec, &digest, false).await?;
                if missing(spec, &found).is_none() {
                    return self.deliver(plan, spec, &digest, found, Vec::new()).await;
                }
                found
            }
            None => vec![None; spec.sizes.len()],
        };
        let (digest, source) = self.image_source(&plan.source, known.as_deref()).await?;
        if known.is_none_or(|identity| layout::source_digest(&plan.source, &identity) != digest) {
            // Read just now (or changed since it was known): look again under its identity.
            found = self.found_sizes(plan, spec, &digest, false).await?;
        }
        let made = match missing(spec, &found) {
            None => Vec::new(),
            Some(missing) => self.engines.images(source, missing, plan.priority).await?,
        };
        self.deliver(plan, spec, &digest, found, made).await
    }

    /// A poster: a frame of the video, sized and marked by the image rules.
    async fn poster(&self, plan: &Plan, spec: &Spec) -> Result<Vec<RenditionRecord>, PipelineError> {
        let info = self.source_info(&plan.source).await?;
        let digest = layout::source_digest(&plan.source, &info.identity);
        // A poster decodes video: worth a lookup first.
        let found = self.found_sizes(plan, spec, &digest, true).await?;
        let made = match missing(spec, &found) {
            None => Vec::new(),
            Some(missing) => {
                self.check_video_size(&info)?;
                let staged = self.stage(&plan.source, &info).await?;
                let input = (staged.source.clone(), staged.keep());
                self.engines.poster(input, missing, plan.priority).await?
            }
        };
        self.deliver(plan, spec, &digest, found, made).await
    }

    /// A video proxy: transcoded on the video pool unless already stored,
    /// from a local copy of the source to a local file uploaded in parts.
    async fn proxy(
        &self,
        plan: &Plan,
        spec: &ProxySpec,
        progress: Option<&ProgressSink>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        let info = self.source_info(&plan.source).await?;
        let key = plan.proxy_key(spec, &layout::source_digest(&plan.source, &info.identity));
        if let Some(meta) = self.lookup(&key, true).await? {
            return self.record(&key, &meta, plan, true).await.map(|r| vec![r]);
        }
        self.check_video_size(&info)?;
        let staged = self.stage(&plan.source, &info).await?;
        // Named by what was copied, should it have changed since the HEAD.
        let key = plan.proxy_key(spec, &layout::source_digest(&plan.source, &staged.identity));
        let output = staged.output("proxy.mp4");
        let files = (staged.source.clone(), output.clone(), staged.keep());
        let (job_id, sink) = (plan.job_id.clone(), progress.cloned());
        let meta = self
            .engines
            .proxy(files, spec.clone(), job_id, sink, plan.priority)
            .await?;
        self.store_file(
            &key,
            &output,
            &meta,
            spec.content_type(),
            &plan.filename(spec.extension()),
        )
        .await?;
        self.record(&key, &meta, plan, false).await.map(|r| vec![r])
    }

    /// For each size of `spec`: the key and metadata of a rendition already
    /// stored, in any format `auto` may pick ([`Pipeline::lookup`]).
    async fn found_sizes(
        &self,
        plan: &Plan,
        spec: &Spec,
        source_digest: &str,
        costly: bool,
    ) -> Result<Vec<Option<(String, RenditionMeta)>>, PipelineError> {
        let formats = match spec.format {
            OutputFormat::Auto => vec![OutputFormat::Jpeg, OutputFormat::Png],
            f => vec![f],
        };
        let mut found = Vec::new();
        for &size in &spec.sizes {
            let mut hit = None;
            for &format in &formats {
                let key = plan.image_key(spec, source_digest, size, format);
                if let Some(meta) = self.lookup(&key, costly).await? {
                    hit = Some((key, meta));
                    break;
                }
            }
            found.push(hit);
        }
        Ok(found)
    }

    /// Stores what was made and signs a link to every size, found or made.
    async fn deliver(
        &self,
        plan: &Plan,
        spec: &Spec,
        source_digest: &str,
        found: Vec<Option<(String, RenditionMeta)>>,
        mut made: Vec<Made>,
    ) -> Result<Vec<RenditionRecord>, PipelineError> {
        let mut records = Vec::new();
        for (size, hit) in spec.sizes.iter().zip(found) {
            let record = match hit {
                Some((key, meta)) => self.record(&key, &meta, plan, true).await?,
                None => {
                    let at = made.iter().position(|m| m.size == *size).expect("rendered every miss");
                    let out = made.swap_remove(at);
                    let key = plan.image_key(spec, source_digest, *size, out.format);
                    let name = plan.filename(out.format.extension());
                    self.store(&key, out.bytes, &out.meta, out.format.content_type(), &name)
                        .await?;
                    self.record(&key, &out.meta, plan, false).await?
                }
            };
            // The mark is part of the key, so a stored rendition under it
            // carries it: named from the plan, never from an engine's word.
            let forensic_mark = spec.forensic.as_ref().map(ForensicSpec::delivery_id);
            records.push(RenditionRecord {
                forensic_mark,
                ..record
            });
        }
        Ok(records)
    }

    /// Stores a new rendition and remembers that it is there.
    async fn store(
        &self,
        key: &str,
        bytes: Vec<u8>,
        meta: &RenditionMeta,
        content_type: &str,
        filename: &str,
    ) -> Result<(), PipelineError> {
        let options = meta.put_options(content_type, filename);
        self.renditions.put(key, bytes, options).await?;
        self.memory.stored.insert(key, meta.clone());
        Ok(())
    }

    async fn record(
        &self,
        key: &str,
        meta: &RenditionMeta,
        plan: &Plan,
        cached: bool,
    ) -> Result<RenditionRecord, PipelineError> {
        let link = self.renditions.sign(key, plan.expires_at).await?;
        Ok(RenditionRecord {
            key: key.to_string(),
            url: link.url,
            expires_at: link.expires_at,
            content_type: content_type_of(key).to_string(),
            width: meta.width,
            height: meta.height,
            bytes: meta.bytes,
            sha256: meta.sha256.clone(),
            watermarked: meta.watermarked,
            forensic_mark: None,
            cached,
            published: None,
        })
    }

    /// A rendition already stored at `key`. With [`Lookups::Always`] a HEAD
    /// says; with [`Lookups::OnRepeat`] this worker's memory, then a HEAD
    /// only when the work is `costly` to redo.
    async fn lookup(&self, key: &str, costly: bool) -> Result<Option<RenditionMeta>, PipelineError> {
        if self.config.lookups == Lookups::OnRepeat {
            if let Some(meta) = self.memory.stored.get(key) {
                return Ok(Some(meta));
            }
            if !costly {
                return Ok(None);
            }
        }
        let Some(info) = self.renditions.head(key).await? else {
            return Ok(None);
        };
        let meta = RenditionMeta::of(&info);
        self.memory.stored.insert(key, meta.clone());
        Ok(Some(meta))
    }

    /// Whether this job may have been answered before.
    fn may_be_answered(&self, memo: &str, arrival: Arrival) -> bool {
        self.config.lookups == Lookups::Always || arrival.repeat || self.memory.answered.get(memo).is_some()
    }

    /// A share job's plan again, once rendering is done: a revoke that
    /// landed meanwhile still wins.
    async fn revoked_meanwhile(
        &self,
        policy: &Policy,
        job: &Job,
        plan: &Plan,
        facts: Facts,
    ) -> Result<Option<Plan>, PipelineError> {
        let Some(share) = &plan.share else { return Ok(None) };
        if !self.share_revoked(share).await? {
            return Ok(None);
        }
        let again = plan::plan(
            policy,
            job,
            &Facts {
                share_revoked: true,
                ..facts
            },
        );
        Ok((!again.decision.allowed).then_some(again))
    }

    /// Stop sharing: delete the share's renditions and mark it revoked,
    /// once a control key's signature over the share id checks out.
    async fn revoke(&self, policy: &Policy, revoke: &RevokeMessage) -> Outcome {
        let version = policy.version();
        let keys = &self.config.control.keys;
        if let Err(e) = keys.verify_revoke(&revoke.share, revoke.key_id.as_deref(), revoke.signature.as_deref()) {
            tracing::warn!(share = %revoke.share, reason = e.code().as_str(), error = %e, "revoke refused");
            return Outcome::rejected(&revoke.job_id, version, None, &e);
        }
        match revoke_share(&self.renditions, &revoke.share).await {
            Ok(revoked) => {
                self.memory.revoked.insert(&revoke.share, ());
                tracing::info!(share = %revoked.share, deleted = revoked.deleted, "share revoked");
                Outcome::final_(JobResult::acknowledged(&revoke.job_id, version))
            }
            Err(e) => Outcome::failed(&revoke.job_id, version, None, &e.into()),
        }
    }
}

/// The part of `spec` not `found` in the store; `None` when all was found.
/// Every size as not found: made again, whatever was found.
fn missing_all(found: &[Option<(String, RenditionMeta)>]) -> Vec<Option<(String, RenditionMeta)>> {
    found.iter().map(|_| None).collect()
}

fn missing(spec: &Spec, found: &[Option<(String, RenditionMeta)>]) -> Option<Spec> {
    let sizes: Vec<_> = spec
        .sizes
        .iter()
        .zip(found)
        .filter(|(_, f)| f.is_none())
        .map(|(s, _)| *s)
        .collect();
    (!sizes.is_empty()).then(|| Spec { sizes, ..spec.clone() })
}

#[cfg(test)]
#[path = "round_trips.rs"]
mod round_trips;

#[cfg(test)]
#[path = "replay_tests.rs"]
mod replay_tests;
