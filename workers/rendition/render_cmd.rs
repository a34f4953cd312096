//! `rendition render`: runs jobs end to end on the embedded default (fs
//! store, signed local links) and prints one result per line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rendition::job::JobError;
use rendition::pipeline::Pipeline;
use rendition::policy::Policy;
use rendition::rendition::EngineLimits;
use rendition::result::JobResult;
use rendition::storage::fs::FsStore;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::settings;

pub struct RenderArgs {
    pub policy: PathBuf,
    pub jobs: Vec<PathBuf>,
    pub store: String,
    pub originals: Option<PathBuf>,
    pub link_base: String,
    pub concurrency: usize,
}

pub async fn render(args: RenderArgs) -> anyhow::Result<()> {
    let policy = Arc::new(Policy::load(&args.policy).with_context(|| args.policy.display().to_string())?);
    let dir = settings::store_dir(&args.store)?;
    let files = settings::job_files(&args.jobs)?;
    let signer = settings::link_signer(&dir, &args.link_base, None)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("render-{i}"))
        .build()?;
    let pipeline = Arc::new(Pipeline {
        originals: FsStore::new(args.originals.unwrap_or_else(|| dir.clone()), None),
        renditions: FsStore::new(dir, Some(signer)),
        limits: EngineLimits::default(),
        pool: Arc::new(pool),
        max_link_ttl_s: rendition::pipeline::MAX_LINK_TTL_S,
        sources: rendition::pipeline::SourceCache::new(256 << 20),
        video: rendition::pipeline::VideoEngine::new(1, Default::default()),
    });
    let progress = progress_bar(files.len() as u64);
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut running = JoinSet::new();
    for file in files {
        let (pipeline, policy, slots) = (pipeline.clone(), policy.clone(), slots.clone());
        let bar = progress.clone();
        running.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore stays open");
            match tokio::fs::read(&file).await {
                Ok(bytes) => run_showing_progress(&pipeline, &policy, &bytes, &bar).await,
                Err(e) => unreadable(&file, &e, policy.version()),
            }
        });
    }
    while let Some(done) = running.join_next().await {
        let result = done.context("a job task panicked")?;
        progress.inc(1);
        progress.suspend(|| println!("{}", serde_json::to_string(&result).expect("a result serializes")));
    }
    progress.finish_and_clear();
    Ok(())
}

/// Runs one job; a transcode's progress shows as the bar's message.
async fn run_showing_progress(
    pipeline: &Pipeline<FsStore>,
    policy: &Policy,
    bytes: &[u8],
    bar: &ProgressBar,
) -> JobResult {
    let (sink, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let run = pipeline.run_job_reporting(policy, bytes, chrono::Utc::now(), Some(sink));
    let show = async {
        while let Some(update) = updates.recv().await {
            bar.set_message(format!("{}: {}", update.job_id, update.describe()));
        }
    };
    let (outcome, ()) = tokio::join!(run, show);
    outcome.result
}

fn unreadable(file: &std::path::Path, e: &std::io::Error, version: u64) -> JobResult {
    let id = file
        .file_stem()
        .map_or("unknown".into(), |s| s.to_string_lossy().into_owned());
    let error = JobError {
        field: "job".into(),
        message: format!("cannot read {}: {e}", file.display()),
    };
    JobResult::failed(&id, version, None, &error)
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} jobs {elapsed} {msg}").expect("a valid template"));
    bar
}
