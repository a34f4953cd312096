//! SVG through resvg (pure Rust, Apache-2.0/MIT, by the Linebender
//! project): drawn straight at the size the largest output needs, never
//! above its own size, so a vector source costs only its output's pixels.
//!
//! Sandboxed by construction: the parser (roxmltree) knows no external
//! entities (no XXE) and caps a document's nodes; entity expansion is
//! bounded here (see `check_entities`); every
//! `<image href>` resolves to nothing — no file, no URL, no data: URL —
//! so a job's SVG can read nothing beyond itself; text is drawn with the
//! system's fonts, loaded once.

use std::sync::{Arc, OnceLock};

use image::RgbaImage;
use image::metadata::Orientation;
use resvg::{tiny_skia, usvg};

use super::RenderError;
use super::decode::{Credits, Decoded};

/// An SVG document, by its first bytes: `<svg`, or an XML declaration,
/// comment or doctype with `<svg` in the first 4 KiB.
pub(super) fn sniff(start: &[u8]) -> bool {
    let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    let text = &text[text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len())..];
    let prologue = [&b"<?xml"[..], b"<!--", b"<!DOCTYPE svg", b"<!doctype svg"];
    text.starts_with(b"<svg") || prologue.iter().any(|p| text.starts_with(p)) && contains(text, b"<svg")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn options() -> usvg::Options<'static> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let fontdb = FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        Arc::new(db)
    });
    usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        fontdb: fontdb.clone(),
        ..usvg::Options::default()
    }
}

/// What a document's entities may expand to, in all.
const MAX_ENTITY_EXPANSION: usize = 16 << 20;

/// The parser allows DTDs (Illustrator declares its namespaces as
/// entities) but bounds nesting only loosely: entities that refer to other
/// entities or to parameter entities are refused, and the rest may expand
/// to 16 MiB in all.
fn check_entities(text: &str) -> Result<(), RenderError> {
    let mut expansion = 0usize;
    for decl in text.split("<!ENTITY").skip(1) {
        let decl = decl.trim_start();
        let name: String = decl.chars().take_while(|c| !c.is_whitespace()).collect();
        let body = decl[name.len()..].trim_start();
        let value = match body.chars().next() {
            Some(q @ ('"' | '\'')) => body[1..].split(q).next().unwrap_or(""),
            _ => "",
        };
        if name == "%" || value.contains('&') || value.contains('%') {
            return Err(RenderError::DecoderLimit("SVG: nested or parameter entities".into()));
        }
        let uses = text.matches(&format!("&{name};")).count();
        expansion = expansion.saturating_add(uses.saturating_mul(value.len()));
    }
    if expansion > MAX_ENTITY_EXPANSION {
        return Err(RenderError::DecoderLimit(format!(
            "SVG: entities expand to {expansion} bytes"
        )));
    }
    Ok(())
}

fn parse(svg: &[u8]) -> Result<usvg::Tree, RenderError> {
    let text = std::str::from_utf8(svg).map_err(|_| RenderError::CorruptInput("SVG: not UTF-8".into()))?;
    check_entities(text)?;
    usvg::Tree::from_str(text, &options()).map_err(|e| match e {
        usvg::Error::ElementsLimitReached | usvg::Error::ParsingFailed(usvg::roxmltree::Error::NodesLimitReached) => {
            RenderError::DecoderLimit(format!("SVG: {e}"))
        }
        _ => RenderError::CorruptInput(format!("SVG: {e}")),
    })
}

/// Its own size in pixels (CSS pixels at 96 dpi), rounded up.
pub(super) fn header(svg: &[u8]) -> Result<(u32, u32), RenderError> {
    let size = parse(svg)?.size();
    let px = |v: f32| v.ceil().min(u32::MAX as f32) as u32;
    Ok((px(size.width()), px(size.height())))
}

/// Drawn with its long edge at `largest` (its own size at most).
pub(super) fn decode(svg: &[u8], long_edge: u32, largest: Option<u32>) -> Result<Decoded, RenderError> {
    let tree = parse(svg)?;
    let size = tree.size();
    let scale = largest.map_or(1.0, |edge| (edge as f32 / long_edge.max(1) as f32).min(1.0));
    let (w, h) = (
        (size.width() * scale).ceil().max(1.0) as u32,
        (size.height() * scale).ceil().max(1.0) as u32,
    );
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| RenderError::DecoderLimit(format!("SVG canvas {w}×{h}")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // tiny-skia keeps premultiplied alpha.
    let rgba: Vec<u8> = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    let image = RgbaImage::from_raw(w, h, rgba).ok_or_else(|| RenderError::CorruptInput("SVG canvas".into()))?;
    Ok(Decoded {
        image: image::DynamicImage::ImageRgba8(image),
        icc: None,
        credits: Credits::default(),
        orientation: Orientation::NoTransforms,
    })
}
