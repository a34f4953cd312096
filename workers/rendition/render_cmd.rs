//! `rendition render`: runs jobs end to end on the embedded default (fs
//! store, signed local links) and prints one result per line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rendition::answer::{self, Answer, AnswerError, Destination};
use rendition::audit::AuditRecord;
use rendition::error::panic_message;
use rendition::job::JobError;
use rendition::pipeline::{Arrival, Pipeline, PipelineError};
use rendition::policy::Policy;
use rendition::queue::QueueError;
use rendition::result::{JobProgress, JobResult};
use rendition::settings::{RawSettings, Settings, StoreSetting, link_signer};
use rendition::storage::fs::FsStore;
use rendition::work::Work;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::job_files::job_files;

/// Run jobs end to end on the embedded default (fs store, signed local links).
#[derive(clap::Args)]
pub struct RenderArgs {
    /// The policy document (default: RENDITION_POLICY).
    #[arg(long)]
    policy: Option<String>,
    /// Job files, or directories of them.
    #[arg(long = "job", required = true, num_args = 1..)]
    jobs: Vec<PathBuf>,
    /// Where renditions are stored: fs:DIR or DIR (default: RENDITION_STORE, else fs:./rendition-data).
    #[arg(long)]
    store: Option<String>,
    /// Where sources are read (ODIR/<asset.source>); default: the store.
    #[arg(long)]
    originals: Option<PathBuf>,
    /// The base of the links printed (where `rendition serve` listens).
    #[arg(long)]
    link_base: Option<String>,
    /// Jobs in flight at once (default: RENDITION_CONCURRENCY, else the cores).
    #[arg(long)]
    concurrency: Option<u16>,
    /// A TOML file with the settings; RENDITION_* variables win over it, flags over both.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(args: RenderArgs) -> anyhow::Result<()> {
    let mut raw = RawSettings::load(args.config.as_deref())?;
    raw.policy = args.policy.or(raw.policy);
    raw.store = args.store.or(raw.store);
    raw.originals_dir = args.originals;
    raw.link_base = args.link_base.or(raw.link_base);
    raw.concurrency = args.concurrency.or(raw.concurrency);
    let settings = Settings::validate(raw)?;
    let policy_file = settings.policy()?;
    let policy = Arc::new(Policy::load(policy_file.as_ref()).with_context(|| policy_file.to_string())?);
    let StoreSetting::Fs {
        dir,
        originals,
        link_secret,
        link_base,
    } = &settings.store
    else {
        bail!("this command runs on the filesystem store (fs:DIR); RENDITION_STORE=s3 is for `rendition worker`");
    };
    let files = job_files(&args.jobs)?;
    let worker = Arc::new(settings.worker_id.clone());
    let signer = link_signer(dir, link_base, link_secret.as_deref())?;
    let (originals, renditions) = (FsStore::new(originals, None), FsStore::new(dir, Some(signer)));
    let pipeline = Arc::new(Pipeline::new(originals, renditions, settings.pipeline_config()));
    let progress = progress_bar(files.len() as u64);
    let slots = Arc::new(Semaphore::new(usize::from(settings.concurrency)));
    let mut running = JoinSet::new();
    for file in files {
        let (pipeline, policy, slots, worker) = (pipeline.clone(), policy.clone(), slots.clone(), worker.clone());
        let bar = progress.clone();
        running.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore stays open");
            let (work, body, result, answered_at) = match tokio::fs::read(&file).await {
                Ok(body) => {
                    let work = Work::parse(&body, false);
                    let (result, answered_at) = run_one(&pipeline, &policy, &work, &bar).await;
                    (work, body, result, answered_at)
                }
                Err(e) => {
                    let (work, result) = unreadable(&file, &e, policy.version());
                    (
                        work,
                        file.to_string_lossy().into_owned().into_bytes(),
                        result,
                        Utc::now(),
                    )
                }
            };
            // Answered here as by a worker, on the same path: the same audit
            // trail. Without its record the job fails; a later run replays
            // the answer and records it.
            let printed = Printed(bar);
            let answer = Answer {
                work: &work,
                body: &body,
                result: &result,
                answered_at,
                worker: &worker,
                repeat: false,
                dead_letter: false,
                trace_id: None,
            };
            if let Err(AnswerError::NotRecorded(e)) = answer::answer(pipeline.renditions(), &printed, answer).await {
                let error = PipelineError::Store(e);
                let failed = JobResult::failed(work.job_id(), policy.version(), result.decision, &error);
                printed.print(&failed);
            }
            printed.0.inc(1);
        });
    }
    while let Some(done) = running.join_next().await {
        if done.is_err() {
            progress.suspend(|| eprintln!("a job task stopped without a result"));
        }
    }
    progress.finish_and_clear();
    Ok(())
}

/// Runs one job; a panic outside the engine pools fails this job, not the batch.
async fn run_one(
    pipeline: &Pipeline<FsStore>,
    policy: &Policy,
    work: &Work,
    bar: &ProgressBar,
) -> (JobResult, DateTime<Utc>) {
    let run = std::panic::AssertUnwindSafe(run_showing_progress(pipeline, policy, work, bar));
    run.catch_unwind().await.unwrap_or_else(|panic| {
        let error = PipelineError::Panicked(panic_message(&*panic));
        (
            JobResult::failed(work.job_id(), policy.version(), None, &error),
            Utc::now(),
        )
    })
}

/// Runs one job; a transcode's progress shows as the bar's message.
async fn run_showing_progress(
    pipeline: &Pipeline<FsStore>,
    policy: &Policy,
    work: &Work,
    bar: &ProgressBar,
) -> (JobResult, DateTime<Utc>) {
    let show = |update: JobProgress| async move {
        bar.set_message(format!("{}: {}", update.job_id, update.describe()));
    };
    let outcome = pipeline
        .run_forwarding_progress(policy, work, Arrival::now(), show)
        .await;
    (outcome.result, outcome.answered_at)
}

/// A job file that cannot be read: answered `failed` under its file name.
fn unreadable(file: &std::path::Path, e: &std::io::Error, version: u64) -> (Work, JobResult) {
    let id = file
        .file_stem()
        .map_or("unknown".into(), |s| s.to_string_lossy().into_owned());
    let error = JobError::at("job", format!("cannot read {}: {e}", file.display()));
    let result = JobResult::failed(&id, version, None, &error);
    let work = Work::Unreadable {
        job_id: id,
        purpose: None,
        error,
    };
    (work, result)
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} jobs {elapsed} {msg}").expect("a valid template"));
    bar
}

/// Where `render` answers: a result is a line on stdout; there is no
/// audit exchange and no dead-letter queue.
struct Printed(ProgressBar);

impl Printed {
    fn print(&self, result: &JobResult) {
        let line = serde_json::to_string(result).expect("a result serializes");
        self.0.suspend(|| println!("{line}"));
    }
}

impl Destination for Printed {
    async fn announce(&self, _: &AuditRecord) -> Result<(), QueueError> {
        Ok(())
    }
    async fn dead_letter(&self, _: &JobResult) -> Result<(), QueueError> {
        Ok(())
    }
    async fn reply(&self, result: &JobResult) -> Result<(), QueueError> {
        self.print(result);
        Ok(())
    }
}
