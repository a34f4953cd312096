//! Burns the watermark in: the policy's text (recipient filled in), white
//! with a dark outline so it reads on light and dark pictures, sized from
//! the output so it stays legible at 320 px and at 2048 px.

use std::sync::LazyLock;

use ab_glyph::{FontRef, PxScale};
use image::{DynamicImage, Rgba, RgbaImage};
use imageproc::drawing::{draw_text_mut, text_size};
use imageproc::geometric_transformations::{Border, Interpolation, rotate_about_center};

use super::WatermarkSpec;
use super::spec::Position;

static FONT: LazyLock<FontRef<'static>> =
    LazyLock::new(|| FontRef::try_from_slice(dejavu::sans::bold()).expect("the bundled font parses"));

/// Text height in pixels for an output whose short edge is `short`.
fn text_px(short: u32, share: f32) -> f32 {
    (short as f32 * share).max(12.0)
}

/// The logo (if any) then the text, white on a dark outline, on a
/// transparent canvas. The logo is scaled to 1.5 × the text height.
fn text_tile(text: &str, px: f32, logo: Option<&RgbaImage>) -> RgbaImage {
    let scale = PxScale::from(px);
    let (tw, th) = if text.is_empty() {
        (0, 0)
    } else {
        text_size(scale, &*FONT, text)
    };
    let pad = (px / 8.0).ceil().max(2.0) as i32;
    let logo = logo.map(|l| {
        let h = (px * 1.5).round().max(1.0) as u32;
        let w = (u64::from(l.width()) * u64::from(h) / u64::from(l.height().max(1))).max(1) as u32;
        image::imageops::resize(l, w, h, image::imageops::FilterType::Triangle)
    });
    let (lw, lh) = logo.as_ref().map_or((0, 0), |l| (l.width() + pad as u32, l.height()));
    let (w, h) = (tw + lw, th.max(lh));
    let mut tile = RgbaImage::new(w + 2 * pad as u32, h + 2 * pad as u32);
    if let Some(logo) = &logo {
        image::imageops::overlay(
            &mut tile,
            logo,
            i64::from(pad),
            i64::from(pad) + i64::from(h - logo.height()) / 2,
        );
    }
    let pad_x = pad + lw as i32;
    let pad_y = pad + (h - th) as i32 / 2;
    let outline = (px / 16.0).ceil().max(1.0) as i32;
    for (dx, dy) in [(-1, -1), (1, -1), (-1, 1), (1, 1), (0, -1), (0, 1), (-1, 0), (1, 0)] {
        draw_text_mut(
            &mut tile,
            Rgba([0, 0, 0, 200]),
            pad_x + dx * outline,
            pad_y + dy * outline,
            scale,
            &*FONT,
            text,
        );
    }
    draw_text_mut(&mut tile, Rgba([255, 255, 255, 255]), pad_x, pad_y, scale, &*FONT, text);
    tile
}

/// The tile turned 30° on a canvas large enough not to clip it.
fn diagonal(tile: &RgbaImage) -> RgbaImage {
    let side = ((tile.width().pow(2) + tile.height().pow(2)) as f64).sqrt().ceil() as u32;
    let mut square = RgbaImage::new(side, side);
    image::imageops::overlay(
        &mut square,
        tile,
        i64::from((side - tile.width()) / 2),
        i64::from((side - tile.height()) / 2),
    );
    rotate_about_center(
        &square,
        -std::f32::consts::PI / 6.0,
        Interpolation::Bilinear,
        Border::Constant(Rgba([0, 0, 0, 0])),
    )
}

pub fn apply(image: &mut DynamicImage, spec: &WatermarkSpec) {
    let (w, h) = (image.width(), image.height());
    let short = w.min(h);
    match spec.position {
        Position::Tiled => {
            let tile = diagonal(&text_tile(
                &spec.text,
                text_px(short, 0.05),
                spec.logo.as_ref().map(|l| &*l.pixels),
            ));
            let (step_x, step_y) = ((tile.width() * 9 / 10).max(1), (tile.height() / 2).max(1));
            for (row, y) in (0..h + step_y).step_by(step_y as usize).enumerate() {
                let shift = if row % 2 == 1 { step_x as i64 / 2 } else { 0 };
                for x in (0..w + step_x).step_by(step_x as usize) {
                    blend(
                        image,
                        &tile,
                        x as i64 - shift - tile.width() as i64 / 2,
                        y as i64 - tile.height() as i64 / 2,
                        spec.opacity,
                    );
                }
            }
        }
        Position::Center => {
            let probe = text_size(PxScale::from(100.0), &*FONT, &spec.text).0.max(150) as f32;
            let px = (100.0 * 0.6 * w as f32 / probe).min(h as f32 * 0.15).max(12.0);
            let tile = text_tile(&spec.text, px, spec.logo.as_ref().map(|l| &*l.pixels));
            blend(
                image,
                &tile,
                (i64::from(w) - i64::from(tile.width())) / 2,
                (i64::from(h) - i64::from(tile.height())) / 2,
                spec.opacity,
            );
        }
        Position::BottomRight => {
            let px = text_px(short, 0.04);
            let tile = text_tile(&spec.text, px, spec.logo.as_ref().map(|l| &*l.pixels));
            let margin = (px * 0.6) as i64;
            let x = i64::from(w) - i64::from(tile.width()) - margin;
            let y = i64::from(h) - i64::from(tile.height()) - margin;
            blend(image, &tile, x, y, spec.opacity);
        }
    }
}

/// Lays `tile` over `image` at (x, y) with `opacity`, clipping at the edges.
/// Transparent outputs get the mark's alpha too, so it cannot be hidden.
fn blend(image: &mut DynamicImage, tile: &RgbaImage, x0: i64, y0: i64, opacity: f32) {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let channels = usize::from(image.color().channel_count());
    let stride = w as usize * channels;
    let pixels: &mut [u8] = match image {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageRgba8(i) => i,
        _ => return,
    };
    for (tx, ty, px) in tile.enumerate_pixels() {
        let (x, y) = (x0 + i64::from(tx), y0 + i64::from(ty));
        if px[3] == 0 || x < 0 || y < 0 || x >= w || y >= h {
            continue;
        }
        let a = f32::from(px[3]) / 255.0 * opacity;
        let at = y as usize * stride + x as usize * channels;
        for c in 0..3 {
            let d = &mut pixels[at + c];
            *d = (f32::from(*d) * (1.0 - a) + f32::from(px[c]) * a).round() as u8;
        }
        if channels == 4 {
            let d = &mut pixels[at + 3];
            *d = (*d).max((a * 255.0) as u8);
        }
    }
}
