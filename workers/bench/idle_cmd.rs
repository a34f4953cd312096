//! `rendition-bench idle`: what a worker costs while it waits. A real
//! `rendition worker` (the program beside this one, or `--worker-bin`),
//! consuming every queue of the broker and store its environment names;
//! after `--warm-up-s`, the summed PSS of its process tree (the worker and
//! any engine it keeps) sampled every 10 ms for `--seconds`. Beside it, the
//! anchor: `vipsthumbnail --vips-version`, measured by the same tree
//! sampling and by its peak RSS.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

#[derive(clap::Args)]
pub struct IdleArgs {
    /// How long the worker runs before it is measured.
    #[arg(long, default_value_t = 3)]
    warm_up_s: u64,
    /// How long it is measured.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The `rendition` program (default: beside this one).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
}

pub fn run(args: &IdleArgs) -> anyhow::Result<()> {
    let bin = match &args.worker_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("rendition"),
    };
    let mut worker = Command::new(&bin)
        .arg("worker")
        .env("RENDITION_HTTP_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    std::thread::sleep(Duration::from_secs(args.warm_up_s));
    if let Some(status) = worker.try_wait()? {
        anyhow::bail!("the worker exited before it was measured ({status}): is RabbitMQ running?");
    }
    let (mut peak, mut sum, mut samples) = (0u64, 0u64, 0u64);
    let until = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < until {
        let pss = crate::pss::tree_pss_kib(worker.id());
        (peak, sum, samples) = (peak.max(pss), sum + pss, samples + 1);
        std::thread::sleep(Duration::from_millis(10));
    }
    let processes = crate::pss::tree(worker.id()).len();
    let _ = worker.kill();
    let _ = worker.wait();
    let vips = crate::tree::measure("vipsthumbnail", &["--vips-version".to_string()], &[])?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| process tree | summed PSS, peak | summed PSS, mean | processes |");
    println!("|---|---|---|---|");
    println!(
        "| idle `rendition worker` | {:.1} MiB | {:.1} MiB | {processes} |",
        mib(peak),
        mib(sum / samples.max(1))
    );
    println!(
        "| `vipsthumbnail --vips-version` | {:.1} MiB (peak RSS {:.1} MiB) | | 1 |",
        mib(vips.pss_kib),
        mib(vips.rss_kib)
    );
    println!(
        "ratio, idle worker ÷ vipsthumbnail: {:.2}× (summed PSS)",
        peak as f64 / vips.pss_kib.max(1) as f64
    );
    Ok(())
}
