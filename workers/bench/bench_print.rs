//! What metadata profiles and CMYK output cost (docs/metadata.md): each
//! photograph at 2048 px as JPEG under every profile against the same
//! rendition with none; CMYK through a printer's profile against
//! `vipsthumbnail --export-profile` with the same profile; our `all`
//! against vipsthumbnail keeping the metadata (no `strip`).

use std::path::{Path, PathBuf};

use crate::bench_cmd::{Tally, Tools, measure, report};

/// Ghostscript's CMYK output profile (Debian's libgs-common).
const PRINTER: &str = "/usr/share/color/icc/ghostscript/default_cmyk.icc";

fn ours(tools: &Tools, photo: &Path, extra: &[&str], to: String) -> anyhow::Result<crate::bench_cmd::Run> {
    let mut args = vec!["thumbnail".to_string(), photo.display().to_string()];
    args.extend(["--size", "2048", "--quality", "85", "-o"].map(String::from));
    args.push(to);
    args.extend(extra.iter().map(|s| s.to_string()));
    measure(&tools.us, &args)
}

fn vips(photo: &Path, extra: &[&str], to: String) -> anyhow::Result<crate::bench_cmd::Run> {
    let mut args = vec![photo.display().to_string(), "--size".into(), "2048".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), to]);
    measure("vipsthumbnail", &args)
}

pub(crate) fn run(tools: &Tools, photos: &[PathBuf], repeat: u32) -> anyhow::Result<()> {
    let profiles = ["none", "rights", "public", "all"];
    let mut by_profile: Vec<Tally> = profiles.iter().map(|_| Tally::default()).collect();
    let (mut cmyk, mut vips_cmyk, mut vips_keep) = (Tally::default(), Tally::default(), Tally::default());
    for _ in 0..repeat {
        for (i, photo) in photos.iter().enumerate() {
            let out = |name: &str| tools.out.join(format!("{name}-{i}.jpg")).display().to_string();
            for (tally, profile) in by_profile.iter_mut().zip(profiles) {
                tally.add(ours(tools, photo, &["--metadata", profile], out(profile))?, 1);
            }
            cmyk.add(
                ours(tools, photo, &["--metadata", "none", "--cmyk", PRINTER], out("cmyk"))?,
                1,
            );
            let strip = format!("{}[Q=85,strip]", out("vcmyk"));
            vips_cmyk.add(vips(photo, &["--export-profile", PRINTER], strip)?, 1);
            vips_keep.add(vips(photo, &[], format!("{}[Q=85]", out("vkeep")))?, 1);
        }
    }
    let none = by_profile[0].per_sec();
    println!("  metadata profiles, 2048 px JPEG: time per rendition against `none`");
    for (tally, profile) in by_profile.iter().zip(profiles) {
        println!("    {profile:<8} {:.3}×", none / tally.per_sec());
    }
    println!();
    report(
        "metadata `all` (vips keeps the metadata: no strip)",
        &by_profile[3],
        &vips_keep,
        None,
    );
    report(
        "CMYK JPEG through a printer's profile (vips: --export-profile)",
        &cmyk,
        &vips_cmyk,
        None,
    );
    println!(
        "    CMYK against our sRGB rendition (metadata none): {:.2}× the time per rendition\n",
        none / cmyk.per_sec()
    );
    Ok(())
}
