//! Where a `cover` crop goes when the asset has no focal point: the most
//! interesting window of the picture, as libvips' `interesting=attention`
//! looks for it — edges, saturated colour and skin tones — scored on a
//! copy of at most [`SCORED_EDGE`] px, so it costs the same for any size.

use image::DynamicImage;

/// The long edge of the copy that is scored.
const SCORED_EDGE: u32 = 96;

/// The centre of the window of `region` shape (width ÷ height) that holds
/// the most interest, in ten-thousandths of the picture's width and
/// height; the picture's centre when nothing stands out.
pub fn focus(picture: &DynamicImage, aspect: f64) -> [u16; 2] {
    let small = picture.thumbnail(SCORED_EDGE, SCORED_EDGE).to_rgb8();
    let (w, h) = small.dimensions();
    if w < 3 || h < 3 {
        return [5000, 5000];
    }
    let luma = |x: u32, y: u32| {
        let [r, g, b] = small.get_pixel(x, y).0.map(i32::from);
        (r * 299 + g * 587 + b * 114) / 1000
    };
    // A summed-area table of the score, one row and column of zeros first.
    let (sw, sh) = (w as usize + 1, h as usize + 1);
    let mut sum = vec![0i64; sw * sh];
    for y in 0..h {
        for x in 0..w {
            let edge = (luma(x.saturating_sub(1), y) - luma((x + 1).min(w - 1), y)).abs()
                + (luma(x, y.saturating_sub(1)) - luma(x, (y + 1).min(h - 1))).abs();
            let [r, g, b] = small.get_pixel(x, y).0.map(i32::from);
            let saturation = r.max(g).max(b) - r.min(g).min(b);
            let skin = r > 95 && g > 40 && b > 20 && r > g && r > b && (r - g).abs() > 15;
            let score = i64::from(edge + saturation / 2 + if skin { 64 } else { 0 });
            let (i, j) = (y as usize + 1, x as usize + 1);
            sum[i * sw + j] = score + sum[(i - 1) * sw + j] + sum[i * sw + j - 1] - sum[(i - 1) * sw + j - 1];
        }
    }
    // The largest window of the crop's shape, at every position.
    let (fw, fh) = (f64::from(w), f64::from(h));
    let (cw, ch) = if fw / fh > aspect {
        (fh * aspect, fh)
    } else {
        (fw, fw / aspect)
    };
    let (cw, ch) = (
        (cw.round() as usize).clamp(1, w as usize),
        (ch.round() as usize).clamp(1, h as usize),
    );
    let window = |x: usize, y: usize| {
        sum[(y + ch) * sw + x + cw] - sum[y * sw + x + cw] - sum[(y + ch) * sw + x] + sum[y * sw + x]
    };
    let centre = ((w as usize - cw) / 2, (h as usize - ch) / 2);
    let mut best = (window(centre.0, centre.1), centre);
    for y in 0..=(h as usize - ch) {
        for x in 0..=(w as usize - cw) {
            let s = window(x, y);
            // Ties keep the window nearer the centre (found first: the centre).
            if s > best.0 {
                best = (s, (x, y));
            }
        }
    }
    let (x, y) = best.1;
    let at = |start: usize, len: usize, total: u32| {
        ((start as f64 + len as f64 / 2.0) / f64::from(total) * 1e4).round() as u16
    };
    [at(x, cw, w), at(y, ch, h)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn a_plain_picture_is_cropped_in_its_centre() {
        let grey = DynamicImage::ImageRgb8(RgbImage::from_pixel(400, 200, Rgb([128, 128, 128])));
        assert_eq!(focus(&grey, 1.0), [5000, 5000]);
    }

    #[test]
    fn a_coloured_subject_draws_the_crop() {
        let mut picture = RgbImage::from_pixel(800, 300, Rgb([90, 90, 90]));
        for y in 100..200 {
            for x in 650..750 {
                picture.put_pixel(x, y, Rgb([30, 160, 220]));
            }
        }
        let [x, _] = focus(&DynamicImage::ImageRgb8(picture), 1.0);
        // The square window (300 of 800 px wide) holds the subject.
        let left = f64::from(x) / 1e4 * 800.0 - 150.0;
        assert!(left <= 650.0 && left + 300.0 >= 750.0, "{x}");
    }
}
