//! `rendition-bench bench-video --master`: a ProRes master to a 540p
//! watermarked proxy, as a whole job (`rendition render` on the filesystem
//! store: the source copied to local disk, transcoded, the proxy stored)
//! against the `ffmpeg` CLI doing the same transcode, each in its own
//! process under GNU time: wall seconds, CPU seconds and peak RSS.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use rendition::plan::{LogoFact, watermark};
use rendition::policy::document::Watermark;
use rendition::video::overlay::premultiplied_mark;
use rendition::video::transcode::proxy_size;

use crate::bench_video_cmd::{cli_command, straight_alpha};

/// What GNU time reports of one run.
#[derive(Debug, Clone, Copy)]
struct Usage {
    wall_s: f64,
    cpu_s: f64,
    peak_kib: u64,
    /// The peak of the process tree's summed PSS.
    pss_kib: u64,
}

pub fn run(out: &Path, repeat: usize) -> anyhow::Result<()> {
    let originals = out.join("originals");
    std::fs::create_dir_all(originals.join("masters"))?;
    let master = originals.join("masters/prores-hq.mov");
    make_master(&master)?;
    let job = out.join("master-job.json");
    std::fs::write(&job, serde_json::to_vec_pretty(&master_job())?)?;
    // The CLI gets the mark our job draws for this recipient, as a PNG.
    let (w, h) = proxy_size((1920, 1080), Some(540));
    let mark = watermark(&Watermark::default(), "u-cleo", &LogoFact::None)?;
    let overlay = out.join("master-mark.png");
    straight_alpha(premultiplied_mark(&mark, w, h)).save(&overlay)?;
    let rendition = std::env::current_exe()?.with_file_name("rendition");
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    for i in 0..repeat {
        let store = out.join(format!("master-store-{i}"));
        let _ = std::fs::remove_dir_all(&store);
        let mut render = Command::new(&rendition);
        render
            .args(["render", "--policy", "fixtures/policy.yaml", "--job"])
            .arg(&job);
        render.arg("--originals").arg(&originals).arg("--store").arg(&store);
        let (usage, stdout) = timed(&mut render)?;
        if !stdout.contains("\"status\":\"done\"") {
            bail!("the master job did not finish: {stdout}");
        }
        ours.push(usage);
        let cli_out = out.join("master-ffmpeg-cli.mp4");
        cli.push(timed(&mut cli_command(&master, &overlay, (w, h), &cli_out))?.0);
    }
    let best = |runs: &[Usage]| *runs.iter().min_by(|a, b| a.wall_s.total_cmp(&b.wall_s)).expect("a run");
    let (ours, cli) = (best(&ours), best(&cli));
    let size = std::fs::metadata(&master)?.len();
    println!(
        "master {} ({:.0} MB, 30 s 1920x1080 ProRes 422 HQ) → {w}x{h} watermarked proxy; best of {repeat}",
        master.display(),
        size as f64 / 1e6
    );
    println!("| process | wall s | CPU s | largest peak RSS MiB | peak summed PSS MiB |");
    println!("|---|---|---|---|---|");
    for (name, u) in [("rendition render (whole job)", ours), ("ffmpeg CLI (transcode)", cli)] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.1} | {:.1} |",
            u.wall_s,
            u.cpu_s,
            u.peak_kib as f64 / 1024.0,
            u.pss_kib as f64 / 1024.0
        );
    }
    println!(
        "ratios, rendition ÷ ffmpeg: throughput (wall) {:.2}×, per CPU-second {:.2}×, peak RSS {:.2}×, summed PSS {:.2}×",
        cli.wall_s / ours.wall_s,
        cli.cpu_s / ours.cpu_s,
        ours.peak_kib as f64 / cli.peak_kib as f64,
        ours.pss_kib as f64 / cli.pss_kib.max(1) as f64
    );
    Ok(())
}

/// The demo policy's restricted role in g-launch: a 540p watermarked proxy.
fn master_job() -> serde_json::Value {
    serde_json::json!({
        "schema": "rendition.job/v1", "job_id": format!("master-{}", rand::random::<u32>()),
        "purpose": "download", "principal": {"user": "u-cleo"},
        "asset": {"id": "a-master", "collection": "g-launch", "media": "video",
                  "source": "masters/prores-hq.mov", "filename": "master.mov"},
        "request": {"rendition": "proxy", "format": "auto"},
    })
}

fn make_master(path: &PathBuf) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=30"])
        .args(["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"])
        .args(["-c:a", "pcm_s16le", "-ac", "2"])
        .arg(path)
        .status()
        .context("running ffmpeg (scripts/install-deps installs it)")?;
    if !status.success() {
        bail!("ffmpeg could not make the ProRes master");
    }
    Ok(())
}

/// Runs `command` under GNU time; its usage and stdout.
fn timed(command: &mut Command) -> anyhow::Result<(Usage, String)> {
    let report = tempfile::NamedTempFile::new()?;
    let mut timed = Command::new("/usr/bin/time");
    timed.args(["-f", "%e %U %S %M", "-o"]).arg(report.path());
    timed.arg(command.get_program()).args(command.get_args());
    let child = timed
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("GNU time (apt install time; scripts/bench-video installs it)")?;
    // The summed PSS of the tree (time, the program, its engines), every 10 ms.
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            peak = crate::pss::tree_pss_kib(pid).max(peak);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak
    });
    let out = child.wait_with_output()?;
    let pss_kib = sampler.join().unwrap_or(0);
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(report.path())?;
    let fields: Vec<f64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let [wall_s, user, system, peak] = fields[..] else {
        bail!("GNU time said {text:?}");
    };
    let usage = Usage {
        wall_s,
        cpu_s: user + system,
        peak_kib: peak as u64,
        pss_kib,
    };
    Ok((usage, String::from_utf8_lossy(&out.stdout).into_owned()))
}
