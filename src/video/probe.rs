//! What a video source is, read from its header, and the limits checked
//! before a single frame is decoded.

use std::path::Path;

use ffmpeg_next::codec::packet::side_data::Type as SideData;
use ffmpeg_next::format::context::Input;
use ffmpeg_next::{Rational, codec, media};

use super::{Deadline, VideoError, VideoLimits};

/// The facts about a source the engine works from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub video_stream: usize,
    pub audio_stream: Option<usize>,
    /// The stored frame size, before rotation.
    pub width: u32,
    pub height: u32,
    /// Quarter turns clockwise that make the picture upright (phone video).
    pub quarter_turns: u8,
    /// Seconds; 0 when the container does not say.
    pub duration_s: f64,
    pub frame_rate: Rational,
    pub time_base: Rational,
    pub codec: String,
}

impl Source {
    /// The picture's size as shown: square pixels, upright.
    pub fn upright(&self) -> (u32, u32) {
        if self.quarter_turns % 2 == 1 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Frames the header promises (duration × rate), for the frame limit.
    pub fn frames_expected(&self) -> u64 {
        let rate = f64::from(self.frame_rate);
        if rate.is_finite() && rate > 0.0 {
            (self.duration_s * rate).ceil() as u64
        } else {
            0
        }
    }
}

/// Opens `path` (interruptible at the deadline; an allowed container
/// only, see [`super::input`]) and checks the limits.
pub fn open(path: &Path, limits: &VideoLimits, deadline: Deadline) -> Result<(Input, Source), VideoError> {
    let input = super::input::open(path, deadline)?;
    let source = describe(&input)?;
    check(&source, limits)?;
    Ok((input, source))
}

fn describe(input: &Input) -> Result<Source, VideoError> {
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| VideoError::NotVideo("the file has no video stream".into()))?;
    let params = stream.parameters();
    let id = params.id();
    if codec::decoder::find(id).is_none() {
        return Err(VideoError::UnsupportedCodec(format!("{id:?}").to_lowercase()));
    }
    let context = codec::context::Context::from_parameters(params).map_err(VideoError::corrupt("stream parameters"))?;
    let video = context.decoder().video().map_err(VideoError::corrupt("video stream"))?;
    let (width, height) = (video.width(), video.height());
    if width == 0 || height == 0 {
        return Err(VideoError::Corrupt("the video stream has no frame size".into()));
    }
    let duration_s = if input.duration() > 0 {
        input.duration() as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE)
    } else {
        (stream.duration().max(0) as f64) * f64::from(stream.time_base())
    };
    let audio_stream = input.streams().best(media::Type::Audio).map(|s| s.index());
    Ok(Source {
        video_stream: stream.index(),
        audio_stream,
        width,
        height,
        quarter_turns: quarter_turns(&stream),
        duration_s,
        frame_rate: stream.avg_frame_rate(),
        time_base: stream.time_base(),
        codec: format!("{id:?}").to_lowercase(),
    })
}

fn check(source: &Source, limits: &VideoLimits) -> Result<(), VideoError> {
    let pixels = u64::from(source.width) * u64::from(source.height);
    if pixels > limits.max_source_pixels {
        return Err(VideoError::TooLarge {
            what: "source pixels per frame",
            value: pixels,
            max: limits.max_source_pixels,
        });
    }
    if source.duration_s > limits.max_duration_s {
        return Err(VideoError::TooLarge {
            what: "duration in seconds",
            value: source.duration_s.ceil() as u64,
            max: limits.max_duration_s as u64,
        });
    }
    if source.frames_expected() > limits.max_frames {
        return Err(VideoError::TooLarge {
            what: "frame count",
            value: source.frames_expected(),
            max: limits.max_frames,
        });
    }
    Ok(())
}

/// The display matrix's rotation as clockwise quarter turns, as the
/// `ffmpeg` CLI reads it; the old `rotate` tag when there is no matrix.
fn quarter_turns(stream: &ffmpeg_next::format::stream::Stream) -> u8 {
    let matrix = stream
        .side_data()
        .find(|d| d.kind() == SideData::DisplayMatrix)
        .map(|d| d.data().to_vec());
    let degrees_cw = match matrix {
        Some(m) if m.len() >= 36 => {
            let mut matrix = [0i32; 9];
            for (i, v) in matrix.iter_mut().enumerate() {
                *v = i32::from_le_bytes(m[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
            }
            // SAFETY: reads nine i32s from a local array.
            let ccw = unsafe { ffmpeg_next::ffi::av_display_rotation_get(matrix.as_ptr()) };
            if ccw.is_nan() { 0.0 } else { -ccw }
        }
        _ => stream
            .metadata()
            .get("rotate")
            .and_then(|r| r.parse::<f64>().ok())
            .unwrap_or(0.0),
    };
    ((degrees_cw / 90.0).round() as i64).rem_euclid(4) as u8
}
