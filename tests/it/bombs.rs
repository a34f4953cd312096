//! Bombs are refused before they cost (security issue "No side doors",
//! item 5): metadata past its cap is `too_large` in every format, found by
//! the header probe before the memory budget is asked, with the probe's
//! own peak small; and every SVG is parsed and drawn in a child process
//! bounded in time and memory, so a drawing that would take minutes is
//! `deadline_exceeded` and the worker goes on.

use std::ffi::OsString;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use image::ImageFormat;
use rendition::error::Coded;
use rendition::rendition::{EngineLimits, OutputFormat, Size, render};

use crate::bombs_make::*;
use crate::engine::spec;
use crate::formats_heif::{code_of, fixture};

/// Past every cap on a single metadata block (ICC profiles: 4 MiB).
const OVER: usize = 5 << 20;
/// Under every cap.
const UNDER: usize = 1 << 20;

/// `f` on a thread of its own, answered within `bound`, or the test fails
/// (the thread is left behind: this is a liveness bound, not a timing).
fn within<T: Send + 'static>(bound: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound)
        .unwrap_or_else(|_| panic!("{what}: not answered within {bound:?}"))
}

/// The code a render with `limits` ends with ("rendered" when it does not fail).
fn code_with(source: Vec<u8>, limits: EngineLimits) -> String {
    render(&source, &spec(&[Size::LongEdge(320)], OutputFormat::Png, None), &limits)
        .map(|_| "rendered".to_string())
        .unwrap_or_else(|e| e.code().to_string())
}

