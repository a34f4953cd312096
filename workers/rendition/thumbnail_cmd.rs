//! `rendition thumbnail`: one image through the engine, no policy, no store
//! (the same shape as `vipsthumbnail`, so the two can be timed alike).

use std::path::PathBuf;

use anyhow::Context;
use rendition::error::Coded;
use rendition::rendition::{
    Colour, EngineLimits, Fit, Frame, Logo, MetadataProfile, MetadataSpec, OutputFormat, Position, PrintProfile, Size,
    Spec, WatermarkSpec, render_file,
};

use crate::common::sized;

/// Render one image file to one or more sizes (no policy, no store).
#[derive(clap::Args)]
pub struct ThumbnailArgs {
    input: PathBuf,
    /// Long edges, e.g. 2048 or 2048,1024,320.
    #[arg(long = "size", value_delimiter = ',', required_unless_present = "crop")]
    sizes: Vec<u32>,
    /// Instead of sizes: a `cover` frame, WIDTHxHEIGHT, cropped around the
    /// most interesting window (a preset's crop without a focal point).
    #[arg(long, conflicts_with = "sizes", value_parser = frame)]
    crop: Option<Frame>,
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = 85)]
    quality: u8,
    /// The output's encoding.
    #[arg(long, value_parser = ["jpeg", "webp", "png", "avif", "tiff"], default_value = "jpeg")]
    format: String,
    /// Burn in this text, tiled.
    #[arg(long)]
    watermark: Option<String>,
    /// With --watermark: a PNG logo drawn before the text.
    #[arg(long, requires = "watermark")]
    logo: Option<PathBuf>,
    /// The page of a PDF or a multipage TIFF, from 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    page: u32,
    /// The metadata kept (docs/metadata.md).
    #[arg(long, value_parser = ["none", "rights", "public", "all"], default_value = "rights")]
    metadata: String,
    /// Separate to CMYK through this ICC output profile (JPEG and TIFF).
    #[arg(long)]
    cmyk: Option<PathBuf>,
    /// Pixels per inch recorded in the file (JPEG, PNG, TIFF).
    #[arg(long)]
    dpi: Option<u16>,
}

/// Writes `OUTPUT` for one size, or `OUTPUT-<size>.<ext>` for several.
pub fn run(args: ThumbnailArgs) -> anyhow::Result<()> {
    let logo = match &args.logo {
        Some(path) => Some(Logo::new(
            image::open(path)
                .with_context(|| path.display().to_string())?
                .to_rgba8(),
        )),
        None => None,
    };
    let sizes: Vec<Size> = match args.crop {
        Some(frame) => vec![Size::Frame(frame)],
        None => args.sizes.iter().map(|&n| Size::LongEdge(n)).collect(),
    };
    let spec = Spec {
        sizes,
        format: match args.format.as_str() {
            "webp" => OutputFormat::Webp,
            "png" => OutputFormat::Png,
            "avif" => OutputFormat::Avif,
            "tiff" => OutputFormat::Tiff,
            _ => OutputFormat::Jpeg,
        },
        quality: args.quality,
        watermark: args.watermark.map(|text| WatermarkSpec {
            text,
            opacity: 0.35,
            position: Position::Tiled,
            logo,
        }),
        page: args.page,
        metadata: MetadataSpec {
            profile: match args.metadata.as_str() {
                "none" => MetadataProfile::None,
                "public" => MetadataProfile::Public,
                "all" => MetadataProfile::All,
                _ => MetadataProfile::Rights,
            },
            usage_terms: None,
        },
        colour: match &args.cmyk {
            Some(path) => Colour::Cmyk(PrintProfile {
                name: path.display().to_string(),
                icc: std::fs::read(path).with_context(|| path.display().to_string())?,
            }),
            None => Colour::Srgb,
        },
        dpi: args.dpi,
        forensic: None,
    };
    // From the file: PNG and TIFF are read a strip at a time, never whole.
    // The stable code first, so scripts (scripts/corpus) can count failures.
    let outputs = render_file(&args.input, &spec, &EngineLimits::default())
        .map_err(|e| anyhow::anyhow!("{}: {}: {e}", e.code(), args.input.display()))?;
    for (out, size) in outputs
        .iter()
        .zip(args.sizes.iter().chain(args.crop.map(|f| f.width).as_ref()))
    {
        let path = if outputs.len() == 1 {
            args.output.clone()
        } else {
            sized(&args.output, *size)
        };
        std::fs::write(&path, &out.bytes).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// `1080x1080` as a cover frame.
fn frame(text: &str) -> Result<Frame, String> {
    let (w, h) = text.split_once('x').ok_or("WIDTHxHEIGHT, e.g. 1080x1080")?;
    let side = |v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(format!("{v} is not a size in pixels"))
    };
    Ok(Frame {
        width: side(w)?,
        height: side(h)?,
        fit: Fit::Cover,
        focus: None,
    })
}
