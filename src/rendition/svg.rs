//! SVG through resvg (pure Rust, Apache-2.0/MIT, by the Linebender
//! project): drawn straight at the size the largest output needs, never
//! above its own size, so a vector source costs only its output's pixels.
//!
//! Sandboxed by construction: the parser (roxmltree) knows no external
//! entities (no XXE) and caps a document's nodes; entity declarations and
//! expansion are bounded here, in one pass (see `check_entities`); every
//! `<image href>` resolves to nothing — no file, no URL, no data: URL —
//! so a job's SVG can read nothing beyond itself; text is drawn with the
//! system's fonts, loaded once. Parsing (which expands `<use>` references)
//! and drawing (filters, layers) have no bound of their own, so both run
//! in a forked child ([`forked`]) bounded in memory ([`child_memory`]) and
//! killed at the engine's document deadline.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use image::RgbaImage;
use image::metadata::Orientation;
use resvg::{tiny_skia, usvg};

use super::forked::{self, Bounds};
use super::format::{Decoding, Drawn, Format, Layout, Probing, Sniffing, drawn_size};
use super::input::Input;
use super::source::{Decoded, Metadata};
use super::source::{Header, SourceFormat};
use super::{EngineLimits, RenderError, caps};

/// The largest SVG read: it is held whole, and its tree is several times
/// its size (real ones, maps and CAD exports included, stay under 50 MB).
const MAX_SVG_BYTES: u64 = 64 << 20;

/// What a parse may allocate (address space, as the child's bound is):
/// a base for the parser, the fonts' faces and a fresh 64 MiB heap that
/// glibc's malloc may reserve for the child's thread, and so much per byte
/// of source (a tree is about ten times its text), to a ceiling.
const TREE_BASE: u64 = 64 << 20;
const TREE_PER_BYTE: u64 = 16;
const TREE_MAX: u64 = 256 << 20;

/// Canvases a drawing may hold at once beyond its own: group opacity,
/// masks and filters each draw into a canvas-sized layer, nested ones all
/// at once (40 nested at 4000 px are 2.5 GB).
const LAYERS: u64 = 4;

/// The memory a child parsing `source_len` bytes of SVG and drawing a
/// `w` × `h` canvas (0 × 0: parsing only) may take; the render's estimate
/// counts it.
pub(super) fn child_memory(source_len: u64, (w, h): (u32, u32)) -> u64 {
    let tree = (TREE_BASE + TREE_PER_BYTE * source_len).min(TREE_MAX);
    tree + u64::from(w) * u64::from(h) * 4 * (1 + LAYERS)
}

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

/// Entities a document may declare: Illustrator declares a dozen
/// namespaces; thousands are only ever a bomb (each costs the parser a
/// lookup per reference).
const MAX_ENTITY_DECLARATIONS: usize = 1000;

/// The longest entity name: references are looked for this far after an
/// `&`, so a longer one would go uncounted.
const MAX_ENTITY_NAME: usize = 256;

/// The parser allows DTDs (Illustrator declares its namespaces as
/// entities) but bounds nesting only loosely: entities that refer to other
/// entities or to parameter entities are refused, so are more than
/// [`MAX_ENTITY_DECLARATIONS`], and the rest may expand to 16 MiB in all;
/// one pass over the declarations, one over the references.
fn check_entities(text: &str) -> Result<(), RenderError> {
    let mut values: HashMap<&str, usize> = HashMap::new();
    for (n, decl) in text.split("<!ENTITY").skip(1).enumerate() {
        if n >= MAX_ENTITY_DECLARATIONS {
            return Err(RenderError::DecoderLimit(format!(
                "SVG: more than {MAX_ENTITY_DECLARATIONS} entity declarations"
            )));
        }
        let decl = decl.trim_start();
        let name = &decl[..decl.find(char::is_whitespace).unwrap_or(decl.len())];
        let body = decl[name.len()..].trim_start();
        let value = match body.chars().next() {
            Some(q @ ('"' | '\'')) => body[1..].split(q).next().unwrap_or(""),
            _ => "",
        };
        if name == "%" || name.len() > MAX_ENTITY_NAME || value.contains('&') || value.contains('%') {
            return Err(RenderError::DecoderLimit(
                "SVG: nested, parameter or long-named entities".into(),
            ));
        }
        values.insert(name, value.len());
    }
    if values.is_empty() {
        return Ok(());
    }
    let mut expansion = 0usize;
    for (at, _) in text.match_indices('&') {
        let rest = &text.as_bytes()[at + 1..];
        let Some(end) = rest.iter().take(MAX_ENTITY_NAME + 1).position(|&b| b == b';') else {
            continue;
        };
        let name = std::str::from_utf8(&rest[..end]).unwrap_or("");
        expansion = expansion.saturating_add(values.get(name).copied().unwrap_or(0));
    }
    if expansion > MAX_ENTITY_EXPANSION {
        return Err(RenderError::DecoderLimit(format!(
            "SVG: entities expand to {expansion} bytes"
        )));
    }
    Ok(())
}

/// The document as text, its entities checked (in this process: one
/// linear pass, before any fork).
fn text(svg: &[u8]) -> Result<&str, RenderError> {
    let text = std::str::from_utf8(svg).map_err(|_| RenderError::CorruptInput("SVG: not UTF-8".into()))?;
    check_entities(text)?;
    Ok(text)
}

