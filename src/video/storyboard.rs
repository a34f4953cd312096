//! A storyboard (docs/contract.md#storyboards): a sheet of tiles, each
//! the frame at the middle of an equal share of the video, left to right
//! and top to bottom, so a player can show where a scrub would land. The
//! image engine then sizes, watermarks and encodes the sheet under the
//! image rules; the worker writes the WebVTT index from the duration.

use std::path::Path;

use image::RgbImage;

use super::poster::{Stills, no_frame};
use super::{VideoError, VideoLimits};

/// The grid of a sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sheet {
    pub columns: u32,
    pub rows: u32,
    /// Each tile's longer side in pixels (the other keeps the picture's
    /// shape).
    pub tile_width: u32,
}

impl Sheet {
    /// 5 × 5 tiles 160 px wide: a 800 px sheet, as players' scrub
    /// previews show them.
    pub const DEFAULT: Sheet = Sheet {
        columns: 5,
        rows: 5,
        tile_width: 160,
    };

    pub fn tiles(&self) -> u32 {
        self.columns * self.rows
    }
}

/// The sheet and the duration its tiles share.
pub struct Storyboard {
    pub image: RgbImage,
    pub duration_s: f64,
}

/// The sheet of the video at `input`.
pub fn storyboard(input: &Path, sheet: Sheet, limits: &VideoLimits) -> Result<Storyboard, VideoError> {
    let probe = Stills::open(input, limits, None)?;
    let (w, h) = probe.source.upright();
    drop(probe);
    // The picture's shape within a square of the tile width: a sliver of a
    // video (64 × 500 000) makes a sliver of a tile, not a giant one.
    let side = u64::from(sheet.tile_width);
    let (w, h) = (u64::from(w.max(1)), u64::from(h.max(1)));
    let fit = |a: u64, b: u64| (side * a / b).clamp(2, side) as u32;
    let tile = if w >= h {
        (sheet.tile_width, fit(h, w))
    } else {
        (fit(w, h), sheet.tile_width)
    };
    let mut stills = Stills::open(input, limits, Some(tile))?;
    let duration = stills.source.duration_s.max(0.0);
    let mut image = RgbImage::new(tile.0 * sheet.columns, tile.1 * sheet.rows);
    let mut last: Option<RgbImage> = None;
    for i in 0..sheet.tiles() {
        let target = duration * (f64::from(i) + 0.5) / f64::from(sheet.tiles());
        // Past the last frame (a short clip, a container that overstates
        // its duration) the last frame stands for the rest.
        let frame = match stills.at(target, &mut Some)? {
            Some(frame) => frame,
            None => last.clone().ok_or_else(|| no_frame(target))?,
        };
        let (x, y) = (i % sheet.columns * tile.0, i / sheet.columns * tile.1);
        image::imageops::replace(&mut image, &frame, i64::from(x), i64::from(y));
        last = Some(frame);
    }
    Ok(Storyboard {
        image,
        duration_s: duration,
    })
}
