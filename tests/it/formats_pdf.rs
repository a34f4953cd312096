//! PDF pages through poppler (issue 12): told by content, drawn at the
//! output's size, upright after `/Rotate`, any page by `page`, watermarked
//! like an image; hostile documents (damaged, zero or giant pages, too many
//! pages, too slow) fail with stable codes. Also `page` for multipage TIFF.

use std::time::Duration;

use image::RgbImage;
use rendition::error::Coded;
use rendition::rendition::probe::{SourceFormat, probe_input};
use rendition::rendition::spec::Position;
use rendition::rendition::{EngineLimits, Input, OutputFormat, Size, Spec, render};

use crate::engine::spec;
use crate::formats_heif::fixture;

fn paged(size: Size, page: u32, watermark: Option<Position>) -> Spec {
    Spec {
        page,
        ..spec(&[size], OutputFormat::Png, watermark)
    }
}

fn page(pdf: &[u8], size: Size, n: u32, watermark: Option<Position>) -> RgbImage {
    let out = render(pdf, &paged(size, n, watermark), &EngineLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", e.code()));
    image::load_from_memory(&out[0].bytes).unwrap().to_rgb8()
}

fn code(source: &[u8], page: u32, limits: &EngineLimits) -> String {
    render(source, &paged(Size::LongEdge(200), page, None), limits)
        .map(|_| "rendered".to_string())
        .unwrap_or_else(|e| e.code().to_string())
}

/// `out` is `size`, and each point is near its colour.
fn assert_drawn(out: &RgbImage, size: (u32, u32), points: &[(u32, u32, [u8; 3])]) {
    assert_eq!(out.dimensions(), size);
    for &(x, y, rgb) in points {
        let p = out.get_pixel(x, y);
        assert!(
            p.0.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) < 20),
            "at ({x}, {y}): {p:?}, not near {rgb:?}"
        );
    }
}

#[test]
fn a_pdf_is_told_by_content_and_its_page_sized_at_300_dpi() {
    let pdf = fixture("formats/pages.pdf");
    let header = probe_input(Input::Bytes(&pdf), &EngineLimits::default(), 1).unwrap();
    // US letter at 300 dpi.
    assert_eq!(
        (header.format, header.width, header.height),
        (SourceFormat::Pdf, 2550, 3300)
    );
    let landscape = probe_input(Input::Bytes(&pdf), &EngineLimits::default(), 2).unwrap();
    assert_eq!((landscape.width, landscape.height), (3508, 2479));
}

#[test]
fn the_first_page_is_drawn_at_the_output_size_upright_in_its_colours() {
    let pdf = fixture("formats/pages.pdf");
    let out = page(&pdf, Size::LongEdge(400), 1, None);
    // Red on top, blue below.
    assert_drawn(&out, (309, 400), &[(20, 20, [255, 0, 0]), (20, 380, [0, 0, 255])]);
    // The text is drawn (dark pixels on the band where the word sits).
    let dark = (0..309)
        .filter(|&x| out.get_pixel(x, 190).0.iter().all(|&c| c < 90))
        .count();
    assert!(dark > 5, "{dark} dark pixels where the word is");
    // Never above its own size; a set's sizes come from one drawing.
    let out = render(
        &pdf,
        &Spec {
            sizes: vec![Size::LongEdge(100_000), Size::LongEdge(64)],
            ..paged(Size::Full, 1, None)
        },
        &EngineLimits::default(),
    )
    .unwrap();
    assert_eq!((out[0].width, out[0].height), (2550, 3300));
    assert_eq!((out[1].width, out[1].height), (49, 64));
}

#[test]
fn any_page_may_be_asked_and_rotated_pages_come_out_upright() {
    let pdf = fixture("formats/pages.pdf");
    let second = page(&pdf, Size::LongEdge(300), 2, None);
    assert_drawn(&second, (300, 212), &[(150, 100, [0, 128, 0])]);
    // /Rotate 90: the page turned a quarter clockwise, its top (red) on the right.
    let turned = page(&pdf, Size::LongEdge(400), 3, None);
    assert_drawn(&turned, (400, 309), &[(380, 20, [255, 0, 0]), (20, 20, [0, 0, 255])]);
    assert_eq!(code(&pdf, 4, &EngineLimits::default()), "no_such_page");
}

