//! The keyed tile (docs/forensic.md#the-tile): which cells of a 128 px
//! square carry the pilot and which carry each coded bit, and each cell's
//! sign. Drawn from the seed alone with SHA-256 in counter mode, so the same
//! seed gives the same tile on every machine and in every later version.

use sha2::{Digest, Sha256};

/// A cell's side in pixels of the rendition: coarse enough to outlive JPEG
/// at quality 50 and a halving of the size.
pub const CELL: usize = 4;
/// Cells on a tile's side.
pub const CELLS: usize = 32;
/// A tile's side in pixels; the pattern repeats with this period.
pub const TILE: usize = CELL * CELLS;
/// Bits of the LDPC codeword a tile carries.
pub const CODED_BITS: usize = 128;
/// Cells of known sign, for finding where the tiles are.
pub const PILOT_CELLS: usize = 256;
/// What [`Tile::bit`] holds for a pilot cell.
pub const PILOT: u16 = u16::MAX;

/// One tile's plan, cell by cell (row-major, `CELLS × CELLS`).
pub struct Tile {
    /// +1 or −1.
    pub chip: Vec<f32>,
    /// The coded bit a cell carries, or [`PILOT`].
    pub bit: Vec<u16>,
}

impl Tile {
    pub fn new(seed: &[u8; 32]) -> Tile {
        let mut stream = KeyStream::new(seed);
        let n = CELLS * CELLS;
        let chip = (0..n)
            .map(|_| if stream.next_u32() & 1 == 0 { 1.0 } else { -1.0 })
            .collect();
        // Fisher–Yates: every bit's cells land all over the tile, so a crop
        // or a flat sky takes a little of every bit rather than all of some.
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (stream.next_u32() as usize) % (i + 1);
            order.swap(i, j);
        }
        let mut bit = vec![PILOT; n];
        for (rank, &cell) in order.iter().enumerate().skip(PILOT_CELLS) {
            bit[cell] = ((rank - PILOT_CELLS) % CODED_BITS) as u16;
        }
        Tile { chip, bit }
    }
}

/// SHA-256(seed ‖ counter), 32 bytes at a time.
struct KeyStream {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl KeyStream {
    fn new(seed: &[u8; 32]) -> KeyStream {
        KeyStream {
            seed: *seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.used == 32 {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.block = h.finalize().into();
            self.counter += 1;
            self.used = 0;
        }
        let word = u32::from_le_bytes(self.block[self.used..self.used + 4].try_into().expect("4 bytes"));
        self.used += 4;
        word
    }
}
