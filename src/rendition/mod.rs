//! The rendition engine: bytes of an original in, encoded renditions out.
//! Synchronous and CPU-bound, with no I/O: async callers run it on a rayon
//! pool. decode → orient → colour → resize → watermark → encode.
//!
//! - [`spec`]: what to make (sizes, format, watermark): plain values.
//! - [`probe`]: the header check that refuses bombs before allocating.
//! - [`decode`]: pixels in sRGB, upright, shrunk on load where JPEG allows.
//! - [`resize`], [`watermark`], [`encode`]: one output each.

mod color;
pub mod decode;
pub mod encode;
pub mod error;
mod jpeg_meta;
pub mod probe;
pub mod resize;
pub mod spec;
pub mod watermark;

use rayon::prelude::*;

pub use error::RenderError;
pub use spec::{Logo, OutputFormat, Position, Size, Spec, WatermarkSpec};

/// Caps checked from the header, before any pixel is allocated.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    pub max_source_pixels: u64,
    pub max_source_bytes: u64,
    pub max_output_edge: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_source_pixels: 100_000_000,
            max_source_bytes: 256 << 20,
            max_output_edge: 16_384,
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
    let header = probe::probe(source, limits)?;
    let largest = spec.sizes.iter().map(|s| s.long_edge()).max().flatten();
    let picture = decode::decode(source, &header, largest)?;
    render_picture(&picture, spec, limits)
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
    spec.sizes
        .par_iter()
        .map(|&size| {
            let (w, h) = resize::fit(picture.width(), picture.height(), size);
            if w.max(h) > limits.max_output_edge {
                return Err(RenderError::TooLarge {
                    what: "output edge",
                    value: u64::from(w.max(h)),
                    max: u64::from(limits.max_output_edge),
                });
            }
            let mut out = resize::resize(picture, w, h)?;
            if let Some(stamp) = stamp {
                watermark::apply(&mut out, stamp);
            }
            let bytes = encode::encode(&out, format, spec.quality, &picture.credits)?;
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
