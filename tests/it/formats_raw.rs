//! Camera RAW through dcraw as a sandboxed child (issue 12): a real CFA
//! DNG (`scripts/raw-fixtures`) told by content, demosaiced in its colours,
//! upright after its orientation, drawn at half size for small outputs;
//! truncated files, metadata-only stubs, garbage and CR3 fail with stable
//! codes.

use image::RgbImage;
use rendition::error::Coded;
use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, estimate, render};

use crate::engine::spec;
use crate::formats_heif::fixture;

/// The failure's code, or "rendered".
fn code(source: &[u8]) -> String {
    rendered(source, Size::Full).map_or_else(|code| code, |_| "rendered".into())
}

fn rendered(source: &[u8], size: Size) -> Result<RgbImage, String> {
    let out = render(
        source,
        &spec(&[size], OutputFormat::Png, None),
        &EngineLimits::default(),
    )
    .map_err(|e| e.code().to_string())?;
    Ok(image::load_from_memory(&out[0].bytes).unwrap().to_rgb8())
}

fn is_red(p: &image::Rgb<u8>) -> bool {
    p[0] > 200 && p[2] < 100
}

fn is_blue(p: &image::Rgb<u8>) -> bool {
    p[2] > 200 && p[0] < 100
}

#[test]
fn a_dng_is_demosaiced_in_its_colours_at_full_and_half_size() {
    let dng = fixture("formats/raw.dng");
    let header = probe(&dng, &EngineLimits::default()).unwrap();
    assert_eq!(
        (header.format, header.width, header.height),
        (SourceFormat::Raw, 256, 192)
    );
    for (size, dims) in [(Size::Full, (256, 192)), (Size::LongEdge(100), (100, 75))] {
        let out = rendered(&dng, size).unwrap();
        assert_eq!(out.dimensions(), dims);
        let (w, h) = dims;
        let (left, right) = (out.get_pixel(w / 4, h / 2), out.get_pixel(w * 3 / 4, h / 2));
        assert!(is_red(left), "{size:?}: left {left:?}");
        assert!(is_blue(right), "{size:?}: right {right:?}");
    }
}

#[test]
fn a_dng_comes_out_upright_after_its_orientation() {
    let dng = fixture("formats/raw-orient-6.dng");
    let header = probe(&dng, &EngineLimits::default()).unwrap();
    assert_eq!((header.width, header.height), (192, 256));
    let out = rendered(&dng, Size::LongEdge(128)).unwrap();
    assert_eq!(out.dimensions(), (96, 128));
    // Turned a quarter clockwise: the scene's red left is on top.
    assert!(is_red(out.get_pixel(48, 20)), "{:?}", out.get_pixel(48, 20));
    assert!(is_blue(out.get_pixel(48, 108)), "{:?}", out.get_pixel(48, 108));
}

#[test]
fn broken_raw_files_fail_with_stable_codes() {
    let dng = fixture("formats/raw.dng");
    // Its tags but almost none of its photosites: a stub dcraw would draw black.
    assert_eq!(code(&dng[..1200]), "corrupt_input");
    // Half its photosites.
    assert_eq!(code(&dng[..dng.len() / 2]), "corrupt_input");
    // A CR2's marker over garbage.
    let mut cr2 = b"II*\0\x10\0\0\0CR\x02\0".to_vec();
    cr2.extend(std::iter::repeat_n(0x33, 4000));
    assert_eq!(code(&cr2), "corrupt_input");
    // Canon's CR3 is told and refused.
    let cr3 = b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom".to_vec();
    assert_eq!(code(&cr3), "unsupported_format");
}

#[test]
fn dcraw_s_own_memory_is_reserved_with_the_job_s() {
    let dng = fixture("formats/raw.dng");
    let header = probe(&dng, &EngineLimits::default()).unwrap();
    let pixels = 256 * 192;
    let full = estimate(&header, &spec(&[Size::Full], OutputFormat::Jpeg, None), 0);
    let at = |edge| estimate(&header, &spec(&[Size::LongEdge(edge)], OutputFormat::Jpeg, None), 0);
    // The child's base and its 16-bit channels, besides the worker's own.
    assert!(full > (32 << 20) + 10 * pixels, "{full}");
    // At half size (64 px fits in 128, 200 does not) dcraw holds a quarter
    // of its channels: 6 bytes a pixel fewer, beyond the smaller outputs'
    // own difference (under 4 bytes a pixel here).
    assert!(at(200) - at(64) > 6 * pixels, "{} vs {}", at(200), at(64));
    // An original held in memory is copied once more for dcraw to seek in.
    let held = estimate(
        &header,
        &spec(&[Size::Full], OutputFormat::Jpeg, None),
        dng.len() as u64,
    );
    assert_eq!(held - full, 2 * dng.len() as u64);
}