#[test]
fn metadata_past_its_cap_is_too_large_in_every_format() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("png iCCP inflating to 1 GiB", png_iccp_bomb(1 << 30), "too_large"),
        ("png iCCP inflating to 5 MiB", png_iccp_bomb(OVER as u64), "too_large"),
        ("png iCCP of 1 MiB", png_iccp_bomb(UNDER as u64), "rendered"),
        (
            "png zTXt inflating to 1 GiB",
            png_with(b"zTXt", &[b"Comment\0\0".as_slice(), &zlib_zeros(1 << 30)].concat()),
            "too_large",
        ),
        (
            "png tEXt of 5 MiB",
            png_with(b"tEXt", &[b"Comment\0".as_slice(), &vec![b'x'; OVER]].concat()),
            "too_large",
        ),
        ("png eXIf of 5 MiB", png_with(b"eXIf", &vec![0; OVER]), "too_large"),
        ("jpeg ICC of 5 MiB", jpeg_with_icc(OVER), "too_large"),
        ("jpeg ICC of 1 MiB", jpeg_with_icc(UNDER), "rendered"),
        (
            "jpeg 20 MiB of APP1 before the frame",
            jpeg_with_app1s(320),
            "too_large",
        ),
        ("webp ICCP of 5 MiB", webp_with(b"ICCP", OVER), "too_large"),
        ("webp EXIF of 5 MiB", webp_with(b"EXIF", OVER), "too_large"),
        ("webp XMP of 5 MiB", webp_with(b"XMP ", OVER), "too_large"),
        ("webp ICCP of 1 MiB", webp_with(b"ICCP", UNDER), "rendered"),
        ("tiff ICC of 5 MiB", tiff_with_tag(34675, OVER), "too_large"),
        ("tiff XMP of 5 MiB", tiff_with_tag(700, OVER), "too_large"),
        ("tiff ICC of 1 MiB", tiff_with_tag(34675, UNDER), "rendered"),
        ("psd ICC of 5 MiB", psd_with_resource(1039, OVER), "too_large"),
        ("psd ICC of 1 MiB", psd_with_resource(1039, UNDER), "rendered"),
        (
            "ico holding an iCCP bomb",
            ico_with(&with_chunk(rgba_png(), b"iCCP", &iccp(1 << 30))),
            "too_large",
        ),
        ("gif ICC of 5 MiB", gif_with_app(b"ICCRGBG1012", OVER), "too_large"),
        ("gif XMP of 5 MiB", gif_with_app(b"XMP DataXMP", OVER), "too_large"),
        ("gif ICC of 1 MiB", gif_with_app(b"ICCRGBG1012", UNDER), "rendered"),
        (
            "jp2 ICC of 5 MiB",
            jp2_with_icc(&fixture("formats/photo.jp2"), OVER),
            "too_large",
        ),
        (
            "jp2 ICC of 1 MiB",
            jp2_with_icc(&fixture("formats/photo.jp2"), UNDER),
            "rendered",
        ),
    ];
    let mut wrong = Vec::new();
    for (name, bytes, expected) in cases {
        let code = code_of(&bytes);
        if code != expected {
            wrong.push(format!("{name}: {code}, not {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Four jobs of iCCP bombs at once under a 512 MiB budget, in a real
/// `rendition render` process: each is `too_large`, and the process never
/// holds more than a fraction of its budget (each probe inflated 512 MiB).
#[test]
fn four_iccp_bombs_at_once_cost_their_header_caps_not_their_profiles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("o")).unwrap();
    let bomb = png_iccp_bomb(1 << 30);
    let jobs: Vec<_> = (0..4).map(|i| bomb_job(dir.path(), i, &bomb)).collect();
    let policy = crate::common::fixture("policy.yaml");
    let mut args: Vec<OsString> = ["render", "--concurrency", "4", "--policy"]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend([
        policy.into_os_string(),
        "--originals".into(),
        dir.path().join("o").into(),
        "--store".into(),
        dir.path().join("store").into(),
        "--job".into(),
    ]);
    args.extend(jobs.into_iter().map(|j| j.into_os_string()));
    let budget: u64 = 512 << 20;
    let (peak, out) = crate::memory::peak_kib(&args, &[("RENDITION_MEMORY_BUDGET", budget.to_string())]);
    eprintln!("peak {peak} KiB for four iCCP bombs");
    assert_eq!(out.matches("\"code\":\"too_large\"").count(), 4, "{out}");
    assert!(
        peak < budget / 2 / 1024,
        "peak {peak} KiB for four bombs under a budget of {} KiB",
        budget / 1024
    );
}

fn bomb_job(dir: &Path, i: usize, bomb: &[u8]) -> std::path::PathBuf {
    let source = format!("bomb-{i}.png");
    std::fs::write(dir.join("o").join(&source), bomb).unwrap();
    let job = serde_json::json!({
        "schema": "rendition.job/v1", "job_id": format!("bomb-{i}"), "purpose": "download",
        "principal": {"user": "u-ben"},
        "asset": {"id": format!("a-bomb-{i}"), "collection": "g-launch", "media": "image", "source": source},
        "request": {"rendition": "original", "format": "jpeg", "on_exceed": "clamp"},
    });
    let path = dir.join(format!("job-{i}.json"));
    std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
    path
}

/// An SVG whose document type declares `count` entities, one used (a
/// comment names `<svg` early, as the sniffer looks for it in the first
/// 4 KiB).
fn entity_declarations(count: usize) -> Vec<u8> {
    let decls: String = (0..count).map(|i| format!(r##"<!ENTITY e{i} "#{i:06x}">"##)).collect();
    format!(
        r#"<?xml version="1.0"?><!-- an <svg> drawing --><!DOCTYPE svg [{decls}]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="&e1;"/></svg>"#
    )
    .into_bytes()
}

#[test]
fn an_svg_with_100_000_entity_declarations_is_refused_in_one_pass() {
    let bomb = entity_declarations(100_000);
    let code = within(Duration::from_secs(60), "100 000 declarations", move || code_of(&bomb));
    assert_eq!(code, "too_large");
    // A document with a few hundred is still drawn.
    assert_eq!(code_of(&entity_declarations(500)), "rendered");
}

/// `body` in a 1000 × 1000 SVG.
fn svg(body: &str) -> Vec<u8> {
    format!(r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="1000" height="1000">{body}</svg>"#).into_bytes()
}

fn short_deadline() -> EngineLimits {
    EngineLimits {
        document_deadline: Duration::from_secs(3),
        ..EngineLimits::default()
    }
}

#[test]
fn an_svg_filter_chain_bomb_meets_its_deadline_and_the_worker_goes_on() {
    // Each dilation visits (2r + 1)² pixels for every pixel: hours of work.
    let chain = r#"<feMorphology operator="dilate" radius="1000"/>"#.repeat(200);
    let bomb = svg(&format!(
        r#"<filter id="f" x="0" y="0" width="1" height="1">{chain}</filter><rect width="1000" height="1000" fill="red" filter="url(#f)"/>"#
    ));
    assert!(bomb.len() > 8 << 10, "a few KiB of filters");
    let code = within(Duration::from_secs(60), "filter chains", move || {
        code_with(bomb, short_deadline())
    });
    assert_eq!(code, "deadline_exceeded");
    // The process that asked goes on drawing.
    assert_eq!(code_of(&fixture("formats/shapes.svg")), "rendered");
}

#[test]
fn an_svg_use_bomb_is_bounded() {
    // Ten levels of ten references to the level below: 10¹⁰ rectangles.
    let mut defs = String::from(r#"<g id="u0"><rect width="1" height="1"/></g>"#);
    for level in 1..=10 {
        let uses = format!(r##"<use xlink:href="#u{}"/>"##, level - 1).repeat(10);
        defs += &format!(r#"<g id="u{level}">{uses}</g>"#);
    }
    let bomb = svg(&format!(r##"<defs>{defs}</defs><use xlink:href="#u10"/>"##));
    let code = within(Duration::from_secs(60), "nested uses", move || {
        code_with(bomb, short_deadline())
    });
    assert!(["deadline_exceeded", "too_large"].contains(&code.as_str()), "{code}");
}

#[test]
fn an_svg_layer_bomb_is_bounded_in_memory() {
    // Each group with opacity draws into a canvas-sized layer (64 MiB at
    // 4000 × 4000), nested ones at once: 600 MB and half a minute for 2 KB
    // drawn in the worker, past a drawing's bound in its child.
    let depth = 40;
    let open = r#"<g opacity="0.99">"#.repeat(depth);
    let close = "</g>".repeat(depth);
    let bomb = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000">{open}<rect width="4000" height="4000" fill="red"/>{close}</svg>"#
    );
    let code = within(Duration::from_secs(60), "nested layers", move || {
        render(
            bomb.as_bytes(),
            &spec(&[Size::Full], OutputFormat::Png, None),
            &EngineLimits::default(),
        )
        .map(|_| "rendered".to_string())
        .unwrap_or_else(|e| e.code().to_string())
    });
    assert_eq!(code, "too_large");
}

#[test]
fn small_files_of_each_walked_format_still_render() {
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
        ImageFormat::Tiff,
        ImageFormat::Gif,
    ] {
        assert_eq!(code_of(&small(format)), "rendered", "{format:?}");
    }
    assert_eq!(code_of(&ico_with(&rgba_png())), "rendered", "ICO");
    let jp2 = fixture("formats/photo.jp2");
    assert_eq!(code_of(&jp2_with_icc(&jp2, 1000)), "rendered", "JP2");
}
