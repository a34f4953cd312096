//! A preset's cover crop, 1080×1080 with no focal point (the engine picks
//! the most interesting window), against `vipsthumbnail --size 1080x1080
//! --smartcrop attention` on each photograph, and against our own plain
//! 1080 px rendition: what a crop costs.

use std::path::PathBuf;

use crate::bench_cmd::{Tally, Tools, measure, report};

pub(crate) fn run(tools: &Tools, photos: &[PathBuf], repeat: u32) -> anyhow::Result<()> {
    let (mut crop, mut plain, mut vips) = (Tally::default(), Tally::default(), Tally::default());
    for _ in 0..repeat {
        for (i, photo) in photos.iter().enumerate() {
            let out = |name: &str| tools.out.join(format!("{name}-{i}.jpg")).display().to_string();
            let ours = |extra: [&str; 2], to: String| {
                let mut args = vec!["thumbnail".to_string(), photo.display().to_string()];
                args.extend(extra.map(String::from));
                args.extend(["-o".into(), to, "--quality".into(), "85".into()]);
                measure(&tools.us, &args)
            };
            crop.add(ours(["--crop", "1080x1080"], out("crop"))?, 1);
            plain.add(ours(["--size", "1080"], out("plain1080"))?, 1);
            let args = [
                photo.display().to_string(),
                "--size".into(),
                "1080x1080".into(),
                "--smartcrop".into(),
                "attention".into(),
                "-o".into(),
                format!("{}[Q=85,strip]", out("vcrop")),
            ];
            vips.add(measure("vipsthumbnail", &args)?, 1);
        }
    }
    report(
        "cover crop 1080×1080, attention (vips: --smartcrop attention)",
        &crop,
        &vips,
        None,
    );
    println!(
        "    a crop against our plain 1080 px rendition: {:.2}× the time per rendition\n",
        plain.per_sec() / crop.per_sec()
    );
    Ok(())
}
