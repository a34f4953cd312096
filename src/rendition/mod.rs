//! The rendition engine: bytes of an original in, encoded renditions out.
//! Synchronous and CPU-bound, with no I/O: async callers run it on a rayon
//! pool. decode → orient → colour → resize → watermark → encode.
//!
//! - [`spec`]: what to make (sizes, format, watermark): plain values.
//! - [`probe`]: the header check that refuses bombs before allocating.
//! - [`input`]: an original in memory or in a local file.
//! - [`decode`]: pixels in sRGB, upright, shrunk on load where JPEG allows,
//!   box-shrunk row by row for PNG and TIFF ([`shrink`]).
//! - [`estimate`]: the memory a render will need, from the header alone.
//! - [`resize`], [`watermark`], [`encode`]: one output each.
//! - `formats`: the format table `probe` and `decode` loop over; each
//!   entry (`format::Format`: sniff, header, decoders in order, memory
//!   model) lives in its format's file: `jpeg`, `png_file`, `tiff_file`
//!   (with `libtiff` for what the `tiff` crate cannot read), `image_crate`
//!   (WebP, GIF, BMP, ICO, PNM, DDS, TGA), `heif` (HEIC and AVIF in, AVIF
//!   out, through libheif), `psd` (the composite, shrunk as it is read),
//!   `jp2` (JPEG 2000 through OpenJPEG, shrunk as it is decoded), `svg`
//!   (resvg, drawn at the output's size in a bounded, forked child:
//!   `forked`), and, as sandboxed child processes (`child`), `pdf`
//!   (poppler), `magick` (SGI, PCX, XPM, XBM, Sun raster, FITS, PFM and
//!   what `image` cannot read of BMP, TGA, PNM, DDS and GIF, through
//!   ImageMagick) and `raw` (camera RAW files through dcraw).

mod attention;
mod caps;
mod child;
mod color;
pub mod decode;
pub mod encode;
pub mod error;
pub mod forensic;
mod forked;
mod format;
mod formats;
pub mod fuzz;
mod heif;
mod heif_meta;
mod image_crate;
pub mod input;
mod jp2;
mod jpeg;
mod jpeg_meta;
mod libtiff;
mod magick;
pub mod metadata;
mod pdf;
mod png_file;
pub mod print;
pub mod probe;
mod psd;
mod raw;
pub mod resize;
mod rows;
pub mod shrink;
pub mod source;
pub mod spec;
mod svg;
mod tiff_file;
pub mod watermark;

use rayon::prelude::*;

pub use child::harden_worker;
pub(crate) use child::{kill_group, sandbox_id};
pub use error::RenderError;
pub use input::Input;
pub use spec::{
    Colour, Fit, Frame, Logo, MetadataProfile, MetadataSpec, OutputFormat, Position, PrintProfile, Size, Spec,
    WatermarkSpec,
};

/// Caps checked from the header, before any pixel is allocated.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct EngineLimits {
    pub max_source_pixels: u64,
    pub max_source_bytes: u64,
    pub max_output_edge: u32,
    /// A document page's drawing, start to end (`deadline_exceeded`).
    pub document_deadline: std::time::Duration,
    /// Documents with more pages are refused (`too_large`).
    pub max_pages: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_source_pixels: 100_000_000,
            // Large originals come as files, read a strip at a time.
            max_source_bytes: 2 << 30,
            max_output_edge: 16_384,
            document_deadline: std::time::Duration::from_secs(30),
            max_pages: 50_000,
        }
    }
}

/// One encoded output.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub size: Size,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub watermarked: bool,
}

/// Makes every size of `spec` from one decode of `source`, in parallel.
pub fn render(source: &[u8], spec: &Spec, limits: &EngineLimits) -> Result<Vec<Rendered>, RenderError> {
    let header = probe::probe_input(Input::Bytes(source), limits, spec.page)?;
    render_probed(Input::Bytes(source), &header, spec, limits)
}

/// [`render`] for an original in a local file: PNG and TIFF are read a
/// strip at a time, never whole.
pub fn render_file(path: &std::path::Path, spec: &Spec, limits: &EngineLimits) -> Result<Vec<Rendered>, RenderError> {
    let input = Input::File(path);
    let header = probe::probe_input(input, limits, spec.page)?;
    render_probed(input, &header, spec, limits)
}

/// Renders an input whose header was probed already.
pub fn render_probed(
    input: Input<'_>,
    header: &probe::Header,
    spec: &Spec,
    limits: &EngineLimits,
) -> Result<Vec<Rendered>, RenderError> {
    let picture = decode::decode(input, header, largest(spec, header), limits)?;
    render_picture(&picture, spec, limits)
}

