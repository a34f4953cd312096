//! The watermark for video: drawn once per job by the image engine's own
//! watermark code (same text, logo, opacity and position as images), then
//! turned into per-plane YUV alpha and colour so each frame costs one
//! integer blend per covered sample.

use image::{DynamicImage, RgbaImage};

use crate::rendition::WatermarkSpec;
use crate::rendition::watermark;

/// One plane's share of the mark: alpha (0–255) and alpha × value.
struct PlaneMark {
    width: usize,
    alpha: Vec<u8>,
    premultiplied: Vec<u16>,
    /// Rows with no mark at all are skipped.
    rows: Vec<bool>,
}

/// The mark for frames of one size, in limited-range BT.709 yuv420p.
pub struct Overlay {
    planes: [PlaneMark; 3],
}

impl Overlay {
    /// The mark for `width` × `height` frames (both even).
    pub fn new(spec: &WatermarkSpec, width: u32, height: u32) -> Overlay {
        let mark = premultiplied_mark(spec, width, height);
        Overlay {
            planes: [
                plane(&mark, 1, [0.1826, 0.6142, 0.0620], 16.0),
                plane(&mark, 2, [-0.1006, -0.3386, 0.4392], 128.0),
                plane(&mark, 2, [0.4392, -0.3989, -0.0403], 128.0),
            ],
        }
    }

    /// Blends the mark into a yuv420p frame of the size it was made for.
    pub fn blend(&self, frame: &mut ffmpeg_next::frame::Video) {
        for (index, mark) in self.planes.iter().enumerate() {
            let stride = frame.stride(index);
            let data = frame.data_mut(index);
            for (y, _) in mark.rows.iter().enumerate().filter(|(_, any)| **any) {
                let row = &mut data[y * stride..y * stride + mark.width];
                let at = y * mark.width;
                let alpha = &mark.alpha[at..at + mark.width];
                let color = &mark.premultiplied[at..at + mark.width];
                for ((d, &a), &p) in row.iter_mut().zip(alpha).zip(color) {
                    if a != 0 {
                        *d = ((u32::from(*d) * (255 - u32::from(a)) + u32::from(p) + 127) / 255) as u8;
                    }
                }
            }
        }
    }
}

/// The mark alone on a `width` × `height` canvas, colour multiplied by alpha.
pub fn premultiplied_mark(spec: &WatermarkSpec, width: u32, height: u32) -> RgbaImage {
    let mut canvas = DynamicImage::ImageRgba8(RgbaImage::new(width, height));
    // On a transparent canvas the blend leaves colour × alpha and the alpha
    // itself: exactly what a per-frame "over" needs.
    watermark::apply(&mut canvas, spec);
    canvas.into_rgba8()
}

/// One plane at 1/`step` resolution: alpha and alpha × (offset + coeffs·rgb),
/// averaged over each step × step block.
fn plane(mark: &RgbaImage, step: u32, coeffs: [f32; 3], offset: f32) -> PlaneMark {
    let (w, h) = (mark.width() / step, mark.height() / step);
    let mut alpha = Vec::with_capacity((w * h) as usize);
    let mut premultiplied = Vec::with_capacity((w * h) as usize);
    let mut rows = Vec::with_capacity(h as usize);
    let n = (step * step) as f32;
    for y in 0..h {
        let mut any = false;
        for x in 0..w {
            let (mut a, mut v) = (0.0f32, 0.0f32);
            for dy in 0..step {
                for dx in 0..step {
                    let p = mark.get_pixel(x * step + dx, y * step + dy).0;
                    // Colours here are already multiplied by alpha/255.
                    let rgb = coeffs[0] * f32::from(p[0]) + coeffs[1] * f32::from(p[1]) + coeffs[2] * f32::from(p[2]);
                    a += f32::from(p[3]);
                    v += f32::from(p[3]) * offset + 255.0 * rgb;
                }
            }
            let a = (a / n).round().clamp(0.0, 255.0) as u8;
            any |= a != 0;
            alpha.push(a);
            premultiplied.push((v / n).round().clamp(0.0, f32::from(a) * 255.0) as u16);
        }
        rows.push(any);
    }
    PlaneMark {
        width: w as usize,
        alpha,
        premultiplied,
        rows,
    }
}
