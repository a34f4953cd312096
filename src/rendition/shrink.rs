//! Box shrinking as rows arrive: each `factor`×`factor` block of the
//! source becomes the mean of its pixels, so a decoder that yields rows
//! (PNG, TIFF strips and tiles) never needs the full-size image. As in
//! libvips, the box shrink only takes the picture near the target; the
//! final size comes from Lanczos afterwards.

/// The integer shrink that keeps the long edge at or above `largest`
/// (1: none). The same rule as JPEG's shrink-on-load. At most
/// [`MAX_FACTOR`]: beyond it the final resize does the rest.
pub fn factor(long_edge: u32, largest: Option<u32>) -> u32 {
    match largest {
        Some(target) if target > 0 => (long_edge / target).clamp(1, MAX_FACTOR),
        _ => 1,
    }
}

pub const MAX_FACTOR: u32 = 1024;

/// Accumulates rows of 8-bit samples into a picture `factor` times smaller
/// (edges rounded up: a partial block is the mean of what it holds). With
/// alpha (2 or 4 channels, alpha last) colours are weighted by it, as the
/// final resize does, so transparent pixels lend no colour.
pub struct Shrinker {
    factor: u32,
    width: u32,
    height: u32,
    channels: usize,
    out_width: u32,
    /// Sums of the block row being filled, one per output sample
    /// (colours times alpha when there is alpha).
    sums: Vec<u64>,
    /// Source rows added to `sums` so far.
    rows_in_band: u32,
    rows_seen: u32,
    out: Vec<u8>,
}

impl Shrinker {
    pub fn new(width: u32, height: u32, channels: usize, factor: u32) -> Shrinker {
        let factor = factor.max(1);
        let (out_width, out_height) = (width.div_ceil(factor), height.div_ceil(factor));
        let row = out_width as usize * channels;
        Shrinker {
            factor,
            width,
            height,
            channels,
            out_width,
            sums: vec![0; row],
            rows_in_band: 0,
            rows_seen: 0,
            out: Vec::with_capacity(row * out_height as usize),
        }
    }

    /// The size of the shrunk picture.
    pub fn out_size(&self) -> (u32, u32) {
        (self.out_width, self.height.div_ceil(self.factor))
    }

    /// Adds the next source row (`width × channels` samples; extra ignored).
    pub fn push(&mut self, row: &[u8]) {
        if self.rows_seen >= self.height {
            return;
        }
        let (c, k) = (self.channels, self.factor as usize);
        let row = &row[..(self.width as usize * c).min(row.len())];
        if k == 1 {
            self.out.extend_from_slice(row);
        } else {
            let alpha = c == 2 || c == 4;
            for (block, sums) in row.chunks(k * c).zip(self.sums.chunks_mut(c)) {
                for pixel in block.chunks_exact(c) {
                    if alpha {
                        let a = u64::from(pixel[c - 1]);
                        for (s, &v) in sums.iter_mut().zip(&pixel[..c - 1]) {
                            *s += u64::from(v) * a;
                        }
                        sums[c - 1] += a;
                    } else {
                        for (s, &v) in sums.iter_mut().zip(pixel) {
                            *s += u64::from(v);
                        }
                    }
                }
            }
        }
        self.rows_seen += 1;
        self.rows_in_band += 1;
        if k > 1 && (self.rows_in_band == self.factor || self.rows_seen == self.height) {
            self.flush_band();
        }
    }

    /// Writes the filled block row out as means, and starts the next.
    fn flush_band(&mut self) {
        let (c, k) = (self.channels, self.factor);
        let alpha = c == 2 || c == 4;
        let full_width = self.width / k;
        let rows = u64::from(self.rows_in_band);
        for (x, sums) in self.sums.chunks_mut(c).enumerate() {
            let cols = if (x as u32) < full_width {
                k
            } else {
                self.width - full_width * k
            };
            let n = u64::from(cols) * rows;
            let mean = |sum: u64, n: u64| ((sum + n / 2) / n.max(1)) as u8;
            if alpha {
                // Colours are sums of colour × alpha: divided by the alpha sum.
                let a = sums[c - 1];
                for s in &sums[..c - 1] {
                    self.out.push(if a == 0 { 0 } else { mean(*s, a) });
                }
                self.out.push(mean(a, n));
            } else {
                for s in sums.iter() {
                    self.out.push(mean(*s, n));
                }
            }
            sums.fill(0);
        }
        self.rows_in_band = 0;
    }

    /// Whether every source row has been pushed.
    pub fn is_complete(&self) -> bool {
        self.rows_seen == self.height
    }

    /// The shrunk samples, row after row.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_keeps_the_long_edge_at_or_above_the_target() {
        assert_eq!(factor(8256, Some(2048)), 4);
        assert_eq!(factor(4095, Some(2048)), 1);
        assert_eq!(factor(4096, Some(2048)), 2);
        assert_eq!(factor(1000, None), 1);
        assert_eq!(factor(1000, Some(0)), 1);
        assert_eq!(factor(100, Some(2048)), 1);
        assert_eq!(factor(60_000, Some(1)), MAX_FACTOR);
    }

    #[test]
    fn each_block_is_the_mean_of_its_pixels_edges_included() {
        // 5×3 grey, shrunk by 2: blocks of 2×2, then a last column and row of partial blocks.
        let rows: Vec<Vec<u8>> = vec![
            vec![0, 10, 20, 30, 40],
            vec![2, 12, 22, 32, 42],
            vec![100, 100, 0, 0, 9],
        ];
        let mut s = Shrinker::new(5, 3, 1, 2);
        assert_eq!(s.out_size(), (3, 2));
        for r in &rows {
            s.push(r);
        }
        assert!(s.is_complete());
        let out = s.finish();
        // (0+10+2+12)/4=6, (20+30+22+32)/4=26, (40+42)/2=41; (100+100)/2=100, 0, 9.
        assert_eq!(out, vec![6, 26, 41, 100, 0, 9]);
    }

    #[test]
    fn alpha_weights_the_colours() {
        // Opaque red beside transparent green: the block is red, half transparent.
        let mut s = Shrinker::new(2, 1, 4, 2);
        s.push(&[255, 0, 0, 255, 0, 255, 0, 0]);
        assert_eq!(s.finish(), vec![255, 0, 0, 128]);
        let mut clear = Shrinker::new(2, 1, 2, 2);
        clear.push(&[90, 0, 30, 0]);
        assert_eq!(clear.finish(), vec![0, 0]);
    }

    #[test]
    fn channels_are_averaged_apart_and_factor_one_copies() {
        let mut s = Shrinker::new(2, 2, 3, 2);
        s.push(&[255, 0, 0, 0, 0, 255]);
        s.push(&[255, 0, 0, 0, 0, 255]);
        assert_eq!(s.finish(), vec![128, 0, 128]);
        let mut one = Shrinker::new(2, 1, 3, 1);
        one.push(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(one.out_size(), (2, 1));
        assert_eq!(one.finish(), vec![1, 2, 3, 4, 5, 6]);
    }
}
