//! The forensic mark (docs/forensic.md): an invisible, keyed pattern in a
//! rendition's luminance that names the delivery it was made for, and the
//! reader that finds it again after recompression, scaling and cropping.
//!
//! The engine knows no key and no recipient: it is handed a 64-bit payload
//! (the worker's delivery id and its tag) and a seed the worker derived
//! from its key. A tile of 32 × 32 cells of 4 px repeats from the image's
//! top left corner; 256 cells are a pilot of known sign (to find the tiles
//! again), the others carry the 128 bits of the payload's LDPC codeword,
//! each spread over six cells of every tile. A cell adds ±α to the
//! luminance, α following the local texture so flat skies get the least.
//!
//! - [`pattern`]: the keyed tile.
//! - [`code`]: the error-correcting code.
//! - [`read`]: finding tiles and bits in a suspect image's luminance.

pub mod code;
pub mod pattern;
pub mod read;

use image::DynamicImage;
use sha2::{Digest, Sha256};

use pattern::{CELL, CELLS, PILOT, Tile};

/// The weakest and strongest a cell may be, in 8-bit levels.
const ALPHA_MIN: f32 = 0.35;
const ALPHA_MAX: f32 = 6.0;
/// Levels of α per level of mean gradient in the cell.
const ALPHA_PER_GRADIENT: f32 = 0.12;
/// The most mean square the mark may add (3.0 levels²: PSNR ≥ 43.4 dB;
/// docs/forensic.md#invisible).
const MEAN_SQUARE_BUDGET: f32 = 3.0;

/// What to mark a rendition with.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForensicSpec {
    /// The delivery id (high 40 bits) and its tag (low 24 bits).
    pub payload: u64,
    /// Draws the tile; derived from the worker's key, never the key.
    #[serde(with = "hex::serde")]
    pub seed: [u8; 32],
}

