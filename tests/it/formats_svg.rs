//! SVG through resvg (issue 12): its own size and colours, drawn at the
//! output's size, watermarked like any image, and sandboxed — no file, no
//! URL, no embedded image, no external entity — with stable codes for
//! hostile documents.

use std::net::TcpListener;

use image::RgbaImage;
use rendition::rendition::probe::{SourceFormat, probe};
use rendition::rendition::spec::Position;
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::engine::spec;
use crate::formats_heif::{code_of, fixture, full};

fn png(svg: &[u8], size: Size, watermark: Option<Position>) -> RgbaImage {
    let out = render(
        svg,
        &spec(&[size], OutputFormat::Png, watermark),
        &EngineLimits::default(),
    )
    .unwrap();
    image::load_from_memory(&out[0].bytes).unwrap().to_rgba8()
}

fn is_red(p: &image::Rgba<u8>) -> bool {
    p[0] > 240 && p[1] < 15 && p[2] < 15 && p[3] > 240
}

#[test]
fn an_svg_is_read_by_content_at_its_size_and_colours() {
    let svg = fixture("formats/shapes.svg");
    let header = probe(&svg, &EngineLimits::default()).unwrap();
    assert_eq!(
        (header.format, header.width, header.height),
        (SourceFormat::Svg, 300, 200)
    );
    let out = full(&svg);
    assert!(is_red(out.get_pixel(70, 100)), "{:?}", out.get_pixel(70, 100));
    let blue = out.get_pixel(220, 100);
    assert!(blue[2] > 240 && blue[0] < 15 && blue[3] > 240, "{blue:?}");
    assert_eq!(out.get_pixel(160, 20)[3], 0, "transparent where nothing is drawn");
}

#[test]
fn an_svg_is_drawn_at_the_output_size_and_watermarked_like_an_image() {
    let svg = fixture("formats/shapes.svg");
    let small = png(&svg, Size::LongEdge(150), None);
    assert_eq!(small.dimensions(), (150, 100));
    // Drawn at that size, not shrunk from a blur: the square's edge is crisp.
    assert!(is_red(small.get_pixel(35, 50)) && small.get_pixel(8, 50)[3] == 0);
    // Never above its own size.
    assert_eq!(png(&svg, Size::LongEdge(2000), None).dimensions(), (300, 200));
    let marked = png(&svg, Size::LongEdge(150), Some(Position::Tiled));
    assert_eq!(marked.dimensions(), (150, 100));
    assert_ne!(marked.as_raw(), small.as_raw(), "the watermark is drawn on the SVG too");
}

/// A 100 × 100 SVG whose only content is an image at `href`.
fn image_at(href: &str) -> Vec<u8> {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100"><image width="100" height="100" href="{href}" xlink:href="{href}"/></svg>"#
    )
    .into_bytes()
}

#[test]
fn an_svg_reads_no_file_url_or_embedded_image() {
    // A drawing (resvg draws nested SVGs), by absolute path, as a file:
    // URL, as a data: URL and over HTTP; and a PNG by path.
    let dir = format!("{}/fixtures/originals", env!("CARGO_MANIFEST_DIR"));
    let shapes = format!("{dir}/formats/shapes.svg");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let http = format!("http://{}/shapes.svg", listener.local_addr().unwrap());
    let data = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&shapes).unwrap());
        format!("data:image/svg+xml;base64,{b64}")
    };
    for href in [
        shapes.clone(),
        format!("file://{shapes}"),
        data,
        http,
        format!("{dir}/logo.png"),
    ] {
        let out = png(&image_at(&href), Size::Full, None);
        assert!(
            out.pixels().all(|p| p[3] == 0),
            "{}… was drawn",
            &href[..30.min(href.len())]
        );
    }
    assert!(listener.accept().is_err(), "nothing connected to the HTTP server");
}

#[test]
fn hostile_svgs_fail_with_stable_codes() {
    let svg = |body: &str| format!(r#"<svg xmlns="http://www.w3.org/2000/svg" {body}</svg>"#).into_bytes();
    assert_eq!(
        code_of(&svg(r#"width="60000" height="60000">"#)),
        "too_large",
        "bomb size"
    );
    assert_eq!(
        code_of(&svg(r#"width="0" height="10">"#)),
        "corrupt_input",
        "zero width"
    );
    assert_eq!(code_of(b"<svg <<< not xml"), "corrupt_input", "not XML");
    let shapes = fixture("formats/shapes.svg");
    assert_eq!(code_of(&shapes[..shapes.len() / 2]), "corrupt_input", "truncated");
    // An external entity is not fetched: the parser refuses the document.
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&x;</text></svg>"#;
    assert_eq!(code_of(xxe), "corrupt_input", "external entity");
    // Entities nested to a billion, or one entity used past 16 MiB:
    // refused before parsing, not expanded.
    let mut laughs = String::from(r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY l0 "ha">"#);
    for i in 1..10 {
        let prev = format!("&l{};", i - 1).repeat(10);
        laughs += &format!(r#"<!ENTITY l{i} "{prev}">"#);
    }
    laughs += r#"]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&l9;</text></svg>"#;
    assert_eq!(code_of(laughs.as_bytes()), "too_large", "billion laughs");
    let wide = format!(
        r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY w "{}">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>{}</text></svg>"#,
        "x".repeat(1000),
        "&w;".repeat(20_000)
    );
    assert_eq!(code_of(wide.as_bytes()), "too_large", "quadratic entities");
    // An ordinary doctype and a namespace entity, as Illustrator writes: drawn.
    let illustrator = br#"<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]><svg xmlns="&ns_svg;" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>"#;
    assert_eq!(code_of(illustrator), "rendered", "a doctype with a namespace entity");
}
