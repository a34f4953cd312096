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
    let mut stills = Stills::open(input, limits, None)?;
    let duration = stills.source.duration_s;
    let target = at_s.unwrap_or(duration * 0.1).clamp(0.0, (duration - 0.05).max(0.0));
    let mut picker = Picker::default();
    stills
        .at(target, &mut |image| picker.offer(image))?
        .map_or_else(|| picker.fallback.take().ok_or_else(|| no_frame(target)), Ok)
}

pub(super) fn no_frame(target: f64) -> VideoError {
    VideoError::Corrupt(format!("no frame could be decoded at or after {target:.2} s"))
}

/// Frames of one source, upright in RGB at one size, taken at times in
/// increasing order: each a seek to the keyframe before it, then decoding
/// up to it (the source is read, never held).
pub(super) struct Stills {
    ictx: ffmpeg_next::format::context::Input,
    pub(super) source: Source,
    decoder: ffmpeg_next::decoder::Video,
    graph: ffmpeg_next::filter::Graph,
    deadline: Deadline,
}

impl Stills {
    /// The source at `input`, its frames scaled to `size` (default: its
    /// own upright size).
    pub(super) fn open(input: &Path, limits: &VideoLimits, size: Option<(u32, u32)>) -> Result<Stills, VideoError> {
        let deadline = Deadline::after(limits.deadline);
        let (ictx, source) = probe::open(input, limits, deadline)?;
        let stream = ictx.stream(source.video_stream).expect("probe found it");
        let context = ffmpeg_next::codec::context::Context::from_parameters(stream.parameters())
            .map_err(VideoError::corrupt("stream parameters"))?;
        let decoder = context
            .decoder()
            .video()
            .map_err(VideoError::corrupt("video decoder"))?;
        let graph = graph::video(&decoder, &source, size.unwrap_or(source.upright()), "rgb24")?;
        Ok(Stills {
            ictx,
            source,
            decoder,
            graph,
            deadline,
        })
    }

    /// Frames from `target` on, offered to `take` until it keeps one;
    /// `None` when the stream ends first.
    pub(super) fn at(
        &mut self,
        target: f64,
        take: &mut dyn FnMut(RgbImage) -> Option<RgbImage>,
    ) -> Result<Option<RgbImage>, VideoError> {
        let micros = (target * 1e6) as i64;
        if micros > 0 {
            // A failed seek only means decoding from the start.
            let _ = self.ictx.seek(micros, ..micros);
        }
        self.decoder.flush();
        let early = target - 0.5 / f64::from(self.source.frame_rate).max(1.0);
        let (mut decoded, mut rgb) = (frame::Video::empty(), frame::Video::empty());
        let mut ended = false;
        while !ended {
            self.deadline.check()?;
            // A fresh packet each time: a reused one leaks (see transcode).
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) if packet.stream() != self.source.video_stream => continue,
                Ok(()) => self.decoder.send_packet(&packet),
                Err(ffmpeg_next::Error::Eof) => {
                    ended = true;
                    self.decoder.send_eof()
                }
                Err(e) => return Err(VideoError::Corrupt(format!("reading the source: {e}"))),
            }
            .map_err(VideoError::corrupt("decoding video"))?;
            while self.decoder.receive_frame(&mut decoded).is_ok() {
                let at = decoded.timestamp().unwrap_or(0) as f64 * f64::from(self.source.time_base);
                if at < early {
                    continue;
                }
                let pts = decoded.timestamp();
                decoded.set_pts(pts);
                graph::push(&mut self.graph, &decoded)?;
                while graph::pull(&mut self.graph, &mut rgb) {
                    if let Some(done) = take(to_image(&rgb)) {
                        return Ok(Some(done));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Keeps the first frame at the target, and moves on while it is black.
#[derive(Default)]
struct Picker {
    fallback: Option<RgbImage>,
    seen: usize,
}

impl Picker {
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

pub(super) fn to_image(frame: &frame::Video) -> RgbImage {
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
