//! The poster: one upright frame at 10 % of the duration (or a given
//! second), skipping blank frames (black, a fade, a slate of one colour)
//! for up to two seconds. The image engine
//! then sizes, watermarks and encodes it under the image rules.

use std::path::Path;

use ffmpeg_next::{Packet, frame};
use image::RgbImage;

use super::probe::{self, Source};
use super::{Deadline, VideoError, VideoLimits, graph};

/// How many frames past the target a poster may skip to avoid black.
const BLACK_SKIP_FRAMES: usize = 60;

/// The still at `at_s` seconds (default: 10 % of the duration).
pub fn poster(input: &Path, at_s: Option<f64>, limits: &VideoLimits) -> Result<RgbImage, VideoError> {
    let deadline = Deadline::after(limits.deadline);
    let (mut ictx, source) = probe::open(input, limits, deadline)?;
    let target = at_s
        .unwrap_or(source.duration_s * 0.1)
        .clamp(0.0, (source.duration_s - 0.05).max(0.0));
    let micros = (target * 1e6) as i64;
    if micros > 0 {
        // A failed seek only means decoding from the start.
        let _ = ictx.seek(micros, ..micros);
    }
    let stream = ictx.stream(source.video_stream).expect("probe found it");
    let context = ffmpeg_next::codec::context::Context::from_parameters(stream.parameters())
        .map_err(VideoError::corrupt("stream parameters"))?;
    let mut decoder = context
        .decoder()
        .video()
        .map_err(VideoError::corrupt("video decoder"))?;
    let mut graph = graph::video(&decoder, &source, source.upright(), "rgb24")?;
    let mut picker = Picker::new(target, &source);
    let mut decoded = frame::Video::empty();
    let mut rgb = frame::Video::empty();
    let mut ended = false;
    while !ended {
        deadline.check()?;
        // A fresh packet each time: a reused one leaks (see transcode).
        let mut packet = Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) if packet.stream() != source.video_stream => continue,
            Ok(()) => decoder.send_packet(&packet),
            Err(ffmpeg_next::Error::Eof) => {
                ended = true;
                decoder.send_eof()
            }
            Err(e) => return Err(VideoError::Corrupt(format!("reading the source: {e}"))),
        }
        .map_err(VideoError::corrupt("decoding video"))?;
        while decoder.receive_frame(&mut decoded).is_ok() {
            let at = decoded.timestamp().unwrap_or(0) as f64 * f64::from(source.time_base);
            if at < picker.target {
                continue;
            }
            let pts = decoded.timestamp();
            decoded.set_pts(pts);
            graph::push(&mut graph, &decoded)?;
            while graph::pull(&mut graph, &mut rgb) {
                if let Some(done) = picker.offer(to_image(&rgb)) {
                    return Ok(done);
                }
            }
        }
    }
    picker
        .fallback
        .ok_or_else(|| VideoError::Corrupt(format!("no frame could be decoded at or after {target:.2} s")))
}

/// Keeps the first frame at the target, and moves on while it is black.
struct Picker {
    target: f64,
    fallback: Option<RgbImage>,
    seen: usize,
}

impl Picker {
    fn new(target: f64, source: &Source) -> Picker {
        // Half a frame early still counts as "at the target".
        let half_frame = 0.5 / f64::from(source.frame_rate).max(1.0);
        Picker {
            target: target - half_frame,
            fallback: None,
            seen: 0,
        }
    }

    fn offer(&mut self, image: RgbImage) -> Option<RgbImage> {
        self.seen += 1;
        if !is_blank(&image) || self.seen > BLACK_SKIP_FRAMES {
            return Some(self.fallback.take().filter(|_| is_blank(&image)).unwrap_or(image));
        }
        self.fallback.get_or_insert(image);
        None
    }
}

/// Not a picture: dark almost everywhere (black, a fade), or one flat
/// colour (a white or grey slate: the luma's standard deviation under
/// [`FLAT_DEVIATION`]). The score of each candidate frame, read from 4 096
/// pixels at most.
fn is_blank(image: &RgbImage) -> bool {
    let step = (image.len() / 3 / 4096).max(1);
    let samples: Vec<[u8; 3]> = image.pixels().step_by(step).map(|p| p.0).collect();
    let n = samples.len().max(1) as f64;
    let bright = samples.iter().filter(|p| p.iter().any(|&v| v > 40)).count();
    let luma: Vec<f64> = samples
        .iter()
        .map(|[r, g, b]| 0.299 * f64::from(*r) + 0.587 * f64::from(*g) + 0.114 * f64::from(*b))
        .collect();
    let mean = luma.iter().sum::<f64>() / n;
    let deviation = (luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt();
    bright * 50 < samples.len() || deviation < FLAT_DEVIATION
}

/// Below this, a frame is one flat colour (8-bit luma levels).
const FLAT_DEVIATION: f64 = 4.0;

fn to_image(frame: &frame::Video) -> RgbImage {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.stride(0);
    let data = frame.data(0);
    let mut pixels = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        pixels.extend_from_slice(&data[y * stride..y * stride + w * 3]);
    }
    RgbImage::from_raw(w as u32, h as u32, pixels).expect("w × h × 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_fades_and_flat_slates_are_blank_pictures_are_not() {
        let flat = |v: u8| RgbImage::from_pixel(320, 180, image::Rgb([v, v, v]));
        assert!(is_blank(&flat(0)) && is_blank(&flat(12)), "black and a fade");
        assert!(is_blank(&flat(255)) && is_blank(&flat(128)), "white and grey slates");
        let gradient = RgbImage::from_fn(320, 180, |x, y| image::Rgb([(x % 256) as u8, (y * 2) as u8, 90]));
        assert!(!is_blank(&gradient));
        // A dark scene with some light in it is a picture.
        let night = RgbImage::from_fn(320, 180, |x, _| {
            image::Rgb(if x % 10 < 3 { [200, 180, 90] } else { [5, 5, 10] })
        });
        assert!(!is_blank(&night));
    }
}
