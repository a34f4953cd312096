//! `rendition bench`: this engine, `vipsthumbnail` and ImageMagick on the
//! same photographs in the same run, one thread each, each file a process
//! of its own; prints renditions/s, peak RSS and the ratios to libvips, and
//! the SSIM of our output against vipsthumbnail's.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::common::sized;

pub(crate) use crate::tree::Run;

/// One run, one thread for all (see [`crate::tree`] for what is counted).
pub(crate) fn measure(program: &str, args: &[String]) -> anyhow::Result<Run> {
    crate::tree::measure(
        program,
        args,
        &[
            ("RAYON_NUM_THREADS", "1"),
            ("VIPS_CONCURRENCY", "1"),
            ("MAGICK_THREAD_LIMIT", "1"),
        ],
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) struct Tools {
    pub(crate) us: String,
    pub(crate) out: PathBuf,
}

impl Tools {
    pub(crate) fn ours(&self, input: &Path, sizes: &[u32], watermark: bool, out: &Path) -> anyhow::Result<Run> {
        let list = sizes.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut args = vec![
            "thumbnail".into(),
            s(input),
            "--size".into(),
            list,
            "-o".into(),
            s(out),
            "--quality".into(),
            "85".into(),
        ];
        if watermark {
            args.extend(["--watermark".into(), "© Brand — bench".into()]);
        }
        measure(&self.us, &args)
    }

    pub(crate) fn vips(&self, input: &Path, size: u32, out: &Path) -> anyhow::Result<Run> {
        let args = vec![
            s(input),
            "--size".into(),
            size.to_string(),
            "-o".into(),
            format!("{}[Q=85,strip]", s(out)),
        ];
        measure("vipsthumbnail", &args)
    }

    fn magick(&self, input: &Path, size: u32, out: &Path) -> anyhow::Result<Run> {
        let geometry = format!("{size}x{size}>");
        let args = vec![
            "-limit".into(),
            "thread".into(),
            "1".into(),
            s(input),
            "-strip".into(),
            "-resize".into(),
            geometry,
            "-quality".into(),
            "85".into(),
            s(out),
        ];
        measure("/usr/bin/convert", &args)
    }
}

/// Mean SSIM of the luma of two same-sized images, over 8×8 windows.
pub(crate) fn ssim(a: &Path, b: &Path) -> anyhow::Result<f64> {
    let (a, b) = (image::open(a)?.to_luma8(), image::open(b)?.to_luma8());
    if a.dimensions() != b.dimensions() {
        bail!("sizes differ: {:?} vs {:?}", a.dimensions(), b.dimensions());
    }
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = a.dimensions();
    let (mut total, mut n) = (0.0, 0u32);
    for y in (0..h.saturating_sub(8)).step_by(4) {
        for x in (0..w.saturating_sub(8)).step_by(4) {
            let px = |img: &image::GrayImage, i: u32| f64::from(img.get_pixel(x + i % 8, y + i / 8)[0]);
            let (ma, mb) = (
                (0..64).map(|i| px(&a, i)).sum::<f64>() / 64.0,
                (0..64).map(|i| px(&b, i)).sum::<f64>() / 64.0,
            );
            let (mut va, mut vb, mut cov) = (0.0, 0.0, 0.0);
            for i in 0..64 {
                let (da, db) = (px(&a, i) - ma, px(&b, i) - mb);
                va += da * da;
                vb += db * db;
                cov += da * db;
            }
            let (va, vb, cov) = (va / 63.0, vb / 63.0, cov / 63.0);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    Ok(total / f64::from(n.max(1)))
}

#[derive(Default)]
pub(crate) struct Tally {
    secs: f64,
    rss_max: u64,
    pss_max: u64,
    count: u32,
}

impl Tally {
    pub(crate) fn add(&mut self, run: Run, renditions: u32) {
        self.secs += run.secs;
        self.rss_max = self.rss_max.max(run.rss_kib);
        self.pss_max = self.pss_max.max(run.pss_kib);
        self.count += renditions;
    }
    pub(crate) fn per_sec(&self) -> f64 {
        f64::from(self.count) / self.secs
    }
}

/// Compare this engine with vipsthumbnail and ImageMagick (see scripts/bench).
#[derive(clap::Args)]
pub struct BenchArgs {
    /// A directory of large JPEG photographs.
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value = "target/bench-out")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Only one part: `crop` (cover crops) or `print` (metadata profiles
    /// and CMYK).
    #[arg(long, value_parser = ["crop", "print"])]
    only: Option<String>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    bench(&args.images, &args.out, args.repeat, args.only.as_deref())
}

fn bench(images: &Path, out: &Path, repeat: u32, only: Option<&str>) -> anyhow::Result<()> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(images)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    photos.sort();
    if photos.is_empty() {
        bail!("no .jpg photographs in {}", images.display());
    }
    std::fs::create_dir_all(out)?;
    // vipsthumbnail resolves a relative -o against the input's directory.
    let tools = Tools {
        // The production program, built beside this one.
        us: std::env::current_exe()?
            .with_file_name("rendition")
            .display()
            .to_string(),
        out: std::fs::canonicalize(out)?,
    };
    println!(
        "{} photographs, {repeat} round(s), one thread per tool, JPEG q85, speed per CPU-second\n",
        photos.len()
    );
    for p in &photos {
        let (w, h) = image::image_dimensions(p)?;
        println!(
            "  {} {w}×{h} ({:.1} MP)",
            p.file_name().unwrap().to_string_lossy(),
            f64::from(w * h) / 1e6
        );
    }
    match only {
        Some("crop") => return crate::bench_crop::run(&tools, &photos, repeat),
        Some("print") => return crate::bench_print::run(&tools, &photos, repeat),
        _ => {}
    }
    for size in [2048u32, 1024] {
        let (mut ours, mut vips, mut magick) = (Tally::default(), Tally::default(), Tally::default());
        let mut ssims = Vec::new();
        for _ in 0..repeat {
            for (i, photo) in photos.iter().enumerate() {
                let (o, v, m) = (
                    tools.out.join(format!("ours-{i}.jpg")),
                    tools.out.join(format!("vips-{i}.jpg")),
                    tools.out.join(format!("im-{i}.jpg")),
                );
                ours.add(tools.ours(photo, &[size], false, &o)?, 1);
                vips.add(tools.vips(photo, size, &v)?, 1);
                magick.add(tools.magick(photo, size, &m)?, 1);
                ssims.push(ssim(&o, &v)?);
            }
        }
        report(&format!("long edge {size}"), &ours, &vips, Some(&magick));
        let min = ssims.iter().copied().fold(f64::MAX, f64::min);
        println!(
            "    SSIM ours vs vipsthumbnail: mean {:.4}, min {min:.4}\n",
            ssims.iter().sum::<f64>() / ssims.len() as f64
        );
    }
    // A download set: one decode for three watermarked sizes, vs three vipsthumbnail runs.
    let (mut ours, mut vips) = (Tally::default(), Tally::default());
    for _ in 0..repeat {
        for (i, photo) in photos.iter().enumerate() {
            let o = tools.out.join(format!("set-{i}.jpg"));
            ours.add(tools.ours(photo, &[2048, 1024, 320], true, &o)?, 3);
            let mut three = Run::default();
            for size in [2048, 1024, 320] {
                let run = tools.vips(photo, size, &sized(&tools.out.join(format!("vset-{i}.jpg")), size))?;
                three = Run {
                    secs: three.secs + run.secs,
                    rss_kib: three.rss_kib.max(run.rss_kib),
                    pss_kib: three.pss_kib.max(run.pss_kib),
                };
            }
            vips.add(three, 3);
        }
    }
    report(
        "download set 2048+1024+320 (ours watermarked, vips not)",
        &ours,
        &vips,
        None,
    );
    crate::bench_crop::run(&tools, &photos, repeat)?;
    crate::bench_print::run(&tools, &photos, repeat)?;
    crate::bench_batch::run(&tools, &photos)?;
    crate::bench_big::run(&tools, &photos)
}

pub(crate) fn report(title: &str, ours: &Tally, vips: &Tally, magick: Option<&Tally>) {
    println!("  {title}");
    println!(
        "    {:<16} {:>12} {:>13} {:>13} {:>10} {:>10} {:>10}",
        "tool", "renditions/s", "peak RSS MiB", "peak PSS MiB", "speed ×vips", "RSS ×vips", "PSS ×vips"
    );
    let row = |name: &str, t: &Tally| {
        println!(
            "    {name:<16} {:>12.2} {:>13.1} {:>13.1} {:>10.2} {:>10.2} {:>10.2}",
            t.per_sec(),
            t.rss_max as f64 / 1024.0,
            t.pss_max as f64 / 1024.0,
            t.per_sec() / vips.per_sec(),
            t.rss_max as f64 / vips.rss_max as f64,
            t.pss_max as f64 / vips.pss_max as f64
        )
    };
    row("rendition", ours);
    row("vipsthumbnail", vips);
    if let Some(m) = magick {
        row("ImageMagick", m);
    }
}
