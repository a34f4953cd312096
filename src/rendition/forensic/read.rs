//! Reading a mark back (docs/forensic.md#reading): the suspect's luminance
//! minus its local mean (what is left is mostly the mark and texture),
//! folded onto one tile, then searched for the pilot over every cell phase
//! and cyclic shift: a crop moves the tiles, it does not change them.

use super::code;
use super::pattern::{CELL, CELLS, CODED_BITS, PILOT, TILE, Tile};

/// The half-width of the local mean taken away (a 9 × 9 box).
const RADIUS: usize = 4;
/// Normalised residuals are clipped to this: edges are loud and carry no
/// mark.
const CLIP: f32 = 3.0;
/// A pilot weaker than this many standard deviations is not looked at
/// (the strongest of the 16 384 alignments of noise is about 4.5).
pub const PILOT_Z_MIN: f32 = 5.5;
/// Alignments decoded at most, strongest first.
const TRIES: usize = 3;

/// A payload the decoder settled on, and how clearly the tiles were found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub payload: u64,
    pub pilot_z: f32,
}

/// The payloads a mark keyed by `seed` gives in this luminance plane
/// (`w × h`, one byte per pixel): none when there is no mark, or one made
/// with another seed. A payload is not yet a delivery: its tag is checked
/// by whoever holds the key.
pub fn read(luma: &[u8], w: usize, h: usize, seed: &[u8; 32]) -> Vec<Reading> {
    if w < CELL * 2 || h < CELL * 2 || luma.len() < w * h {
        return Vec::new();
    }
    let tile = Tile::new(seed);
    let folded = fold(&residual(luma, w, h), w);
    let mut alignments: Vec<(f32, usize)> = Vec::new();
    let mut phases = Vec::with_capacity(CELL * CELL);
    for phase in 0..CELL * CELL {
        let cells = cell_sums(&folded, phase / CELL, phase % CELL);
        for shift in 0..CELLS * CELLS {
            let z = pilot_z(&tile, &cells, shift);
            if z >= PILOT_Z_MIN {
                alignments.push((z, phase * CELLS * CELLS + shift));
            }
        }
        phases.push(cells);
    }
    alignments.sort_by(|a, b| b.0.total_cmp(&a.0));
    alignments
        .into_iter()
        .take(TRIES)
        .filter_map(|(z, at)| {
            let cells = &phases[at / (CELLS * CELLS)];
            let payload = code::decode(&soft_bits(&tile, cells, at % (CELLS * CELLS)))?;
            Some(Reading { payload, pilot_z: z })
        })
        .collect()
}

/// Luminance minus its 9 × 9 mean, divided by how busy its neighbourhood
/// is (the mean absolute residual over 9 × 9, plus one level) and clipped:
/// texture is where the mark is strongest and the picture loudest, so each
/// place counts by how clearly it can carry the mark, not by how loud it is.
fn residual(luma: &[u8], w: usize, h: usize) -> Vec<f32> {
    let values: Vec<f32> = luma.iter().map(|&v| f32::from(v)).collect();
    let mean = box_mean(&values, w, h);
    let raw: Vec<f32> = values.iter().zip(&mean).map(|(v, m)| v - m).collect();
    let loudness = box_mean(&raw.iter().map(|r| r.abs()).collect::<Vec<_>>(), w, h);
    raw.iter()
        .zip(&loudness)
        .map(|(r, l)| (r / (l + 1.0)).clamp(-CLIP, CLIP))
        .collect()
}

/// The mean of each pixel's (2·RADIUS + 1)² neighbourhood (cut at the
/// edges), from an integral image.
fn box_mean(values: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut integral = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += f64::from(values[y * w + x]);
            integral[(y + 1) * (w + 1) + x + 1] = integral[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(RADIUS), (y + RADIUS + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(RADIUS), (x + RADIUS + 1).min(w));
            let sum = integral[y1 * (w + 1) + x1] + integral[y0 * (w + 1) + x0]
                - integral[y0 * (w + 1) + x1]
                - integral[y1 * (w + 1) + x0];
            out[y * w + x] = (sum / ((y1 - y0) * (x1 - x0)) as f64) as f32;
        }
    }
    out
}

/// Every pixel added onto its place modulo the tile: each cell of the
/// result sums that cell of every tile the suspect holds.
fn fold(residual: &[f32], w: usize) -> Vec<f32> {
    let mut folded = vec![0f32; TILE * TILE];
    for (y, row) in residual.chunks_exact(w).enumerate() {
        let out = &mut folded[(y % TILE) * TILE..(y % TILE + 1) * TILE];
        for (x, v) in row.iter().enumerate() {
            out[x % TILE] += v;
        }
    }
    folded
}

/// The tile-sized sums of one cell phase: cell (cy, cx) sums the folded
/// pixels from (cy·4 + py, cx·4 + px), wrapping.
fn cell_sums(folded: &[f32], py: usize, px: usize) -> Vec<f32> {
    let mut cells = vec![0f32; CELLS * CELLS];
    for (i, sum) in cells.iter_mut().enumerate() {
        let (cy, cx) = (i / CELLS, i % CELLS);
        for dy in 0..CELL {
            let y = (cy * CELL + py + dy) % TILE;
            for dx in 0..CELL {
                *sum += folded[y * TILE + (cx * CELL + px + dx) % TILE];
            }
        }
    }
    cells
}

/// Where tile cell `t` is among the suspect's cells under `shift`.
fn shifted(t: usize, shift: usize) -> usize {
    let (ty, tx) = (t / CELLS, t % CELLS);
    let (sy, sx) = (shift / CELLS, shift % CELLS);
    ((ty + CELLS - sy) % CELLS) * CELLS + (tx + CELLS - sx) % CELLS
}

/// The pilot's correlation in standard deviations of what noise would give.
fn pilot_z(tile: &Tile, cells: &[f32], shift: usize) -> f32 {
    let (mut corr, mut energy) = (0f32, 0f32);
    for t in (0..CELLS * CELLS).filter(|&t| tile.bit[t] == PILOT) {
        let v = cells[shifted(t, shift)];
        corr += tile.chip[t] * v;
        energy += v * v;
    }
    if energy > 0.0 { corr / energy.sqrt() } else { 0.0 }
}

/// Each coded bit's soft value: its cells' sums times their chips.
fn soft_bits(tile: &Tile, cells: &[f32], shift: usize) -> Vec<f32> {
    let mut soft = vec![0f32; CODED_BITS];
    for t in 0..CELLS * CELLS {
        if tile.bit[t] != PILOT {
            soft[tile.bit[t] as usize] += tile.chip[t] * cells[shifted(t, shift)];
        }
    }
    soft
}
