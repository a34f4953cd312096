//! `rendition bench`, second part: big masters (a 46 MP uncompressed TIFF,
//! a 46 MP PNG, an 80 MP JPEG, made from the most detailed bench photograph with
//! `vips resize`) to a 2048 px JPEG, this engine against `vipsthumbnail`,
//! each a process of its own under GNU time: CPU seconds and peak RSS.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::bench_cmd::{Tally, Tools, report, ssim};

/// One master: its file name (the suffix picks `vips`' saver and options)
/// and its size in megapixels.
const MASTERS: [(&str, f64); 3] = [
    ("master-46mp.tif[compression=none]", 46.0),
    ("master-46mp.png[compression=3]", 46.0),
    ("master-80mp.jpg[Q=90]", 80.0),
];

pub fn run(tools: &Tools, photos: &[PathBuf]) -> anyhow::Result<()> {
    let base = most_detailed(photos)?;
    println!("  big masters → 2048 px JPEG q85, made from {}", base.display());
    for (spec, megapixels) in MASTERS {
        let master = make(tools, &base, spec, megapixels)?;
        let (w, h) = image::image_dimensions(&master)?;
        let bytes = std::fs::metadata(&master)?.len();
        let (o, v) = (tools.out.join("big-ours.jpg"), tools.out.join("big-vips.jpg"));
        let (mut ours, mut vips) = (Tally::default(), Tally::default());
        ours.add(tools.ours(&master, &[2048], false, &o)?, 1);
        vips.add(tools.vips(&master, 2048, &v)?, 1);
        let title = format!(
            "{} {w}×{h}, {:.0} MB",
            master.file_name().unwrap_or_default().to_string_lossy(),
            bytes as f64 / 1e6
        );
        report(&title, &ours, &vips, None);
        println!("    SSIM ours vs vipsthumbnail: {:.4}\n", ssim(&o, &v)?);
    }
    Ok(())
}

/// The photograph with the most JPEG bytes per pixel: the most detail, so
/// the masters compress no better than real ones.
fn most_detailed(photos: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let mut best = None;
    for p in photos {
        let (w, h) = image::image_dimensions(p)?;
        let density = std::fs::metadata(p)?.len() as f64 / (f64::from(w) * f64::from(h));
        if best.as_ref().is_none_or(|(d, _)| density > *d) {
            best = Some((density, p.clone()));
        }
    }
    best.map(|(_, p)| p).context("no photographs")
}

/// Makes (once) a master of `megapixels` from `base` with `vips resize`.
fn make(tools: &Tools, base: &Path, spec: &str, megapixels: f64) -> anyhow::Result<PathBuf> {
    let name = spec.split('[').next().unwrap_or(spec);
    let path = tools.out.join(name);
    if path.exists() {
        return Ok(path);
    }
    let (w, h) = image::image_dimensions(base)?;
    let scale = (megapixels * 1e6 / (f64::from(w) * f64::from(h))).sqrt();
    let status = Command::new("vips")
        .arg("resize")
        .arg(base)
        .arg(format!("{}{}", path.display(), &spec[name.len()..]))
        .arg(format!("{scale:.6}"))
        .status()
        .context("running vips (libvips-tools)")?;
    if !status.success() {
        bail!("vips resize to {} failed", path.display());
    }
    Ok(path)
}
