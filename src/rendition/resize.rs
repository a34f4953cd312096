//! Resizing with fast_image_resize (Lanczos3, SIMD), fitting the long edge
//! inside the target and never upscaling.

use std::borrow::Cow;
use std::cell::RefCell;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use super::source::Picture;
use super::{RenderError, Size};

/// The output size for a `width`×`height` picture: long edge at most the
/// target, aspect kept, never larger than the picture.
pub fn fit(width: u32, height: u32, size: Size) -> (u32, u32) {
    let long = width.max(height);
    match size {
        Size::LongEdge(n) if n < long => {
            let scale = f64::from(n) / f64::from(long);
            let side = |v: u32| {
                if v == long {
                    n
                } else {
                    ((f64::from(v) * scale).round() as u32).max(1)
                }
            };
            (side(width), side(height))
        }
        _ => (width, height),
    }
}

/// The output size for `picture`: fitted to the original's full size (so a
/// picture shrunk on load gives the same sizes as a full decode), and
/// never larger than the pixels at hand.
pub fn fit_within(picture: &Picture, size: Size) -> (u32, u32) {
    let (w, h) = fit(picture.full_size.0, picture.full_size.1, size);
    (w.min(picture.width()), h.min(picture.height()))
}

thread_local! {
    // One resizer per rayon thread: its buffers are reused across calls.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// The picture at `width`×`height`; borrowed when it is that size already
/// (no copy unless a watermark must be drawn on it).
pub fn resize(picture: &Picture, width: u32, height: u32) -> Result<Cow<'_, DynamicImage>, RenderError> {
    let src = &picture.image;
    if (width, height) == (src.width(), src.height()) {
        return Ok(Cow::Borrowed(src));
    }
    let mut dst = DynamicImage::new(width, height, src.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    RESIZER
        .with(|r| r.borrow_mut().resize(src, &mut dst, &options))
        .map_err(|e| RenderError::codec(format!("resize: {e}"), e))?;
    Ok(Cow::Owned(dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_long_edge_and_never_upscales() {
        assert_eq!(fit(6000, 4000, Size::LongEdge(2048)), (2048, 1365));
        assert_eq!(fit(4000, 6000, Size::LongEdge(1024)), (683, 1024));
        assert_eq!(fit(800, 600, Size::LongEdge(2048)), (800, 600));
        assert_eq!(fit(800, 600, Size::Full), (800, 600));
        assert_eq!(fit(10_000, 1, Size::LongEdge(100)), (100, 1));
    }
}
