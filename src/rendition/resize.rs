//! Resizing with fast_image_resize (Lanczos3, SIMD), fitting the long edge
//! inside the target and never upscaling.

use std::borrow::Cow;
use std::cell::RefCell;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use super::source::Picture;
use super::{Fit, Frame, RenderError, Size};

/// The output size for a `width`×`height` picture: long edge at most the
/// target, aspect kept, never larger than the picture; a frame's canvas.
pub fn fit(width: u32, height: u32, size: Size) -> (u32, u32) {
    let long = width.max(height);
    match size {
        Size::Frame(frame) => framed(width, height, frame).canvas,
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

/// Where a frame's output comes from and what it is, in the upright
/// original's full-size pixels: the region of the picture drawn, the size
/// it is drawn at, and the canvas it is drawn on (larger only for `pad`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Framed {
    /// Left, top, width, height.
    pub region: [f64; 4],
    pub drawn: (u32, u32),
    pub canvas: (u32, u32),
}

/// How a `width`×`height` picture fills `frame`.
pub fn framed(width: u32, height: u32, frame: Frame) -> Framed {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let (fw, fh) = (f64::from(frame.width.max(1)), f64::from(frame.height.max(1)));
    let side = |v: f64| (v.round() as u32).max(1);
    match frame.fit {
        Fit::Cover => {
            // The largest region of the frame's shape, around the focus.
            let (rw, rh) = if w / h > fw / fh {
                (h * fw / fh, h)
            } else {
                (w, w * fh / fw)
            };
            let [fx, fy] = frame
                .focus
                .map_or([0.5, 0.5], |[x, y]| [f64::from(x) / 1e4, f64::from(y) / 1e4]);
            let left = (fx * w - rw / 2.0).clamp(0.0, w - rw);
            let top = (fy * h - rh / 2.0).clamp(0.0, h - rh);
            let k = (fw / rw).min(1.0);
            let drawn = (side(rw * k).min(frame.width), side(rh * k).min(frame.height));
            Framed {
                region: [left, top, rw, rh],
                drawn,
                canvas: drawn,
            }
        }
        Fit::Inside | Fit::Pad => {
            let k = frame.scale(width, height);
            let drawn = (side(w * k).min(width), side(h * k).min(height));
            // A pad canvas has the frame's shape, scaled down with the
            // picture when the picture is smaller than the frame.
            let t = (f64::from(drawn.0) / fw).max(f64::from(drawn.1) / fh).min(1.0);
            let canvas = match frame.fit {
                Fit::Pad => (side(fw * t).max(drawn.0), side(fh * t).max(drawn.1)),
                _ => drawn,
            };
            Framed {
                region: [0.0, 0.0, w, h],
                drawn,
                canvas,
            }
        }
    }
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
    resized(src, width, height, ResizeOptions::new()).map(Cow::Owned)
}

/// `picture` at `size`: fitted, or for a frame, its region drawn and
/// placed on its canvas (centred).
pub fn sized(picture: &Picture, size: Size) -> Result<Cow<'_, DynamicImage>, RenderError> {
    let Size::Frame(frame) = size else {
        let (w, h) = fit_within(picture, size);
        return resize(picture, w, h);
    };
    let (full_w, full_h) = picture.full_size;
    let frame = match frame {
        // No focal point: the most interesting window of the frame's shape.
        Frame {
            fit: Fit::Cover,
            focus: None,
            ..
        } => Frame {
            focus: Some(super::attention::focus(
                &picture.image,
                f64::from(frame.width) / f64::from(frame.height),
            )),
            ..frame
        },
        frame => frame,
    };
    let placed = framed(full_w, full_h, frame);
    // The region in the pixels at hand (the picture may be shrunk on load).
    let k = f64::from(picture.width()) / f64::from(full_w.max(1));
    let [left, top, w, h] = placed.region.map(|v| v * k);
    let crop = ResizeOptions::new().crop(
        left,
        top,
        w.min(f64::from(picture.width())),
        h.min(f64::from(picture.height())),
    );
    let (dw, dh) = placed.drawn;
    let drawn = resized(&picture.image, dw, dh, crop)?;
    if placed.canvas == placed.drawn {
        return Ok(Cow::Owned(drawn));
    }
    let (cw, ch) = placed.canvas;
    let mut canvas = DynamicImage::new(cw, ch, drawn.color());
    if !drawn.color().has_alpha() {
        // White where nothing is drawn; transparent where alpha is kept.
        match &mut canvas {
            DynamicImage::ImageRgb8(c) => c.pixels_mut().for_each(|p| p.0 = [255; 3]),
            DynamicImage::ImageLuma8(c) => c.pixels_mut().for_each(|p| p.0 = [255]),
            _ => {}
        }
    }
    image::imageops::replace(&mut canvas, &drawn, i64::from((cw - dw) / 2), i64::from((ch - dh) / 2));
    Ok(Cow::Owned(canvas))
}

/// `src` resized to `width`×`height` (Lanczos3) with `options` (a crop).
fn resized(src: &DynamicImage, width: u32, height: u32, options: ResizeOptions) -> Result<DynamicImage, RenderError> {
    let mut dst = DynamicImage::new(width, height, src.color());
    let options = options.resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    RESIZER
        .with(|r| r.borrow_mut().resize(src, &mut dst, &options))
        .map_err(|e| RenderError::codec(format!("resize: {e}"), e))?;
    Ok(dst)
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

    fn frame(width: u32, height: u32, fit: Fit, focus: Option<[u16; 2]>) -> Frame {
        Frame {
            width,
            height,
            fit,
            focus,
        }
    }

    #[test]
    fn a_cover_frame_is_the_frame_cropped_around_the_focus() {
        let square = |focus| framed(6000, 4000, frame(1080, 1080, Fit::Cover, focus));
        let centred = square(None);
        assert_eq!((centred.drawn, centred.canvas), ((1080, 1080), (1080, 1080)));
        assert_eq!(centred.region, [1000.0, 0.0, 4000.0, 4000.0]);
        // Focus at the left edge: the crop starts at the left edge.
        assert_eq!(square(Some([0, 5000])).region[0], 0.0);
        // Focus at 80 % across: centred there, inside the picture.
        assert_eq!(square(Some([8000, 5000])).region[0], 2000.0);
        // A source smaller than the frame: the largest square it holds.
        let small = framed(800, 600, frame(1080, 1080, Fit::Cover, None));
        assert_eq!((small.drawn, small.region), ((600, 600), [100.0, 0.0, 600.0, 600.0]));
    }

    #[test]
    fn inside_and_pad_keep_the_whole_picture() {
        let inside = framed(6000, 4000, frame(1000, 1000, Fit::Inside, None));
        assert_eq!((inside.drawn, inside.canvas), ((1000, 667), (1000, 667)));
        let pad = framed(6000, 4000, frame(1000, 1000, Fit::Pad, None));
        assert_eq!((pad.drawn, pad.canvas), ((1000, 667), (1000, 1000)));
        let small = framed(400, 300, frame(1000, 1000, Fit::Pad, None));
        assert_eq!((small.drawn, small.canvas), ((400, 300), (400, 400)));
    }
}
