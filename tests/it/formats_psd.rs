//! Photoshop files (issue 12), made by ImageMagick (fixtures/originals/
//! formats): the composite and never a layer, CMYK, 16-bit, grey, alpha,
//! the embedded profile, and hostile headers with stable codes.

use image::RgbaImage;
use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;
use crate::formats_heif::{code_of, distance, fixture, full};

fn png(name: &str) -> RgbaImage {
    image::load_from_memory(&fixture(name)).unwrap().to_rgba8()
}

#[test]
fn a_layered_psd_gives_its_composite_not_a_layer() {
    let psd = fixture("formats/layered.psd");
    assert_eq!(probe(&psd, &EngineLimits::default()).unwrap().format, SourceFormat::Psd);
    let out = full(&psd);
    // Lossless both ways: the very pixels of the composite.
    assert_eq!(out.as_raw(), png("formats/layered-composite.png").as_raw());
    // Shrunk as it is read: a small size is the right shape.
    let small = render(
        &psd,
        &spec(&[Size::LongEdge(60)], OutputFormat::Jpeg, None),
        &EngineLimits::default(),
    )
    .unwrap();
    assert_eq!((small[0].width, small[0].height), (60, 40));
}

#[test]
fn cmyk_grey_and_16_bit_psds_come_out_as_srgb() {
    let composite = png("formats/layered-composite.png");
    // ImageMagick's plain RGB → CMYK, read back without a profile: near
    // the RGB it came from, and black was not taken for alpha.
    let cmyk = full(&fixture("formats/cmyk.psd"));
    let d = distance(&cmyk, &composite);
    assert!(d < 3.0, "CMYK differs by {d:.2}");
    assert!(cmyk.pixels().all(|p| p[3] == 255), "CMYK has no alpha");
    let grey = full(&fixture("formats/grey.psd"));
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let luma = |p: &image::Rgba<u8>| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let mean = |i: &RgbaImage, f: &dyn Fn(&image::Rgba<u8>) -> f64| {
        i.pixels().map(f).sum::<f64>() / f64::from(i.width() * i.height())
    };
    let (g, c) = (mean(&grey, &|p| f64::from(p[0])), mean(&composite, &luma));
    assert!((g - c).abs() < 12.0, "grey mean {g:.1}, composite luma {c:.1}");
    // The 16-bit red → blue gradient, rounded to 8 bits.
    let deep = full(&fixture("formats/deep16.psd"));
    assert_eq!(deep.width(), 160);
    let (top, bottom) = (deep.get_pixel(80, 0), deep.get_pixel(80, deep.height() - 1));
    assert!(top[0] > 240 && top[2] < 15, "top {top:?}");
    assert!(bottom[2] > 240 && bottom[0] < 15, "bottom {bottom:?}");
}

#[test]
fn psd_alpha_and_profile_are_honoured() {
    let alpha = full(&fixture("formats/alpha.psd"));
    let (top, bottom) = (alpha.get_pixel(80, 0)[3], alpha.get_pixel(80, alpha.height() - 1)[3]);
    assert!(top > 240 && bottom < 15, "alpha {top} → {bottom}");
    // Adobe RGB pixels with their profile: nearer the converted JPEG than
    // the same pixels taken as sRGB.
    let psd = full(&fixture("formats/adobergb.psd"));
    let jpeg = image::load_from_memory(&fixture("adobergb.jpg")).unwrap();
    let size = |i: image::DynamicImage| {
        i.resize_exact(psd.width(), psd.height(), image::imageops::FilterType::Triangle)
            .to_rgba8()
    };
    let converted = size(
        image::load_from_memory(
            &render(
                &fixture("adobergb.jpg"),
                &spec(&[Size::Full], OutputFormat::Png, None),
                &EngineLimits::default(),
            )
            .unwrap()[0]
                .bytes,
        )
        .unwrap(),
    );
    let unconverted = size(jpeg);
    let (near, far) = (distance(&psd, &converted), distance(&psd, &unconverted));
    assert!(near < far, "ICC: {near:.2} to converted, {far:.2} to raw");
}

/// A PSD header: version, channels, height, width, depth, mode, and empty
/// sections, then `tail`.
fn header(version: u16, channels: u16, height: u32, width: u32, depth: u16, mode: u16, tail: &[u8]) -> Vec<u8> {
    let mut b = b"8BPS".to_vec();
    b.extend(version.to_be_bytes());
    b.extend([0; 6]);
    b.extend(channels.to_be_bytes());
    b.extend(height.to_be_bytes());
    b.extend(width.to_be_bytes());
    b.extend(depth.to_be_bytes());
    b.extend(mode.to_be_bytes());
    // Colour mode data, resources and layer section lengths (PSB: 8 bytes).
    b.extend(vec![0; if version == 2 { 16 } else { 12 }]);
    b.extend(tail);
    b
}

#[test]
fn hostile_psds_fail_with_stable_codes() {
    let psd = fixture("formats/layered.psd");
    assert_eq!(code_of(&psd[..psd.len() / 2]), "corrupt_input", "truncated");
    assert_eq!(code_of(&psd[..20]), "corrupt_input", "header cut short");
    // 300 000 × 300 000 PSB: refused from the header.
    assert_eq!(
        code_of(&header(2, 3, 300_000, 300_000, 8, 3, &[0, 1])),
        "too_large",
        "bomb"
    );
    // 99 M rows of one pixel: the row table would be larger than the file.
    assert_eq!(
        code_of(&header(1, 3, 99_000_000, 1, 8, 3, &[0, 1])),
        "corrupt_input",
        "row table"
    );
    assert_eq!(
        code_of(&header(1, 0, 10, 10, 8, 3, &[0, 0])),
        "corrupt_input",
        "no channels"
    );
    assert_eq!(
        code_of(&header(1, 3, 0, 10, 8, 3, &[0, 0])),
        "corrupt_input",
        "zero height"
    );
    assert_eq!(
        code_of(&header(1, 3, 10, 10, 8, 9, &[0, 0])),
        "unsupported_format",
        "Lab"
    );
    assert_eq!(
        code_of(&header(1, 3, 10, 10, 32, 3, &[0, 0])),
        "unsupported_format",
        "32-bit"
    );
}
