//! The formats beyond JPEG, PNG, WebP, TIFF, GIF and BMP (issue 12), each
//! recognised by its content: sizes, colour against the pixels it was
//! made from, alpha, and a stable code for a broken file.

use image::{DynamicImage, ImageFormat, RgbaImage};
use rendition::error::Coded;
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;

/// A picture with alpha: a gradient, and a transparent left quarter.
fn picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let a = if x < w / 4 { 0 } else { 255 };
        image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 128, a])
    })
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Renders `source` at full size as PNG and returns the decoded output.
fn full_png(source: &[u8]) -> RgbaImage {
    let out = render(
        source,
        &spec(&[Size::Full], OutputFormat::Png, None),
        &EngineLimits::default(),
    )
    .unwrap();
    image::load_from_memory(&out[0].bytes).unwrap().to_rgba8()
}

#[test]
fn ico_and_pnm_are_read_by_their_content() {
    let rgba = DynamicImage::ImageRgba8(picture(200, 150));
    let rgb = DynamicImage::ImageRgb8(rgba.to_rgb8());
    // ICO keeps alpha; PNM (PPM) is opaque RGB.
    for (format, source, alpha) in [(ImageFormat::Ico, &rgba, true), (ImageFormat::Pnm, &rgb, false)] {
        let bytes = encoded(source, format);
        let out = full_png(&bytes);
        assert_eq!(out.dimensions(), (200, 150), "{format:?}");
        // Same pixels as the source (lossless both ways).
        assert_eq!(out.as_raw(), &source.to_rgba8().into_raw(), "{format:?} pixels");
        assert_eq!(out.get_pixel(10, 10)[3] == 0, alpha, "{format:?} alpha");
        // A smaller size fits, and a broken file fails with a stable code.
        let small = render(
            &bytes,
            &spec(&[Size::LongEdge(64)], OutputFormat::Jpeg, None),
            &EngineLimits::default(),
        )
        .unwrap();
        assert_eq!((small[0].width, small[0].height), (64, 48), "{format:?}");
        let broken = &bytes[..bytes.len() / 2];
        let err = render(
            broken,
            &spec(&[Size::Full], OutputFormat::Png, None),
            &EngineLimits::default(),
        )
        .expect_err("truncated");
        assert_eq!(err.code(), "corrupt_input", "{format:?}: {err}");
    }
}

#[test]
fn a_pnm_bomb_is_refused_from_its_header() {
    // A 60 000 × 60 000 PPM header with no pixels.
    let bomb = b"P6\n60000 60000\n255\n".to_vec();
    let err = render(
        &bomb,
        &spec(&[Size::LongEdge(320)], OutputFormat::Jpeg, None),
        &EngineLimits::default(),
    )
    .expect_err("bomb");
    assert_eq!(err.code(), "too_large", "{err}");
}