impl std::fmt::Debug for ForensicSpec {
    // The seed reads every mark made with it: kept out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForensicSpec")
            .field("payload", &format_args!("{:016x}", self.payload))
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl ForensicSpec {
    /// The delivery id the mark carries, as audit records name it: 10 hex
    /// digits.
    pub fn delivery_id(&self) -> String {
        delivery_id(self.payload)
    }

    /// What makes two marks differ, for content addresses.
    pub fn identity(&self) -> String {
        format!("{:016x}:{}", self.payload, hex::encode(&Sha256::digest(self.seed)[..4]))
    }
}

/// How audit records name the delivery id of `payload` (its high 40 bits).
pub fn delivery_id(payload: u64) -> String {
    format!("{:010x}", payload >> 24)
}

/// Marks `image` in place. Deterministic: the same pixels and spec give the
/// same bytes.
pub fn embed(image: &mut DynamicImage, mark: &ForensicSpec) {
    let signs = cell_signs(mark);
    let (w, h) = (image.width() as usize, image.height() as usize);
    match image {
        DynamicImage::ImageRgb8(img) => add::<3, 3>(img, (w, h), &signs),
        DynamicImage::ImageRgba8(img) => add::<4, 3>(img, (w, h), &signs),
        DynamicImage::ImageLuma8(img) => add::<1, 1>(img, (w, h), &signs),
        DynamicImage::ImageLumaA8(img) => add::<2, 1>(img, (w, h), &signs),
        other => {
            // Deeper or float pixels: marked at 8 bits, which is what every
            // output format but TIFF writes anyway.
            *other = if other.color().has_alpha() {
                DynamicImage::ImageRgba8(other.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(other.to_rgb8())
            };
            embed(other, mark);
        }
    }
}

/// Each tile cell's sign: its chip times its coded bit (pilot cells: +1).
fn cell_signs(mark: &ForensicSpec) -> Vec<f32> {
    let tile = Tile::new(&mark.seed);
    let coded = code::encode(mark.payload);
    tile.chip
        .iter()
        .zip(&tile.bit)
        .map(|(chip, &bit)| {
            if bit == PILOT {
                *chip
            } else {
                chip * coded[bit as usize]
            }
        })
        .collect()
}

/// A 4 × 4 ordered-dither matrix: a cell whose α is 1.25 moves a quarter
/// of its pixels by 2 levels and the rest by 1, so a flat sky's α of 0.35
/// moves a third of its pixels by one level instead of rounding to all or
/// none.
const BAYER: [[u8; CELL]; CELL] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// Adds the pattern to the first `COLOUR` channels of each pixel (all
/// three of RGB alike: a change of luminance only, which greyscale keeps).
/// Each row's changes are laid out byte by byte first, so adding them is
/// one loop the compiler vectorises.
fn add<const CHANNELS: usize, const COLOUR: usize>(buf: &mut [u8], (w, h): (usize, usize), signs: &[f32]) {
    let alpha = cell_strengths::<CHANNELS, COLOUR>(buf, w, h);
    let cells_w = w.div_ceil(CELL);
    // Per cell of the current band of cells: sign, whole levels, sixteenths.
    let mut cells = vec![(0i16, 0i16, 0u8); cells_w];
    let mut changes = vec![0i16; w * CHANNELS];
    for (y, row) in buf.chunks_exact_mut(w * CHANNELS).take(h).enumerate() {
        let (cy, dy) = (y / CELL, y % CELL);
        if dy == 0 {
            let tile_row = &signs[(cy % CELLS) * CELLS..(cy % CELLS + 1) * CELLS];
            for (cx, cell) in cells.iter_mut().enumerate() {
                let delta = alpha[cy * cells_w + cx] * tile_row[cx % CELLS];
                let size = delta.abs();
                let whole = size as i16;
                *cell = (
                    if delta < 0.0 { -1 } else { 1 },
                    whole,
                    ((size - f32::from(whole)) * 16.0) as u8,
                );
            }
        }
        for (x, px) in changes.chunks_exact_mut(CHANNELS).enumerate() {
            let (sign, whole, sixteenths) = cells[x / CELL];
            let step = sign * (whole + i16::from(sixteenths > BAYER[dy][x % CELL]));
            px[..COLOUR].fill(step);
        }
        for (v, change) in row.iter_mut().zip(&changes) {
            *v = (i16::from(*v) + change).clamp(0, 255) as u8;
        }
    }
}

/// Each cell's α, from its mean gradient (texture hides a stronger mark),
/// scaled down as a whole when the mean square would pass the budget. The
/// gradient is the green channel's (grey's), which follows luminance
/// closely, on every other row: an estimate of texture needs no more.
fn cell_strengths<const CHANNELS: usize, const COLOUR: usize>(buf: &[u8], w: usize, h: usize) -> Vec<f32> {
    let (cells_w, cells_h) = (w.div_ceil(CELL), h.div_ceil(CELL));
    let channel = COLOUR / 2;
    let mut sum = vec![0u32; cells_w * cells_h];
    let mut rows = vec![0u32; cells_h];
    let stride = w * CHANNELS;
    for y in (0..h).step_by(2) {
        let row = &buf[y * stride..(y + 1) * stride];
        let below = if y + 1 < h {
            &buf[(y + 1) * stride..(y + 2) * stride]
        } else {
            row
        };
        let sums = &mut sum[(y / CELL) * cells_w..(y / CELL + 1) * cells_w];
        rows[y / CELL] += 1;
        for (cell, (pixels, under)) in sums
            .iter_mut()
            .zip(row.chunks(CELL * CHANNELS).zip(below.chunks(CELL * CHANNELS)))
        {
            let mut total = 0u32;
            let mut last = pixels[channel];
            for (px, un) in pixels.chunks_exact(CHANNELS).zip(under.chunks_exact(CHANNELS)) {
                let v = px[channel];
                total += u32::from(v.abs_diff(last)) + u32::from(v.abs_diff(un[channel]));
                last = v;
            }
            *cell += total;
        }
    }
    let mut alpha: Vec<f32> = sum
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let width = CELL.min(w - (i % cells_w) * CELL);
            let samples = (rows[i / cells_w] as usize * width).max(1);
            (ALPHA_MIN + ALPHA_PER_GRADIENT * s as f32 / samples as f32).min(ALPHA_MAX)
        })
        .collect();
    let mean_square = alpha.iter().map(|a| a * a).sum::<f32>() / alpha.len().max(1) as f32;
    if mean_square > MEAN_SQUARE_BUDGET {
        let scale = (MEAN_SQUARE_BUDGET / mean_square).sqrt();
        alpha.iter_mut().for_each(|a| *a *= scale);
    }
    alpha
}

#[cfg(test)]
mod tests;
