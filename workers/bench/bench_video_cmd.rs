//! `rendition bench-video`: the same 1080p clip to a 540p watermarked proxy
//! with this engine and with the `ffmpeg` CLI (same x264 preset and CRF, same
//! AAC bit rate, the same mark as a PNG overlay, fast start), in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use rendition::plan::{LogoFact, watermark};
use rendition::policy::document::Watermark;
use rendition::video::overlay::premultiplied_mark;
use rendition::video::transcode::{AAC_BIT_RATE, X264_CRF, X264_PRESET, proxy_size};
use rendition::video::{ProxySpec, VideoLimits, probe, transcode};

/// A 1080p clip to a 540p watermarked proxy, this engine against the
/// ffmpeg CLI with the same settings (see scripts/bench-video).
#[derive(clap::Args)]
pub struct BenchVideoArgs {
    /// The clip; default: a 10 s 1080p test clip made with ffmpeg.
    #[arg(long)]
    clip: Option<PathBuf>,
    #[arg(long, default_value = "target/bench-video")]
    out: PathBuf,
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Instead: a 30 s 1080p ProRes 422 HQ master (made with the CLI's
    /// `prores_ks`) through `rendition render` (the whole job: store,
    /// local copy, transcode, upload) against the CLI, each in its own
    /// process, with peak RSS from GNU time.
    #[arg(long)]
    master: bool,
}

pub fn run(args: &BenchVideoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    if args.master {
        return crate::bench_master::run(&args.out, args.repeat.max(1));
    }
    let clip = match &args.clip {
        Some(clip) => clip.clone(),
        None => make_clip(&args.out)?,
    };
    let limits = VideoLimits::default();
    let (_, source) = probe::open(&clip, &limits, rendition::video::Deadline::after(limits.deadline))?;
    let (w, h) = proxy_size(source.upright(), Some(540));
    let mark = watermark(&Watermark::default(), "bench@example.com", &LogoFact::None)?;
    let overlay = args.out.join("mark.png");
    straight_alpha(premultiplied_mark(&mark, w, h)).save(&overlay)?;
    let spec = ProxySpec {
        max_height: Some(540),
        watermark: Some(mark),
        audio_kbps: None,
        audio_seconds: None,
    };
    let ours_out = args.out.join("ours.mp4");
    let cli_out = args.out.join("ffmpeg-cli.mp4");
    let (mut ours, mut cli, mut frames) = (Vec::new(), Vec::new(), 0);
    for _ in 0..args.repeat.max(1) {
        let started = Instant::now();
        frames = transcode(&clip, &ours_out, &spec, &limits, &mut |_| {})?.frames;
        ours.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        run_cli(&clip, &overlay, (w, h), &cli_out)?;
        cli.push(started.elapsed().as_secs_f64());
    }
    let best = |runs: &[f64]| runs.iter().copied().fold(f64::INFINITY, f64::min);
    let (ours_fps, cli_fps) = (frames as f64 / best(&ours), frames as f64 / best(&cli));
    println!(
        "clip {} ({}x{}, {frames} frames) → {w}x{h} watermarked proxy, x264 {X264_PRESET} crf {X264_CRF}, AAC {} kb/s; best of {}",
        clip.display(),
        source.width,
        source.height,
        AAC_BIT_RATE / 1000,
        args.repeat.max(1)
    );
    println!("{:<12} {:>8} {:>8} {:>10}", "engine", "seconds", "fps", "× ffmpeg");
    println!(
        "{:<12} {:>8.2} {:>8.1} {:>10.2}",
        "rendition",
        best(&ours),
        ours_fps,
        ours_fps / cli_fps
    );
    println!(
        "{:<12} {:>8.2} {:>8.1} {:>10.2}",
        "ffmpeg CLI",
        best(&cli),
        cli_fps,
        1.0
    );
    for (name, path) in [("rendition", &ours_out), ("ffmpeg CLI", &cli_out)] {
        println!("{name:<12} {} bytes", std::fs::metadata(path)?.len());
    }
    Ok(())
}

/// 10 s of 1920x1080 at 30 fps with stereo audio, detailed enough to encode.
fn make_clip(dir: &Path) -> anyhow::Result<PathBuf> {
    let clip = dir.join("source-1080p.mp4");
    if clip.exists() {
        return Ok(clip);
    }
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=10"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10"])
        .args([
            "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-ac", "2", "-b:a", "192k"])
        .arg(&clip)
        .status()
        .context("running ffmpeg (scripts/install-deps installs it)")?;
    if !status.success() {
        bail!("ffmpeg could not make the benchmark clip");
    }
    Ok(clip)
}

/// The anchor: the CLI doing the same work with the same settings.
fn run_cli(clip: &Path, overlay: &Path, size: (u32, u32), out: &Path) -> anyhow::Result<()> {
    if !cli_command(clip, overlay, size, out).status()?.success() {
        bail!("the ffmpeg CLI failed");
    }
    Ok(())
}

/// The CLI's command line: scale, overlay the mark, x264 and AAC as ours.
pub fn cli_command(clip: &Path, overlay: &Path, (w, h): (u32, u32), out: &Path) -> Command {
    let graph = format!("[0:v]scale={w}:{h}:flags=bicubic,format=yuv420p[s];[s][1:v]overlay=format=yuv420[v]");
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(clip)
        .arg("-i")
        .arg(overlay)
        .args(["-filter_complex", &graph, "-map", "[v]", "-map", "0:a?"])
        .args(["-c:v", "libx264", "-preset", X264_PRESET, "-crf", &X264_CRF.to_string()])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", &AAC_BIT_RATE.to_string()])
        .args(["-ar", "48000", "-ac", "2", "-movflags", "+faststart"])
        .arg(out);
    command
}

pub fn straight_alpha(mut mark: image::RgbaImage) -> image::RgbaImage {
    for p in mark.pixels_mut() {
        let a = u16::from(p[3]);
        for c in 0..3 {
            if let Some(v) = (u16::from(p[c]) * 255).checked_div(a) {
                p[c] = v.min(255) as u8;
            }
        }
    }
    mark
}
