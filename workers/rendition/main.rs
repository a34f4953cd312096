//! `rendition`: the one production program (docs/operating.md#commands). Arguments are
//! parsed into each command's own `Args`; settings are read by
//! `rendition::settings`; this file only dispatches and maps outcomes to
//! exit codes. Benchmarks and the load figure live in `rendition-bench`.

mod audit_cmd;
#[path = "../common.rs"]
mod common;
mod dlq_cmd;
mod enqueue_cmd;
mod job_files;
mod policy_cmd;
mod policy_views;
mod render_cmd;
mod serve_cmd;
mod sign_cmd;
mod thumbnail_cmd;
mod trace_cmd;
mod worker_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (docs/operating.md#commands).
pub mod exit {
    pub const OK: u8 = 0;
    /// `policy diff`: the new policy gives someone more.
    pub const WIDENED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
    /// `trace`: no mark any key verifies, or none the trail knows.
    pub const NOT_TRACED: u8 = 4;
}

#[derive(Parser)]
#[command(name = "rendition", version, about = "Renditions each person is allowed to download")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, explain, diff or publish policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Make control keys; sign policy updates and revokes.
    #[command(subcommand)]
    Sign(sign_cmd::SignCommand),
    Render(render_cmd::RenderArgs),
    Thumbnail(thumbnail_cmd::ThumbnailArgs),
    Worker(worker_cmd::WorkerArgs),
    Enqueue(enqueue_cmd::EnqueueArgs),
    Dlq(dlq_cmd::DlqArgs),
    Serve(serve_cmd::ServeArgs),
    Audit(audit_cmd::AuditArgs),
    Trace(trace_cmd::TraceArgs),
}

fn main() -> ExitCode {
    // Before any secret is read: no same-user process (a compromised
    // decoder child) may read this one's memory or environment.
    if let Err(e) = rendition::rendition::harden_worker() {
        eprintln!("error: could not make the process non-dumpable: {e}");
        return ExitCode::from(2);
    }
    let code = match Cli::parse().command {
        Command::Policy(command) => policy_cmd::run(command),
        Command::Sign(command) => report(sign_cmd::run(command)),
        Command::Render(args) => on_runtime(render_cmd::run(args)),
        Command::Thumbnail(args) => report(thumbnail_cmd::run(args)),
        Command::Worker(args) => on_runtime(worker_cmd::run(args)),
        Command::Enqueue(args) => on_runtime(enqueue_cmd::run(args)),
        Command::Dlq(args) => on_runtime(dlq_cmd::run(args)),
        Command::Serve(args) => on_runtime(serve_cmd::run(args)),
        Command::Audit(args) => on_runtime(audit_cmd::run(args)),
        Command::Trace(args) => trace_cmd::main(args),
    };
    ExitCode::from(code)
}

/// Runs an async command; an error is the command's misuse: exit 2.
pub fn on_runtime(command: impl std::future::Future<Output = anyhow::Result<()>>) -> u8 {
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
