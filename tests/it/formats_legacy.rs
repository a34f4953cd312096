//! The legacy formats read through ImageMagick as a sandboxed child (issue
//! 12): SGI, PCX, Sun raster, FITS and XPM, told by content; their pixels
//! against the reference picture they were made from (all lossless), XPM's
//! transparency, a smaller size, and hostile files (truncated, bomb
//! dimensions, garbage after a magic number) failing with stable codes.

use image::{DynamicImage, RgbImage, RgbaImage};
use rendition::error::Coded;
use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::common::mean_diff;
use crate::engine::spec;
use crate::formats_heif::fixture;

/// The failure's code, or "rendered".
fn code(source: &[u8]) -> String {
    rendered(source, Size::LongEdge(200)).map_or_else(|code| code, |_| "rendered".into())
}

fn rendered(source: &[u8], size: Size) -> Result<RgbaImage, String> {
    let out = render(
        source,
        &spec(&[size], OutputFormat::Png, None),
        &EngineLimits::default(),
    )
    .map_err(|e| e.code().to_string())?;
    Ok(image::load_from_memory(&out[0].bytes).unwrap().to_rgba8())
}

/// The opaque colours of a rendered picture.
fn rgb(image: RgbaImage) -> RgbImage {
    DynamicImage::ImageRgba8(image).to_rgb8()
}

#[test]
fn sgi_pcx_dcx_sun_raster_and_pfm_come_out_as_the_picture_they_were_made_from() {
    let reference = image::load_from_memory(&fixture("formats/legacy.png"))
        .unwrap()
        .to_rgb8();
    for (name, format) in [
        ("legacy.sgi", SourceFormat::Sgi),
        ("legacy.pcx", SourceFormat::Pcx),
        ("legacy.ras", SourceFormat::SunRaster),
        ("legacy.dcx", SourceFormat::Dcx),
        ("legacy.pfm", SourceFormat::Pfm),
    ] {
        let bytes = fixture(&format!("formats/{name}"));
        let header = probe(&bytes, &EngineLimits::default()).unwrap();
        assert_eq!(
            (header.format, header.width, header.height),
            (format, 160, 107),
            "{name}"
        );
        let out = rgb(rendered(&bytes, Size::Full).unwrap());
        assert!(
            mean_diff(&out, &reference) < 0.5,
            "{name}: {}",
            mean_diff(&out, &reference)
        );
        let small = rendered(&bytes, Size::LongEdge(80)).unwrap();
        assert_eq!(small.dimensions(), (80, 54), "{name}");
    }
}

#[test]
fn fits_comes_out_grey_xbm_black_and_white_and_xpm_keeps_its_transparency() {
    let fits = fixture("formats/legacy-grey.fits");
    assert_eq!(
        probe(&fits, &EngineLimits::default()).unwrap().format,
        SourceFormat::Fits
    );
    let grey = rgb(rendered(&fits, Size::Full).unwrap());
    let reference = image::load_from_memory(&fixture("formats/legacy.png")).unwrap();
    let luma = DynamicImage::ImageLuma8(reference.to_luma8()).to_rgb8();
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "grey");
    // ImageMagick's and `image`'s grey weights differ slightly.
    assert!(mean_diff(&grey, &luma) < 3.0, "{}", mean_diff(&grey, &luma));
    // FITS rows run bottom-up; the picture is still upright.
    let top_dark = grey.get_pixel(80, 2)[0].abs_diff(luma.get_pixel(80, 2)[0]);
    assert!(top_dark < 12, "upright: {top_dark}");

    // XBM: one bit, black and white, at its size.
    let xbm = fixture("formats/legacy.xbm");
    assert_eq!(probe(&xbm, &EngineLimits::default()).unwrap().format, SourceFormat::Xbm);
    let bits = rgb(rendered(&xbm, Size::Full).unwrap());
    assert_eq!(bits.dimensions(), (160, 107));
    assert!(
        bits.pixels().all(|p| p.0 == [0; 3] || p.0 == [255; 3]),
        "black and white"
    );
    assert!(bits.pixels().any(|p| p.0 == [0; 3]) && bits.pixels().any(|p| p.0 == [255; 3]));

    let xpm = fixture("formats/shapes.xpm");
    assert_eq!(probe(&xpm, &EngineLimits::default()).unwrap().format, SourceFormat::Xpm);
    let out = rendered(&xpm, Size::Full).unwrap();
    assert_eq!(out.dimensions(), (64, 48));
    assert_eq!(out.get_pixel(2, 2)[3], 0, "transparent outside the rectangle");
    assert_eq!(out.get_pixel(20, 20).0, [0xE0, 0x20, 0x20, 255], "the red rectangle");
}

#[test]
fn hostile_legacy_files_fail_with_stable_codes() {
    let sgi = fixture("formats/legacy.sgi");
    let pcx = fixture("formats/legacy.pcx");
    // Truncated: half the pixels are missing.
    for (name, bytes) in [("sgi", &sgi), ("pcx", &pcx)] {
        let half = &bytes[..bytes.len() / 2];
        assert_eq!(code(half), "corrupt_input", "{name}");
    }
    // A 65 535 × 65 535 SGI header over the same few bytes: refused from
    // the size, before ImageMagick decodes a pixel.
    let mut bomb = sgi.clone();
    bomb[6..10].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(code(&bomb), "too_large");
    // A magic number and garbage.
    let mut garbage = vec![0x59, 0xA6, 0x6A, 0x95];
    garbage.extend(std::iter::repeat_n(0x5A, 200));
    assert_eq!(code(&garbage), "corrupt_input");
    // Nothing but a header line.
    assert_eq!(code(b"/* XPM */\n"), "corrupt_input");
}

#[test]
fn what_image_cannot_read_of_a_common_format_imagemagick_may() {
    // A 1 × 1 GIF with neither a global nor a local colour table, which
    // the `image` crate refuses ("no color table"): index 0 is black.
    let gif = b"GIF89a\x01\0\x01\0\0\0\0\x2c\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0\x3b";
    assert_eq!(probe(gif, &EngineLimits::default()).unwrap().format, SourceFormat::Gif);
    let out = rgb(rendered(gif, Size::Full).unwrap());
    assert_eq!((out.dimensions(), out.get_pixel(0, 0).0), ((1, 1), [0, 0, 0]));
}