/// The tree (in the child).
fn parse(text: &str) -> Result<usvg::Tree, RenderError> {
    usvg::Tree::from_str(text, &options()).map_err(|e| match e {
        usvg::Error::ElementsLimitReached | usvg::Error::ParsingFailed(usvg::roxmltree::Error::NodesLimitReached) => {
            RenderError::DecoderLimit(format!("SVG: {e}"))
        }
        _ => RenderError::CorruptInput(format!("SVG: {e}")),
    })
}

/// The document, read whole (it is parsed from memory) up to its cap.
pub(super) fn source<'a>(input: Input<'a>) -> Result<std::borrow::Cow<'a, [u8]>, RenderError> {
    caps::at_most("an SVG document", input.len()?, MAX_SVG_BYTES)?;
    input.bytes()
}

/// Its own size in pixels (CSS pixels at 96 dpi), rounded up: parsed in a
/// bounded child, as a drawing is.
pub(super) fn header(svg: &[u8], limits: &EngineLimits) -> Result<(u32, u32), RenderError> {
    let text = text(svg)?;
    let bounds = Bounds {
        deadline: limits.document_deadline,
        memory: child_memory(svg.len() as u64, (0, 0)),
    };
    options(); // the fonts, loaded here once rather than in every child
    let mut answer = forked::run("SVG parsing", &bounds, |out| {
        let size = parse(text)?.size();
        let px = |v: f32| v.ceil().min(u32::MAX as f32) as u32;
        write_u32s(out, &[px(size.width()), px(size.height())])
    })?;
    let [w, h] = read_u32s(&mut answer)?;
    Ok((w, h))
}

fn write_u32s(out: &mut std::fs::File, values: &[u32]) -> Result<(), RenderError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    out.write_all(&bytes).map_err(RenderError::corrupt)
}

fn read_u32s<const N: usize>(answer: &mut std::fs::File) -> Result<[u32; N], RenderError> {
    let mut out = [0u32; N];
    for v in &mut out {
        let mut b = [0u8; 4];
        answer.read_exact(&mut b).map_err(RenderError::corrupt)?;
        *v = u32::from_le_bytes(b);
    }
    Ok(out)
}

/// Drawn with its long edge at `largest` (its own size at most), in a
/// bounded child; `size` is the header's.
pub(super) fn decode(
    svg: &[u8],
    size: (u32, u32),
    largest: Option<u32>,
    limits: &EngineLimits,
) -> Result<Decoded, RenderError> {
    let text = text(svg)?;
    let long_edge = size.0.max(size.1);
    let scale = largest.map_or(1.0, |edge| (edge as f32 / long_edge.max(1) as f32).min(1.0));
    let canvas = super::resize::fit(size.0, size.1, largest.map_or(super::Size::Full, super::Size::LongEdge));
    let bounds = Bounds {
        deadline: limits.document_deadline,
        memory: child_memory(svg.len() as u64, canvas),
    };
    options();
    let mut answer = forked::run("SVG drawing", &bounds, |out| draw(text, scale, out))?;
    let [w, h] = read_u32s(&mut answer)?;
    let mut rgba = Vec::with_capacity(w as usize * h as usize * 4);
    answer.read_to_end(&mut rgba).map_err(RenderError::corrupt)?;
    let image = RgbaImage::from_raw(w, h, rgba).ok_or_else(|| RenderError::CorruptInput("SVG canvas".into()))?;
    Ok(Decoded {
        image: image::DynamicImage::ImageRgba8(image),
        icc: None,
        metadata: Metadata::default(),
        orientation: Orientation::NoTransforms,
    })
}

/// In the child: the canvas's size, then its pixels, demultiplied RGBA.
fn draw(text: &str, scale: f32, out: &mut std::fs::File) -> Result<(), RenderError> {
    let tree = parse(text)?;
    let size = tree.size();
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
    drop(tree);
    // tiny-skia keeps premultiplied alpha: undone in place, as tiny-skia
    // itself does it.
    for px in pixmap.data_mut().chunks_exact_mut(4) {
        let a = px[3];
        if a != 255 {
            let alpha = f64::from(a) / 255.0;
            for c in &mut px[..3] {
                *c = (f64::from(*c) / alpha + 0.5) as u8;
            }
        }
    }
    write_u32s(out, &[w, h])?;
    out.write_all(pixmap.data()).map_err(RenderError::corrupt)
}

/// How much of a text file is looked at for an SVG's root element.
const SNIFF_BYTES: usize = 4096;

/// Text, told by its root element; drawn at the output's size in a forked child.
pub(super) const FORMAT: Format = Format::new(SourceFormat::Svg, sniff_entry, header_entry, decode_entry)
    .in_memory()
    .drawn(Drawn::AtOutputSize)
    .child_peak(child_peak);

fn sniff_entry(_: &Format, s: &Sniffing<'_>) -> Result<bool, RenderError> {
    Ok(sniff(&s.prefix(SNIFF_BYTES)?))
}

fn header_entry(_: &Format, p: &Probing<'_>) -> Result<Option<Layout>, RenderError> {
    let (w, h) = header(&source(p.input)?, p.limits)?;
    // Drawn as 8-bit RGBA.
    Ok(Some(Layout::new(w, h, 4, true)))
}

fn decode_entry(_: &Format, d: &Decoding<'_>) -> Result<Decoded, RenderError> {
    decode(&source(d.input)?, d.size(), d.largest, d.limits)
}

/// The forked child that parses and draws it.
fn child_peak(header: &Header, largest: Option<u32>, in_memory: u64) -> u64 {
    child_memory(in_memory, drawn_size(header, largest))
}
