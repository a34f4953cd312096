//! `rendition thumbnail`: one image through the engine, no policy, no store
//! (the same shape as `vipsthumbnail`, so the two can be timed alike).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rendition::policy::document::WatermarkPosition;
use rendition::rendition::{EngineLimits, OutputFormat, Size, Spec, WatermarkSpec, render};

pub struct ThumbnailArgs {
    pub input: PathBuf,
    pub sizes: Vec<u32>,
    pub output: PathBuf,
    pub quality: u8,
    pub watermark: Option<String>,
    /// A PNG drawn before the watermark text.
    pub logo: Option<PathBuf>,
}

/// Writes `OUTPUT` for one size, or `OUTPUT-<size>.jpg` for several.
pub fn thumbnail(args: ThumbnailArgs) -> anyhow::Result<()> {
    let source = std::fs::read(&args.input).with_context(|| args.input.display().to_string())?;
    let logo = match &args.logo {
        Some(path) => Some(std::sync::Arc::new(
            image::open(path)
                .with_context(|| path.display().to_string())?
                .to_rgba8(),
        )),
        None => None,
    };
    let spec = Spec {
        sizes: args.sizes.iter().map(|&n| Size::LongEdge(n)).collect(),
        format: OutputFormat::Jpeg,
        quality: args.quality,
        watermark: args.watermark.map(|text| WatermarkSpec {
            text,
            opacity: 0.35,
            position: WatermarkPosition::Tiled,
            logo,
        }),
    };
    let outputs = render(&source, &spec, &EngineLimits::default())?;
    for (out, size) in outputs.iter().zip(&args.sizes) {
        let path = if args.sizes.len() == 1 {
            args.output.clone()
        } else {
            sized(&args.output, *size)
        };
        std::fs::write(&path, &out.bytes).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

pub fn sized(output: &Path, size: u32) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or("out".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-{size}.jpg"))
}