#[test]
fn a_page_is_watermarked_like_an_image_and_pages_have_their_own_addresses() {
    let pdf = fixture("formats/pages.pdf");
    let plain = page(&pdf, Size::LongEdge(300), 1, None);
    let marked = page(&pdf, Size::LongEdge(300), 1, Some(Position::Tiled));
    assert_eq!(marked.dimensions(), plain.dimensions());
    let changed = plain.pixels().zip(marked.pixels()).filter(|(a, b)| a != b).count();
    assert!(changed > 2000, "only {changed} pixels carry the mark");
    let one = paged(Size::LongEdge(300), 1, None);
    let two = paged(Size::LongEdge(300), 2, None);
    let digest = |s: &Spec| s.digest("src", Size::LongEdge(300), OutputFormat::Png);
    assert_ne!(digest(&one), digest(&two));
}

/// A one-page PDF with this media box and content, its xref left for
/// poppler to rebuild.
fn one_page(media_box: &str, content: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
         2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
         3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [{media_box}] /Contents 4 0 R >> endobj\n\
         4 0 obj << /Length {} >> stream\n{content}\nendstream endobj\n\
         trailer << /Root 1 0 R >>\n%%EOF\n",
        content.len()
    )
    .into_bytes()
}

#[test]
fn hostile_pdfs_fail_with_stable_codes() {
    let limits = EngineLimits::default();
    let fill = "1 0 0 rg 0 0 100 100 re f";
    assert_eq!(code(&one_page("0 0 200 100", fill), 1, &limits), "rendered");
    assert_eq!(code(b"%PDF-1.7\nnothing but this line\n", 1, &limits), "corrupt_input");
    assert_eq!(code(b"%PDF-", 1, &limits), "corrupt_input");
    // An empty media box: poppler falls back to US letter, as viewers do.
    let empty = one_page("0 0 0 0", fill);
    let header = probe_input(Input::Bytes(&empty), &limits, 1).unwrap();
    assert_eq!((header.width, header.height), (2550, 3300));
    // Beyond the specification's 200 inches.
    assert_eq!(code(&one_page("0 0 100000 100000", fill), 1, &limits), "too_large");
    // At the limit: drawn at a resolution that fits the pixel limit.
    let giant = one_page("0 0 14400 14400", fill);
    let header = probe_input(Input::Bytes(&giant), &limits, 1).unwrap();
    assert!(u64::from(header.width) * u64::from(header.height) <= limits.max_source_pixels);
    assert_eq!(code(&giant, 1, &limits), "rendered");
    // A truncated document: rebuilt by poppler, or refused; never a crash.
    let pdf = fixture("formats/pages.pdf");
    for cut in [pdf.len() / 2, pdf.len() / 4, 40] {
        let got = code(&pdf[..cut], 1, &limits);
        assert!(["rendered", "corrupt_input"].contains(&got.as_str()), "{cut}: {got}");
    }
    // Password-protected (qpdf, user password "secret").
    assert_eq!(code(&fixture("formats/locked.pdf"), 1, &limits), "unsupported_format");
    let few_pages = EngineLimits { max_pages: 2, ..limits };
    assert_eq!(code(&pdf, 1, &few_pages), "too_large");
    // A page that takes longer than the deadline to draw is given up.
    let busy: String = (0..200_000)
        .map(|i| format!("{} {} 3 3 re f ", i % 600, i % 700))
        .collect();
    let instant = EngineLimits {
        document_deadline: Duration::from_millis(1),
        ..limits
    };
    assert_eq!(code(&one_page("0 0 600 700", &busy), 1, &instant), "deadline_exceeded");
}

#[test]
fn a_multipage_tiff_gives_any_page_and_other_formats_have_one() {
    let tiff = fixture("formats/two-pages.tif");
    let limits = EngineLimits::default();
    let header = probe_input(Input::Bytes(&tiff), &limits, 2).unwrap();
    assert_eq!((header.width, header.height, header.band_rows), (240, 160, None));
    let first = page(&tiff, Size::Full, 1, None);
    let second = page(&tiff, Size::Full, 2, None);
    assert_eq!(second.dimensions(), (240, 160));
    assert_ne!(first.as_raw(), second.as_raw(), "page 2 is its own picture");
    assert_eq!(code(&tiff, 3, &limits), "no_such_page");
    assert_eq!(code(&fixture("hero.jpg"), 2, &limits), "no_such_page");
}
