//! The TIFFs the pure-Rust reader cannot take, read through libtiff (issue
//! 12), on files made by ImageMagick and libtiff's tools (fixtures/
//! originals/formats, from layered-composite.png): size and colour against
//! the picture they were made from, a CMYK profile applied, the first of
//! two pages, shrinking, and hostile headers with stable codes.

use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;
use crate::formats_heif::{code_of, composite, distance, fixture, full};

#[test]
fn planar_ycbcr_lab_cmyk_multipage_and_bigtiff_tiffs_match_their_source() {
    let source = composite();
    // (file, how far its encoding may drift: JPEG and 8-bit Lab are lossy)
    for (name, within) in [
        ("planar16.tif", 1.0),
        ("ycbcr-jpeg.tif", 4.0),
        ("lab.tif", 2.0),
        ("cmyk.tif", 3.0),
        ("two-pages.tif", 1.0),
        ("bigtiff.tif", 1.0),
    ] {
        let tiff = fixture(&format!("formats/{name}"));
        let header = probe(&tiff, &EngineLimits::default()).unwrap();
        assert_eq!(
            (header.format, header.width, header.height),
            (SourceFormat::Tiff, 240, 160),
            "{name}"
        );
        let out = full(&tiff);
        let d = distance(&out, &source);
        assert!(d < within, "{name} differs by {d:.2}");
        assert!(out.pixels().all(|p| p[3] == 255), "{name} has no alpha");
    }
}

#[test]
fn lzma_and_4_bit_grey_tiffs_are_read() {
    let lzma = full(&fixture("formats/lzma.tif"));
    assert_eq!(lzma.as_raw(), full(&fixture("photo.tiff")).as_raw(), "LZMA is lossless");
    let grey = full(&fixture("formats/grey4.tif"));
    assert_eq!(grey.dimensions(), (240, 160));
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "grey stays grey");
    // 16 levels only, spread over the whole range.
    let levels: std::collections::BTreeSet<u8> = grey.pixels().map(|p| p[0]).collect();
    assert!(levels.len() <= 16 && levels.len() > 8, "{} levels", levels.len());
}

#[test]
fn a_cmyk_tiff_s_own_profile_is_applied() {
    // The profile's cyan acts on blue and its yellow on red: applied, the
    // picture comes out with red and blue swapped; ignored, it would not.
    let out = full(&fixture("formats/cmyk-icc.tif"));
    let mut swapped = composite();
    for p in swapped.pixels_mut() {
        p.0.swap(0, 2);
    }
    let (to_swapped, to_source) = (distance(&out, &swapped), distance(&out, &composite()));
    assert!(to_swapped < 6.0, "profile applied: off by {to_swapped:.2}");
    assert!(to_source > 3.0 * to_swapped, "profile ignored? {to_source:.2}");
}

#[test]
fn libtiff_read_tiffs_are_resized_to_the_size_asked() {
    for name in ["planar16.tif", "lab.tif", "ycbcr-jpeg.tif"] {
        let out = render(
            &fixture(&format!("formats/{name}")),
            &spec(&[Size::LongEdge(60)], OutputFormat::Jpeg, None),
            &EngineLimits::default(),
        )
        .unwrap();
        assert_eq!((out[0].width, out[0].height), (60, 40), "{name}");
    }
}

/// `tiff` (little-endian, classic) with its first page's width and height
/// set to `w` × `h`.
fn with_size(mut tiff: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    assert_eq!(&tiff[..4], b"II*\0");
    let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
    let count = u16::from_le_bytes([tiff[ifd], tiff[ifd + 1]]) as usize;
    for e in (0..count).map(|i| ifd + 2 + i * 12) {
        let value = match u16::from_le_bytes([tiff[e], tiff[e + 1]]) {
            256 => w,
            257 => h,
            _ => continue,
        };
        tiff[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes()); // LONG
        tiff[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
    }
    tiff
}

#[test]
fn hostile_tiffs_fail_with_stable_codes() {
    for name in ["planar16.tif", "lab.tif", "ycbcr-jpeg.tif", "cmyk-icc.tif"] {
        let tiff = fixture(&format!("formats/{name}"));
        assert_eq!(code_of(&tiff[..tiff.len() / 2]), "corrupt_input", "{name} truncated");
        assert_eq!(code_of(&tiff[..16]), "corrupt_input", "{name}: a header only");
        assert_eq!(
            code_of(&with_size(tiff.clone(), 60_000, 60_000)),
            "too_large",
            "{name} bomb"
        );
        assert_eq!(code_of(&with_size(tiff, 0, 160)), "corrupt_input", "{name} zero width");
    }
}
