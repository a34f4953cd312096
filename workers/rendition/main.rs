//! `rendition`: the one program (contract §7). Each subcommand is a short
//! function in its own module; this file only parses arguments and maps
//! outcomes to exit codes.

mod bench_cmd;
mod bench_video_cmd;
mod dlq_cmd;
mod enqueue_cmd;
mod load_cmd;
mod policy_cmd;
mod render_cmd;
mod serve_cmd;
mod settings;
mod thumbnail_cmd;
mod worker_cmd;
mod worker_settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes fixed by contract §7.
pub mod exit {
    pub const OK: u8 = 0;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
}

#[derive(Parser)]
#[command(name = "rendition", version, about = "Renditions each person is allowed to download")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy, or explain a decision.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run jobs end to end on the embedded default (fs store, signed local links).
    Render {
        #[arg(long, env = "RENDITION_POLICY", default_value = "fixtures/policy.yaml")]
        policy: PathBuf,
        /// Job files, or directories of them.
        #[arg(long = "job", required = true, num_args = 1..)]
        jobs: Vec<PathBuf>,
        /// Where renditions are stored: fs:DIR or DIR.
        #[arg(long, env = "RENDITION_STORE", default_value = "fs:./rendition-data")]
        store: String,
        /// Where sources are read (ODIR/<asset.source>); default: the store.
        #[arg(long)]
        originals: Option<PathBuf>,
        /// The base of the links printed (where `rendition serve` listens).
        #[arg(long, env = "RENDITION_LINK_BASE", default_value = "http://127.0.0.1:8080")]
        link_base: String,
        /// Jobs in flight at once.
        #[arg(long, env = "RENDITION_CONCURRENCY")]
        concurrency: Option<usize>,
    },
    /// Render one image file to one or more sizes (no policy, no store).
    Thumbnail {
        input: PathBuf,
        /// Long edges, e.g. 2048 or 2048,1024,320.
        #[arg(long, value_delimiter = ',', required = true)]
        size: Vec<u32>,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 85)]
        quality: u8,
        /// Burn in this text, tiled.
        #[arg(long)]
        watermark: Option<String>,
        /// With --watermark: a PNG logo drawn before the text.
        #[arg(long, requires = "watermark")]
        logo: Option<PathBuf>,
    },
    /// Compare this engine with vipsthumbnail and ImageMagick (see scripts/bench).
    Bench {
        /// A directory of large JPEG photographs.
        #[arg(long)]
        images: PathBuf,
        #[arg(long, default_value = "target/bench-out")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// A 1080p clip to a 540p watermarked proxy, this engine against the
    /// ffmpeg CLI with the same settings (see scripts/bench-video).
    BenchVideo {
        /// The clip; default: a 10 s 1080p test clip made with ffmpeg.
        #[arg(long)]
        clip: Option<PathBuf>,
        #[arg(long, default_value = "target/bench-video")]
        out: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Consume the broker's job queues (contract §5) with the settings of §6.
    Worker {
        /// A TOML file with the settings; RENDITION_* variables win over it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Publish jobs to the broker; with --wait, print their results.
    Enqueue {
        /// Job files, or directories of them.
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (exit 2).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// With --wait: print jobs/s and latency percentiles to stderr.
        #[arg(long, requires = "wait")]
        stats: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The load figure: jobs through the broker to running workers, against
    /// the bare engine on the same renditions (see scripts/load).
    Load {
        /// Source images, uploaded to the originals bucket.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Inspect and re-queue dead letters.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Serve signed local links (403 when tampered or expired).
    Serve {
        #[arg(long, env = "RENDITION_STORE", default_value = "fs:./rendition-data")]
        store: String,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        #[arg(long, env = "RENDITION_LINK_BASE", default_value = "http://127.0.0.1:8080")]
        link_base: String,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Print the dead letters (one JSON line each) without removing them.
    List,
    /// Re-queue dead letters to the jobs exchange, attempts counted afresh.
    Replay {
        #[arg(long, conflicts_with = "job_id", required_unless_present = "job_id")]
        all: bool,
        /// The job id of the dead letter to replay.
        job_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and print a summary (exit 0 valid, 2 invalid).
    Check {
        /// A .yaml, .yml or .json policy document.
        file: PathBuf,
    },
    /// Print the decision for a job as JSON (exit 0 allowed, 3 denied, 2 bad input).
    Explain {
        /// The policy document.
        #[arg(long, env = "RENDITION_POLICY", default_value = "fixtures/policy.yaml")]
        policy: PathBuf,
        /// The job message (contract §2).
        #[arg(long)]
        job: PathBuf,
        /// Judge share expiry at this moment (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Policy(PolicyCommand::Check { file }) => policy_cmd::check(&file),
        Command::Policy(PolicyCommand::Explain { policy, job, at }) => {
            policy_cmd::explain(&policy, &job, at.unwrap_or_else(chrono::Utc::now))
        }
        Command::Render {
            policy,
            jobs,
            store,
            originals,
            link_base,
            concurrency,
        } => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let args = render_cmd::RenderArgs {
                policy,
                jobs,
                store,
                originals,
                link_base,
                concurrency: concurrency.unwrap_or(cores),
            };
            on_runtime(render_cmd::render(args))
        }
        Command::Thumbnail {
            input,
            size,
            output,
            quality,
            watermark,
            logo,
        } => {
            let args = thumbnail_cmd::ThumbnailArgs {
                input,
                sizes: size,
                output,
                quality,
                watermark,
                logo,
            };
            report(thumbnail_cmd::thumbnail(args))
        }
        Command::Bench { images, out, repeat } => report(bench_cmd::bench(&images, &out, repeat)),
        Command::BenchVideo { clip, out, repeat } => {
            report(bench_video_cmd::bench_video(&bench_video_cmd::BenchVideoArgs {
                clip,
                out,
                repeat,
            }))
        }
        Command::Serve { store, addr, link_base } => on_runtime(serve_cmd::serve(&store, addr, &link_base)),
        Command::Worker { config } => on_runtime(worker_cmd::worker(config.as_deref())),
        Command::Enqueue {
            jobs,
            wait,
            timeout,
            stats,
            config,
        } => {
            let args = enqueue_cmd::EnqueueArgs {
                config,
                jobs,
                wait,
                timeout: std::time::Duration::from_secs(timeout),
                stats,
            };
            on_runtime(enqueue_cmd::enqueue(args))
        }
        Command::Load { images, jobs, config } => {
            on_runtime(load_cmd::load(load_cmd::LoadArgs { config, images, jobs }))
        }
        Command::Dlq { command, config } => on_runtime(async move {
            let settings = worker_settings::Settings::load(config.as_deref())?;
            match command {
                DlqCommand::List => dlq_cmd::list(&settings).await,
                DlqCommand::Replay { job_id: Some(id), .. } => {
                    dlq_cmd::replay(&settings, dlq_cmd::Pick::JobId(id)).await
                }
                DlqCommand::Replay { .. } => dlq_cmd::replay(&settings, dlq_cmd::Pick::All).await,
            }
        }),
    };
    ExitCode::from(code)
}

/// Runs an async command; an error is the command's misuse: exit 2.
fn on_runtime(command: impl std::future::Future<Output = anyhow::Result<()>>) -> u8 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    report(runtime.block_on(command))
}

/// Exit 0, or 2 with the error on stderr.
fn report(outcome: anyhow::Result<()>) -> u8 {
    match outcome {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::BAD_INPUT
        }
    }
}
