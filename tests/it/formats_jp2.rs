//! JPEG 2000 through OpenJPEG (issue 12), on files made by OpenJPEG's
//! `opj_compress` and libvips (fixtures/originals/formats, from
//! layered-composite.png and alpha.png): lossless pixels, lossy and sYCC
//! 4:2:0 colour, grey, alpha, reduced-resolution decoding, and hostile
//! headers with stable codes.

use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;
use crate::formats_heif::{code_of, composite, distance, fixture, full};

#[test]
fn jp2_files_and_codestreams_are_read_by_content_at_their_colour() {
    let source = composite();
    let lossless = fixture("formats/lossless.j2k");
    let header = probe(&lossless, &EngineLimits::default()).unwrap();
    assert_eq!(
        (header.format, header.width, header.height),
        (SourceFormat::Jp2, 240, 160)
    );
    assert_eq!(
        full(&lossless).as_raw(),
        source.as_raw(),
        "a lossless codestream gives its very pixels"
    );
    // Lossy at 20:1, and sYCC with subsampled chroma (taken as RGB, its
    // colours would be far off).
    for (name, within) in [("photo.jp2", 4.0), ("ycc420.jp2", 3.0)] {
        let out = full(&fixture(&format!("formats/{name}")));
        let d = distance(&out, &source);
        assert!(d < within, "{name} differs by {d:.2}");
    }
    let grey = full(&fixture("formats/grey.jp2"));
    assert_eq!(grey.dimensions(), (240, 160));
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]), "grey stays grey");
}

#[test]
fn jp2_alpha_is_kept() {
    let alpha = full(&fixture("formats/alpha.jp2"));
    let (top, bottom) = (alpha.get_pixel(80, 0)[3], alpha.get_pixel(80, alpha.height() - 1)[3]);
    assert!(top > 240 && bottom < 15, "alpha {top} → {bottom}");
}

#[test]
fn jp2_is_decoded_at_the_resolution_the_sizes_need() {
    for (name, edge, size) in [
        ("lossless.j2k", 60, (60, 40)),
        ("photo.jp2", 100, (100, 67)),
        ("ycc420.jp2", 50, (50, 33)),
        // Far below the fewest resolutions the codestream has.
        ("lossless.j2k", 3, (3, 2)),
    ] {
        let out = render(
            &fixture(&format!("formats/{name}")),
            &spec(&[Size::LongEdge(edge)], OutputFormat::Png, None),
            &EngineLimits::default(),
        )
        .unwrap();
        assert_eq!((out[0].width, out[0].height), size, "{name}");
        // Still the same picture: near the source shrunk the same way.
        let got = image::load_from_memory(&out[0].bytes).unwrap().to_rgba8();
        let want = image::imageops::resize(&composite(), size.0, size.1, image::imageops::FilterType::Triangle);
        let d = distance(&got, &want);
        assert!(d < 8.0 || edge < 10, "{name} at {edge} differs by {d:.2}");
    }
}

/// `jp2` with the codestream's SIZ (and a JP2 file's ihdr) saying `w` × `h`.
fn with_size(mut jp2: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    let at = |data: &[u8], what: &[u8]| data.windows(what.len()).position(|x| x == what);
    if let Some(i) = at(&jp2, b"ihdr") {
        jp2[i + 4..i + 8].copy_from_slice(&h.to_be_bytes());
        jp2[i + 8..i + 12].copy_from_slice(&w.to_be_bytes());
    }
    let siz = at(&jp2, &[0xFF, 0x4F, 0xFF, 0x51]).expect("a SIZ marker") + 2;
    // Marker, Lsiz, Rsiz, Xsiz, Ysiz, two offsets (0 here), then the tile
    // size: one tile, or OpenJPEG refuses the tile count first.
    for (at, v) in [(6, w), (10, h), (22, w), (26, h)] {
        jp2[siz + at..siz + at + 4].copy_from_slice(&v.to_be_bytes());
    }
    jp2
}

#[test]
fn hostile_jpeg_2000_files_fail_with_stable_codes() {
    for name in ["photo.jp2", "lossless.j2k", "alpha.jp2"] {
        let jp2 = fixture(&format!("formats/{name}"));
        assert_eq!(code_of(&jp2[..jp2.len() / 2]), "corrupt_input", "{name} truncated");
        assert_eq!(
            code_of(&jp2[..jp2.len().min(60)]),
            "corrupt_input",
            "{name}: its first bytes"
        );
        assert_eq!(
            code_of(&with_size(jp2.clone(), 60_000, 60_000)),
            "too_large",
            "{name} bomb"
        );
        assert_eq!(
            code_of(&with_size(jp2.clone(), 0, 160)),
            "corrupt_input",
            "{name} zero width"
        );
        // Refused from the SIZ marker, before OpenJPEG allocates per tile
        // or per component: 1 × 1 tiles, and 300 components.
        let siz = jp2.windows(4).position(|w| w == [0xFF, 0x4F, 0xFF, 0x51]).unwrap() + 2;
        let mut tiles = jp2.clone();
        tiles[siz + 22..siz + 30].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(code_of(&tiles), "too_large", "{name}: 38 400 tiles");
        let mut comps = jp2;
        comps[siz + 38..siz + 40].copy_from_slice(&300u16.to_be_bytes());
        assert_eq!(code_of(&comps), "too_large", "{name}: 300 components");
    }
}
