//! `rendition-bench`: the benchmarks and the load figure, kept out of the
//! production program. Each prints figures beside its anchor (libvips'
//! `vipsthumbnail`, the `ffmpeg` CLI, the bare engine) from the same run.

mod bench_batch;
mod bench_big;
mod bench_cmd;
mod bench_crop;
mod bench_master;
mod bench_print;
mod bench_video_cmd;
mod chaos_cmd;
#[path = "../common.rs"]
mod common;
mod control_cmd;
mod disrupt;
mod idle_cmd;
mod load_cmd;
mod priority_cmd;
#[path = "../pss.rs"]
mod pss;
mod trace_cmd;
mod tree;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rendition-bench",
    version,
    about = "Benchmarks and the load figure for rendition"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Bench(bench_cmd::BenchArgs),
    BenchVideo(bench_video_cmd::BenchVideoArgs),
    Load(load_cmd::LoadArgs),
    Chaos(chaos_cmd::ChaosArgs),
    Priority(priority_cmd::PriorityArgs),
    Control(control_cmd::ControlArgs),
    Idle(idle_cmd::IdleArgs),
    Trace(trace_cmd::TraceArgs),
}

fn main() -> ExitCode {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    };
    let outcome = match Cli::parse().command {
        Command::Bench(args) => bench_cmd::run(&args),
        Command::BenchVideo(args) => bench_video_cmd::run(&args),
        Command::Load(args) => runtime().block_on(load_cmd::run(args)),
        Command::Chaos(args) => runtime().block_on(chaos_cmd::run(args)),
        Command::Priority(args) => runtime().block_on(priority_cmd::run(args)),
        Command::Control(args) => control_cmd::run(&args),
        Command::Idle(args) => idle_cmd::run(&args),
        Command::Trace(args) => trace_cmd::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