/// The long edge the whole picture is scaled to for the largest size in
/// `spec` (`None`: full size), what a decode may shrink to. A header's
/// size may be before orientation: a frame is fitted both ways round.
fn largest(spec: &Spec, header: &probe::Header) -> Option<u32> {
    let (w, h) = (header.width, header.height);
    spec.sizes
        .iter()
        .map(|s| s.scaled_edge(w, h).max(s.scaled_edge(h, w)))
        .max()
        .flatten()
}

/// The bytes a render of `spec` from an original with this `header` will
/// hold at its peak, from the header alone: the decoded (shrunk) picture,
/// every output being made at once with its resize and encode buffers, and
/// the original itself when `in_memory` bytes of it are held.
pub fn estimate(header: &probe::Header, spec: &Spec, in_memory: u64) -> u64 {
    const WORKING: u64 = 8 << 20;
    let format = formats::of(header.format);
    let largest = largest(spec, header);
    let (w, h) = (u64::from(header.width), u64::from(header.height));
    let pixel = u64::from(header.pixel_bytes.max(1));
    // Converted to 8-bit RGB(A) unless decoded so.
    let copy = if header.rgb8 { 0 } else { 4 };
    let (decoded, decoded_h) = match (format.drawn, header.band_rows) {
        (format::Drawn::DctScaled, _) => {
            let f = decode::shrink_on_load(header.long_edge(), largest);
            let (sw, sh) = (f.scale(w as usize) as u64, f.scale(h as usize) as u64);
            (sw * sh * (pixel + copy.min(3)), sh)
        }
        // The shrunk picture in 8-bit RGB(A) and one band of rows as decoded.
        (_, Some(rows)) => {
            let k = u64::from(shrink::factor(header.long_edge(), largest));
            let band = w * u64::from(rows.min(header.height)) * (pixel + copy);
            (w.div_ceil(k) * h.div_ceil(k) * 4 + band, h.div_ceil(k))
        }
        // Drawn at the largest output's size (its own at most): a PDF
        // page's PPM and its decoded copy; SVG's canvas as the child hands
        // it over, and the copy read from it.
        (format::Drawn::AtOutputSize, _) => {
            let (dw, dh) = format::drawn_size(header, largest);
            let (dw, dh) = (u64::from(dw), u64::from(dh));
            (dw * dh * 8, dh)
        }
        (format::Drawn::Decoded, None) => (w * h * (pixel + copy), h),
    };
    let channels = if header.pixel_bytes.is_multiple_of(4) && header.pixel_bytes != 0 {
        4
    } else {
        3
    };
    let outputs: u64 = spec
        .sizes
        .iter()
        .map(|&size| {
            let (ow, oh) = resize::fit(header.width, header.height, size);
            let (ow, oh) = (u64::from(ow), u64::from(oh));
            // The output and its encoding, and the resizer's intermediate
            // (output width × decoded height).
            ow * oh * channels * 2 + ow * decoded_h * channels
        })
        .sum();
    // A child process drawing the original is in the worker's cgroup, so
    // what it holds at its peak counts in the same budget.
    let child = (format.child_peak)(header, largest, in_memory);
    in_memory + decoded + outputs + child + WORKING
}

/// Makes every size of `spec` from pixels already decoded (a video's poster
/// frame goes through here, so it obeys every image rule).
pub fn render_picture(
    picture: &decode::Picture,
    spec: &Spec,
    limits: &EngineLimits,
) -> Result<Vec<Rendered>, RenderError> {
    let format = spec.format.resolve(picture.has_alpha());
    let stamp = spec.watermark.as_ref();
    let embedded = metadata::embed(&picture.metadata, &spec.metadata);
    spec.sizes
        .par_iter()
        .map(|&size| {
            let (w, h) = match size {
                Size::Frame(_) => resize::fit(picture.full_size.0, picture.full_size.1, size),
                _ => resize::fit_within(picture, size),
            };
            if w.max(h) > limits.max_output_edge {
                return Err(RenderError::TooLarge {
                    what: "output edge",
                    value: u64::from(w.max(h)),
                    max: u64::from(limits.max_output_edge),
                });
            }
            let mut out = resize::sized(picture, size)?;
            let (w, h) = (out.width(), out.height());
            if let Some(stamp) = stamp {
                watermark::apply(out.to_mut(), stamp);
            }
            // Last before encoding: nothing after it blurs the mark.
            if let Some(mark) = &spec.forensic {
                forensic::embed(out.to_mut(), mark);
            }
            let bytes = encode::encode(&out, format, spec, &embedded)?;
            Ok(Rendered {
                size,
                bytes,
                width: w,
                height: h,
                format,
                watermarked: stamp.is_some(),
            })
        })
        .collect()
}
