//! Presets' frames in the engine (docs/contract.md#presets): `cover` is the
//! frame exactly, cropped around the focal point, which stays in every
//! crop; a subject at the focal point survives a crop that cuts most of the
//! picture away; `pad` is the frame with the whole picture on it; nothing is
//! upscaled; the watermark is drawn on the frame as delivered; and a preset
//! job through the pipeline delivers the preset's frame and format.

use image::{DynamicImage, GenericImageView, Rgb, RgbImage};
use proptest::prelude::*;
use rendition::rendition::resize::framed;
use rendition::rendition::{EngineLimits, Fit, Frame, OutputFormat, Position, Size, render};

use crate::engine::{original, spec};

fn frame(width: u32, height: u32, fit: Fit, focus: Option<[u16; 2]>) -> Size {
    Size::Frame(Frame {
        width,
        height,
        fit,
        focus,
    })
}

fn made(source: &[u8], size: Size, format: OutputFormat, mark: Option<Position>) -> DynamicImage {
    let out = render(source, &spec(&[size], format, mark), &EngineLimits::default()).unwrap();
    assert_eq!(
        (out[0].width, out[0].height),
        image::load_from_memory(&out[0].bytes).unwrap().dimensions()
    );
    image::load_from_memory(&out[0].bytes).unwrap()
}

#[test]
fn cover_inside_and_pad_make_what_they_say() {
    let hero = original("hero.jpg"); // 2400×1598
    let cover = made(&hero, frame(1080, 1080, Fit::Cover, None), OutputFormat::Jpeg, None);
    assert_eq!(cover.dimensions(), (1080, 1080));
    let inside = made(&hero, frame(1080, 1080, Fit::Inside, None), OutputFormat::Jpeg, None);
    assert_eq!(inside.dimensions(), (1080, 719));
    let pad = made(&hero, frame(1080, 1080, Fit::Pad, None), OutputFormat::Png, None).to_rgba8();
    assert_eq!(pad.dimensions(), (1080, 1080));
    // Above and below the picture: the canvas (white: hero has no alpha).
    assert_eq!(pad.get_pixel(540, 10).0, [255, 255, 255, 255]);
    assert_eq!(pad.get_pixel(540, 1070).0, [255, 255, 255, 255]);
    // A source smaller than the frame: the largest crop of its shape, not
    // an upscale.
    let small = made(
        &original("photo.jpg"),
        frame(3000, 1000, Fit::Cover, None),
        OutputFormat::Jpeg,
        None,
    );
    assert_eq!(small.dimensions(), (1200, 400));
    // Alpha is kept on a pad canvas that is transparent.
    let alpha = made(
        &original("alpha.png"),
        frame(400, 400, Fit::Pad, None),
        OutputFormat::Png,
        None,
    )
    .to_rgba8();
    assert_eq!((alpha.dimensions(), alpha.get_pixel(200, 2).0[3]), ((320, 320), 0));
}

/// A grey picture with a red square of `side` px centred at (`x`, `y`).
fn with_subject(width: u32, height: u32, (x, y): (u32, u32), side: u32) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |px, py| {
        if px.abs_diff(x) < side / 2 && py.abs_diff(y) < side / 2 {
            Rgb([220, 20, 20])
        } else {
            Rgb([120, 120, 120])
        }
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(picture)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

fn red(img: &DynamicImage) -> usize {
    img.to_rgb8().pixels().filter(|p| p.0[0] > 180 && p.0[1] < 80).count()
}

#[test]
fn a_subject_at_the_focal_point_stays_in_a_narrow_crop() {
    // A subject near the right edge of a wide picture; a tall frame keeps
    // a seventh of the width.
    let source = with_subject(2100, 900, (1900, 450), 100);
    let at = Some([(1900 * 10_000 / 2100) as u16, 5000]);
    let kept = made(&source, frame(300, 900, Fit::Cover, at), OutputFormat::Png, None);
    assert_eq!(kept.dimensions(), (300, 900));
    assert!(red(&kept) > 9000, "the subject is in the crop");
    // A focal point elsewhere loses it: the crop goes where it is told.
    let elsewhere = made(
        &source,
        frame(300, 900, Fit::Cover, Some([2000, 5000])),
        OutputFormat::Png,
        None,
    );
    assert_eq!(red(&elsewhere), 0);
}

#[test]
fn without_a_focal_point_the_crop_finds_the_subject() {
    // The subject off-centre on a plain ground: the most interesting
    // window holds it (libvips' `attention`, as src/rendition/attention.rs
    // scores it), not the centre.
    let source = with_subject(2100, 900, (1900, 450), 100);
    let found = made(&source, frame(300, 900, Fit::Cover, None), OutputFormat::Png, None);
    assert!(red(&found) > 9000, "{} red pixels", red(&found));
    // A picture with nothing in it is cropped in its centre.
    let plain = with_subject(2100, 900, (0, 0), 0);
    let centred = framed(
        2100,
        900,
        Frame {
            width: 300,
            height: 900,
            fit: Fit::Cover,
            focus: None,
        },
    );
    assert_eq!(centred.region[0], 900.0);
    assert_eq!(
        made(&plain, frame(300, 900, Fit::Cover, None), OutputFormat::Png, None).dimensions(),
        (300, 900)
    );
}

#[test]
fn the_watermark_is_drawn_on_the_cropped_frame() {
    let source = with_subject(2100, 900, (1900, 450), 100);
    let size = frame(300, 900, Fit::Cover, Some([9000, 5000]));
    let plain = made(&source, size, OutputFormat::Png, None).to_rgb8();
    let marked = made(&source, size, OutputFormat::Png, Some(Position::Tiled)).to_rgb8();
    assert_eq!(marked.dimensions(), (300, 900));
    let changed = plain.pixels().zip(marked.pixels()).filter(|(a, b)| a != b).count();
    assert!(changed > 300 * 900 / 20, "the mark covers the frame: {changed} pixels");
}

proptest! {
    /// The focal point lies in every cover crop, the crop lies in the
    /// picture and has the frame's shape, and nothing is drawn larger than
    /// the frame or the crop.
    #[test]
    fn the_focal_point_stays_inside_every_crop(
        (w, h) in (1u32..8000, 1u32..8000),
        (fw, fh) in (1u32..4000, 1u32..4000),
        (fx, fy) in (0u16..=10_000, 0u16..=10_000),
    ) {
        let placed = framed(w, h, Frame { width: fw, height: fh, fit: Fit::Cover, focus: Some([fx, fy]) });
        let [left, top, rw, rh] = placed.region;
        let (px, py) = (f64::from(fx) / 1e4 * f64::from(w), f64::from(fy) / 1e4 * f64::from(h));
        let eps = 1e-6;
        prop_assert!(left >= -eps && top >= -eps && left + rw <= f64::from(w) + eps && top + rh <= f64::from(h) + eps);
        prop_assert!(px >= left - eps && px <= left + rw + eps && py >= top - eps && py <= top + rh + eps);
        prop_assert!((rw / rh - f64::from(fw) / f64::from(fh)).abs() <= 1e-6 * (rw / rh).max(1.0));
        let (dw, dh) = placed.drawn;
        prop_assert!(dw <= fw && dh <= fh && f64::from(dw) <= rw.ceil() && f64::from(dh) <= rh.ceil());
    }
}
