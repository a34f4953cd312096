//! HEIC/AVIF in and AVIF out (issue 12), on files made by Debian's
//! `heif-enc` (fixtures/originals/formats): size, colour against the file
//! they were made from, alpha, nclx and ICC colour, the EXIF orientation
//! HEIF says to ignore, and hostile files with stable codes.

use image::RgbaImage;
use rendition::error::Coded;
use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/originals/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The picture the TIFF, PSD and JPEG 2000 fixtures were made from.
pub(crate) fn composite() -> RgbaImage {
    image::load_from_memory(&fixture("formats/layered-composite.png"))
        .unwrap()
        .to_rgba8()
}

/// `source` at full size, decoded back from a lossless PNG output.
pub(crate) fn full(source: &[u8]) -> RgbaImage {
    let out = render(
        source,
        &spec(&[Size::Full], OutputFormat::Png, None),
        &EngineLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", e.code()));
    image::load_from_memory(&out[0].bytes).unwrap().to_rgba8()
}

/// Mean absolute difference per colour sample (alpha left out).
pub(crate) fn distance(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .pixels()
        .zip(b.pixels())
        .map(|(p, q)| (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>())
        .sum();
    sum as f64 / (a.width() * a.height() * 3) as f64
}

/// The stable code a render of `source` fails with, or "rendered".
pub(crate) fn code_of(source: &[u8]) -> String {
    render(
        source,
        &spec(&[Size::LongEdge(320)], OutputFormat::Jpeg, None),
        &EngineLimits::default(),
    )
    .map(|_| "rendered".to_string())
    .unwrap_or_else(|e| e.code().to_string())
}

#[test]
fn a_heic_photo_is_read_by_its_content_at_its_size_and_colour() {
    let heic = fixture("formats/photo.heic");
    assert_eq!(
        probe(&heic, &EngineLimits::default()).unwrap().format,
        SourceFormat::Heif
    );
    let out = full(&heic);
    let jpeg = full(&fixture("photo.jpg"));
    assert_eq!(out.dimensions(), jpeg.dimensions());
    // The same photograph through HEVC at quality 60: close, not equal.
    let d = distance(&out, &jpeg);
    assert!(d < 6.0, "HEIC differs from its JPEG by {d:.2} per sample");
    // Download sizes fit its long edge.
    let small = render(
        &heic,
        &spec(&[Size::LongEdge(300)], OutputFormat::Jpeg, None),
        &EngineLimits::default(),
    )
    .unwrap();
    assert_eq!((small[0].width, small[0].height), (300, 200));
}

#[test]
fn an_embedded_icc_profile_and_nclx_primaries_are_converted_to_srgb() {
    // Adobe RGB pixels with their profile: the HEIC ends up as the JPEG
    // does (converted), far from the same pixels taken as sRGB.
    let heic = full(&fixture("formats/adobergb.heic"));
    let converted = full(&fixture("adobergb.jpg"));
    let unconverted = image::load_from_memory(&fixture("adobergb.jpg")).unwrap().to_rgba8();
    let (near, far) = (distance(&heic, &converted), distance(&heic, &unconverted));
    assert!(near < far, "ICC: {near:.2} to converted, {far:.2} to raw");
    // The same AV1 pixels tagged Display P3 come out more saturated in sRGB.
    let p3 = full(&fixture("formats/p3.avif"));
    let srgb = full(&fixture("formats/srgb.avif"));
    let chroma = |i: &RgbaImage| {
        i.pixels()
            .map(|p| f64::from(p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])))
            .sum::<f64>()
            / f64::from(i.width() * i.height())
    };
    assert!(
        chroma(&p3) > chroma(&srgb) + 2.0,
        "P3 chroma {:.1}, sRGB {:.1}",
        chroma(&p3),
        chroma(&srgb)
    );
}

#[test]
fn avif_alpha_is_kept_and_exif_orientation_in_heif_is_ignored() {
    let avif = full(&fixture("formats/alpha.avif"));
    let png = image::load_from_memory(&fixture("alpha.png")).unwrap().to_rgba8();
    assert_eq!(avif.dimensions(), png.dimensions());
    let alpha_diff = avif
        .pixels()
        .zip(png.pixels())
        .map(|(a, b)| u64::from(a[3].abs_diff(b[3])))
        .sum::<u64>() as f64
        / f64::from(png.width() * png.height());
    assert!(alpha_diff < 4.0, "alpha differs by {alpha_diff:.2}");
    // heif-enc kept EXIF orientation 6 but wrote no `irot`: HEIF readers
    // (libheif, libvips, Apple's) show the pixels as stored, and so do we.
    let stored = full(&fixture("formats/orient-6.heic"));
    assert_eq!(stored.dimensions(), (64, 96));
}

#[test]
fn hostile_heif_files_fail_with_stable_codes() {
    let heic = fixture("formats/photo.heic");
    assert_eq!(code_of(&heic[..heic.len() / 2]), "corrupt_input", "truncated");
    assert_eq!(code_of(&heic[..40]), "corrupt_input", "only the file type box");
    // The primary image's ispe says 60 000 × 60 000.
    let mut bomb = heic.clone();
    let mut at = 0;
    while let Some(i) = bomb[at..].windows(4).position(|w| w == b"ispe") {
        let p = at + i + 8;
        bomb[p..p + 8].copy_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60]);
        at = p;
    }
    assert_eq!(code_of(&bomb), "too_large", "ispe bomb");
}

#[test]
fn avif_outputs_decode_to_their_size_with_alpha_kept() {
    for (name, alpha) in [("photo.jpg", false), ("alpha.png", true)] {
        let out = render(
            &fixture(name),
            &spec(&[Size::LongEdge(160)], OutputFormat::Avif, None),
            &EngineLimits::default(),
        )
        .unwrap();
        assert_eq!(out[0].format.content_type(), "image/avif");
        assert_eq!(&out[0].bytes[4..12], b"ftypavif", "{name}");
        let header = probe(&out[0].bytes, &EngineLimits::default()).unwrap();
        assert_eq!((header.width, header.height), (out[0].width, out[0].height), "{name}");
        assert_eq!(header.width.max(header.height), 160, "{name}");
        let back = full(&out[0].bytes);
        assert_eq!(back.pixels().any(|p| p[3] < 128), alpha, "{name}: alpha");
    }
}
