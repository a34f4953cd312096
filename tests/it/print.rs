//! Print outputs (docs/metadata.md#print): CMYK through a printer's
//! profile as JPEG and TIFF, read back by exiftool and by the engine's own
//! decoder (which converts CMYK with the embedded profile to sRGB: the
//! picture must look the same as the sRGB rendition); the resolution.

use std::process::Command;

use rendition::rendition::{Colour, EngineLimits, OutputFormat, PrintProfile, Size, render};
use serde_json::Value;

use crate::common::mean_diff;
use crate::engine::{original, spec};

/// Ghostscript's CMYK output profile (Debian's libgs-common).
const PRINTER: &str = "/usr/share/color/icc/ghostscript/default_cmyk.icc";

fn printer() -> PrintProfile {
    PrintProfile {
        name: "press".into(),
        icc: std::fs::read(PRINTER).expect("libgs-common (scripts/install-deps installs it)"),
    }
}

fn made(format: OutputFormat, colour: Colour, dpi: Option<u16>) -> Vec<u8> {
    let mut spec = spec(&[Size::LongEdge(320)], format, None);
    spec.colour = colour;
    spec.dpi = dpi;
    let out = render(&original("photo.jpg"), &spec, &EngineLimits::default()).unwrap();
    out.into_iter().next().unwrap().bytes
}

fn exiftool(bytes: &[u8], ext: &str) -> serde_json::Map<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("out.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("exiftool").args(["-j", "-n"]).arg(&path).output().unwrap();
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    all[0].as_object().cloned().unwrap()
}

/// The picture as the engine's decoder sees it, in sRGB.
fn seen(bytes: &[u8]) -> image::RgbImage {
    let spec = spec(&[Size::Full], OutputFormat::Png, None);
    let out = render(bytes, &spec, &EngineLimits::default()).unwrap();
    image::load_from_memory(&out[0].bytes).unwrap().to_rgb8()
}

#[test]
fn a_cmyk_jpeg_carries_the_printers_profile_and_looks_like_the_srgb_rendition() {
    let cmyk = made(OutputFormat::Jpeg, Colour::Cmyk(printer()), Some(300));
    let tags = exiftool(&cmyk, "jpg");
    assert_eq!(tags["ColorComponents"], 4, "{tags:?}");
    assert_eq!(tags["ColorSpaceData"], "CMYK", "the printer's profile is embedded");
    assert_eq!(
        (tags["XResolution"].clone(), tags["ResolutionUnit"].clone()),
        (300.into(), 1.into())
    );
    let plain = made(OutputFormat::Jpeg, Colour::Srgb, None);
    let diff = mean_diff(&seen(&cmyk), &seen(&plain));
    assert!(diff < 10.0, "the CMYK rendition looks different: {diff:.1}");
}

#[test]
fn a_cmyk_tiff_is_separated_with_the_printers_profile_at_its_resolution() {
    let cmyk = made(OutputFormat::Tiff, Colour::Cmyk(printer()), Some(600));
    let tags = exiftool(&cmyk, "tif");
    assert_eq!(tags["PhotometricInterpretation"], 5, "separated: {tags:?}");
    assert_eq!(tags["SamplesPerPixel"], 4);
    assert_eq!(tags["ColorSpaceData"], "CMYK");
    assert_eq!(tags["XResolution"], 600);
    let plain = made(OutputFormat::Tiff, Colour::Srgb, None);
    assert_eq!(
        exiftool(&plain, "tif")["XResolution"],
        300,
        "300 ppi unless a preset says"
    );
    let diff = mean_diff(&seen(&cmyk), &seen(&plain));
    assert!(diff < 10.0, "the CMYK rendition looks different: {diff:.1}");
}

#[test]
fn the_resolution_is_recorded_in_jpeg_and_png() {
    let jpeg = exiftool(&made(OutputFormat::Jpeg, Colour::Srgb, Some(150)), "jpg");
    assert_eq!(
        (jpeg["XResolution"].clone(), jpeg["ResolutionUnit"].clone()),
        (150.into(), 1.into())
    );
    let png = exiftool(&made(OutputFormat::Png, Colour::Srgb, Some(300)), "png");
    assert_eq!(png["PixelsPerUnitX"], 11811, "{png:?}");
}
