//! The proxy: decode → upright → scale to the decided height (even sizes,
//! never upscaled) → watermark → H.264 yuv420p + AAC → MP4 with the index
//! in front (fast start).

use std::path::Path;
use std::time::Instant;

use ffmpeg_next::codec::{self, decoder, encoder};
use ffmpeg_next::filter::Graph;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::util::format::{Pixel, Sample, sample};
use ffmpeg_next::{ChannelLayout, Dictionary, Packet, Rational, Rescale, format, frame, picture};
use sha2::{Digest, Sha256};

use super::overlay::Overlay;
use super::probe::{self, Source};
use super::{Deadline, Progress, VIDEO_ENGINE_VERSION, VideoError, VideoLimits, graph};
use crate::rendition::WatermarkSpec;

/// x264 settings for proxies: quick to make, small, good enough to review.
pub const X264_PRESET: &str = "veryfast";
pub const X264_CRF: u32 = 23;
pub const AAC_BIT_RATE: usize = 128_000;

/// What to make of one video source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProxySpec {
    /// At most this high; `None` keeps the source's height.
    pub max_height: Option<u32>,
    pub watermark: Option<WatermarkSpec>,
    /// An audio proxy instead: the source's audio alone, AAC at this many
    /// kb/s, in an MP4 (`.m4a`) container (docs/contract.md#audio-proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_kbps: Option<u32>,
    /// An audio proxy cut to this many seconds (a preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_seconds: Option<u32>,
}

impl ProxySpec {
    /// `m4a` for an audio proxy, else `mp4`.
    pub fn extension(&self) -> &'static str {
        if self.audio_kbps.is_some() { "m4a" } else { "mp4" }
    }

    pub fn content_type(&self) -> &'static str {
        if self.audio_kbps.is_some() {
            "audio/mp4"
        } else {
            "video/mp4"
        }
    }

    /// The content address: the same source, height and mark give the same key.
    pub fn digest(&self, source_identity: &str) -> String {
        if let Some(kbps) = self.audio_kbps {
            let line = format!(
                "audio-v{VIDEO_ENGINE_VERSION}|{source_identity}|aac{kbps}|s{:?}",
                self.audio_seconds
            );
            return hex::encode(&Sha256::digest(line.as_bytes())[..16]);
        }
        let wm = self.watermark.as_ref().map(WatermarkSpec::identity);
        let line = format!(
            "video-v{VIDEO_ENGINE_VERSION}|{source_identity}|h{:?}|{X264_PRESET}|crf{X264_CRF}|wm:{wm:?}",
            self.max_height
        );
        hex::encode(&Sha256::digest(line.as_bytes())[..16])
    }
}

/// What a transcode made.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcoded {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub has_audio: bool,
    pub watermarked: bool,
}

/// The output size: the decided height at most, the source's aspect, even.
pub fn proxy_size((width, height): (u32, u32), max_height: Option<u32>) -> (u32, u32) {
    let h = max_height.map_or(height, |m| m.min(height));
    let w = (f64::from(width) * f64::from(h) / f64::from(height)).round() as u32;
    let even = |n: u32| (n & !1).max(2);
    (even(w), even(h))
}

/// Transcodes the file at `input` into a proxy MP4 at `output`.
pub fn transcode(
    input: &Path,
    output: &Path,
    spec: &ProxySpec,
    limits: &VideoLimits,
    report: &mut dyn FnMut(Progress),
) -> Result<Transcoded, VideoError> {
    if let Some(kbps) = spec.audio_kbps {
        return audio_proxy(input, output, (kbps, spec.audio_seconds), limits);
    }
    let deadline = Deadline::after(limits.deadline);
    let (mut ictx, source) = probe::open(input, limits, deadline)?;
    let (width, height) = proxy_size(source.upright(), spec.max_height);
    let mut octx = format::output_as(output, "mp4").map_err(VideoError::engine("mp4 output"))?;
    let mut video = VideoLane::new(&ictx, &source, (width, height), spec, &mut octx)?;
    let mut audio = match source.audio_stream {
        Some(index) => Some(AudioLane::new(&ictx, index, &mut octx, AAC_BIT_RATE)?),
        None => None,
    };
    let mut options = Dictionary::new();
    options.set("movflags", "+faststart");
    octx.write_header_with(options)
        .map_err(VideoError::engine("mp4 header"))?;
    let mut meter = Meter::new(&source, limits, report);
    loop {
        deadline.check()?;
        // A fresh packet each time: `av_read_frame` overwrites what it is
        // given without freeing it, so a reused one leaks every packet's
        // data (the whole source, by the end).
        let mut packet = Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ffmpeg_next::Error::Eof) => break,
            Err(_) if deadline.passed() => deadline.check()?,
            Err(e) => return Err(VideoError::Corrupt(format!("reading the source: {e}"))),
        }
        if packet.stream() == source.video_stream {
            video.decode(Some(&packet), &mut octx, &mut meter)?;
        } else if let Some(lane) = audio.as_mut().filter(|a| a.stream == packet.stream()) {
            lane.decode(Some(&packet), &mut octx)?;
        }
    }
    video.decode(None, &mut octx, &mut meter)?;
    if let Some(lane) = audio.as_mut() {
        lane.decode(None, &mut octx)?;
    }
    octx.write_trailer().map_err(VideoError::engine("mp4 trailer"))?;
    meter.check_complete()?;
    Ok(Transcoded {
        width,
        height,
        frames: meter.frames,
        has_audio: audio.is_some(),
        watermarked: spec.watermark.is_some(),
    })
}

/// The audio of the file at `input` alone, AAC at `kbps`, into an MP4 at
/// `output`; its loudness as it was (no filter but the resampler's).
fn audio_proxy(
    input: &Path,
    output: &Path,
    (kbps, seconds): (u32, Option<u32>),
    limits: &VideoLimits,
) -> Result<Transcoded, VideoError> {
    let deadline = Deadline::after(limits.deadline);
    let mut ictx = super::input::open(input, deadline)?;
    let stream = ictx
        .streams()
        .best(ffmpeg_next::media::Type::Audio)
        .ok_or_else(|| VideoError::NotVideo("the file has no audio stream".into()))?;
    let index = stream.index();
    // A preview ends at its length, counted in samples decoded (a file's
    // own timestamps may lie): no packet is read past it.
    let end = seconds.map_or(f64::INFINITY, f64::from);
    let duration_s = ictx.duration().max(0) as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE);
    if duration_s > limits.max_duration_s {
        return Err(VideoError::TooLarge {
            what: "duration (s)",
            value: duration_s as u64,
            max: limits.max_duration_s as u64,
        });
    }
    let mut octx = format::output_as(output, "mp4").map_err(VideoError::engine("m4a output"))?;
    let mut lane = AudioLane::new(&ictx, index, &mut octx, kbps as usize * 1000)?;
    let mut options = Dictionary::new();
    options.set("movflags", "+faststart");
    octx.write_header_with(options)
        .map_err(VideoError::engine("m4a header"))?;
    loop {
        deadline.check()?;
        let mut packet = Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) if packet.stream() == index => {
                lane.decode(Some(&packet), &mut octx)?;
                if lane.decoded_seconds() >= end {
                    break;
                }
            }
            Ok(()) => {}
            Err(ffmpeg_next::Error::Eof) => break,
            Err(e) => return Err(VideoError::Corrupt(format!("reading the source: {e}"))),
        }
    }
    lane.decode(None, &mut octx)?;
    octx.write_trailer().map_err(VideoError::engine("m4a trailer"))?;
    Ok(Transcoded {
        width: 0,
        height: 0,
        frames: 0,
        has_audio: true,
        watermarked: false,
    })
}

/// Writes one encoder's packets into its output stream. `frame_ticks`, the
/// length of a video frame in `time_base`, fills in what x264 leaves out, so
/// the last frame counts toward the duration.
fn drain(
    encoder: &mut encoder::Encoder,
    (time_base, frame_ticks): (Rational, i64),
    index: usize,
    octx: &mut Output,
) -> Result<(), VideoError> {
    let mut packet = Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        if packet.duration() == 0 {
            packet.set_duration(frame_ticks);
        }
        let stream_tb = octx.stream(index).expect("the stream was added").time_base();
        packet.set_stream(index);
        packet.rescale_ts(time_base, stream_tb);
        packet
            .write_interleaved(octx)
            .map_err(VideoError::engine("writing the mp4"))?;
    }
    Ok(())
}

fn decoder_for(stream: &format::stream::Stream) -> Result<decoder::Decoder, VideoError> {
    let mut context = codec::context::Context::from_parameters(stream.parameters())
        .map_err(VideoError::corrupt("stream parameters"))?;
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: 0,
        safe: false,
    });
    Ok(context.decoder())
}

fn global_header(octx: &Output) -> bool {
    octx.format().flags().contains(format::Flags::GLOBAL_HEADER)
}

struct VideoLane {
    decoder: decoder::Video,
    graph: Graph,
    encoder: encoder::Video,
    time_base: Rational,
    frame_ticks: i64,
    overlay: Option<Overlay>,
}

impl VideoLane {
    fn new(
        ictx: &format::context::Input,
        source: &Source,
        size: (u32, u32),
        spec: &ProxySpec,
        octx: &mut Output,
    ) -> Result<VideoLane, VideoError> {
        let stream = ictx.stream(source.video_stream).expect("probe found it");
        let decoder = decoder_for(&stream)?
            .video()
            .map_err(VideoError::corrupt("video decoder"))?;
        let mut graph = graph::video(&decoder, source, size, "yuv420p")?;
        let time_base = graph.get("out").expect("the sink exists").sink().time_base();
        let x264 =
            encoder::find_by_name("libx264").ok_or_else(|| VideoError::Engine("FFmpeg here has no libx264".into()))?;
        let global = global_header(octx);
        let mut stream = octx.add_stream(x264).map_err(VideoError::engine("video stream"))?;
        let mut context = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(VideoError::engine("x264"))?;
        context.set_width(size.0);
        context.set_height(size.1);
        context.set_format(Pixel::YUV420P);
        context.set_time_base(time_base);
        context.set_aspect_ratio(Rational(1, 1));
        let rate = source.frame_rate;
        let mut frame_ticks = 0;
        if rate.numerator() > 0 && rate.denominator() > 0 {
            context.set_frame_rate(Some(rate));
            frame_ticks = 1i64.rescale(rate.invert(), time_base);
        }
        if global {
            context.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut options = Dictionary::new();
        options.set("preset", X264_PRESET);
        options.set("crf", &X264_CRF.to_string());
        let encoder = context
            .open_as_with(x264, options)
            .map_err(VideoError::engine("opening x264"))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(time_base);
        Ok(VideoLane {
            decoder,
            graph,
            encoder,
            time_base,
            frame_ticks,
            overlay: spec.watermark.as_ref().map(|w| Overlay::new(w, size.0, size.1)),
        })
    }

    /// One packet in (`None`: the end), every frame it yields out.
    fn decode(&mut self, packet: Option<&Packet>, octx: &mut Output, meter: &mut Meter) -> Result<(), VideoError> {
        match packet {
            Some(p) => self.decoder.send_packet(p),
            None => self.decoder.send_eof(),
        }
        .map_err(VideoError::corrupt("decoding video"))?;
        let mut decoded = frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let pts = decoded.timestamp();
            decoded.set_pts(pts);
            graph::push(&mut self.graph, &decoded)?;
            self.encode_filtered(octx, meter)?;
        }
        if packet.is_none() {
            graph::finish(&mut self.graph)?;
            self.encode_filtered(octx, meter)?;
            self.encoder.send_eof().map_err(VideoError::engine("x264"))?;
            drain(&mut self.encoder, (self.time_base, self.frame_ticks), 0, octx)?;
        }
        Ok(())
    }

    fn encode_filtered(&mut self, octx: &mut Output, meter: &mut Meter) -> Result<(), VideoError> {
        let mut out = frame::Video::empty();
        while graph::pull(&mut self.graph, &mut out) {
            if let Some(overlay) = &self.overlay {
                // The filter may hand back the decoder's own reference frame.
                // SAFETY: `out` is a valid frame owned here.
                if unsafe { ffmpeg_next::ffi::av_frame_make_writable(out.as_mut_ptr()) } < 0 {
                    return Err(VideoError::Engine("could not copy a frame to draw on".into()));
                }
                overlay.blend(&mut out);
            }
            out.set_kind(picture::Type::None);
            let at = out.pts().unwrap_or(0) as f64 * f64::from(self.time_base);
            meter.frame(at)?;
            self.encoder.send_frame(&out).map_err(VideoError::engine("x264"))?;
            drain(&mut self.encoder, (self.time_base, self.frame_ticks), 0, octx)?;
        }
        Ok(())
    }
}

struct AudioLane {
    /// The output stream it writes (1 beside video, 0 alone).
    out_index: usize,
    /// Samples decoded so far (per channel).
    decoded: u64,
    stream: usize,
    stream_tb: Rational,
    decoder: decoder::Audio,
    graph: Graph,
    encoder: encoder::Audio,
}

impl AudioLane {
    fn new(
        ictx: &format::context::Input,
        index: usize,
        octx: &mut Output,
        bit_rate: usize,
    ) -> Result<AudioLane, VideoError> {
        let input = ictx.stream(index).expect("probe found it");
        if codec::decoder::find(input.parameters().id()).is_none() {
            let id = format!("{:?}", input.parameters().id()).to_lowercase();
            return Err(VideoError::UnsupportedCodec(id));
        }
        let decoder = decoder_for(&input)?
            .audio()
            .map_err(VideoError::corrupt("audio decoder"))?;
        let aac =
            encoder::find(codec::Id::AAC).ok_or_else(|| VideoError::Engine("FFmpeg here has no AAC encoder".into()))?;
        let global = global_header(octx);
        let mut stream = octx.add_stream(aac).map_err(VideoError::engine("audio stream"))?;
        let out_index = stream.index();
        let mut context = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(VideoError::engine("aac"))?;
        context.set_rate(graph::AUDIO_RATE as i32);
        context.set_channel_layout(ChannelLayout::STEREO);
        context.set_channels(2);
        context.set_format(Sample::F32(sample::Type::Planar));
        context.set_bit_rate(bit_rate);
        context.set_time_base(Rational(1, graph::AUDIO_RATE as i32));
        if global {
            context.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = context.open_as(aac).map_err(VideoError::engine("opening aac"))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(Rational(1, graph::AUDIO_RATE as i32));
        let graph = graph::audio(&decoder, encoder.frame_size().max(1))?;
        Ok(AudioLane {
            out_index,
            decoded: 0,
            stream: index,
            stream_tb: input.time_base(),
            decoder,
            graph,
            encoder,
        })
    }

    fn decode(&mut self, packet: Option<&Packet>, octx: &mut Output) -> Result<(), VideoError> {
        match packet {
            Some(p) => self.decoder.send_packet(p),
            None => self.decoder.send_eof(),
        }
        .map_err(VideoError::corrupt("decoding audio"))?;
        let mut decoded = frame::Audio::empty();
        let rate = Rational(1, self.decoder.rate().max(1) as i32);
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            self.decoded += decoded.samples() as u64;
            let pts = decoded.timestamp().map(|t| t.rescale(self.stream_tb, rate));
            decoded.set_pts(pts);
            graph::push(&mut self.graph, &decoded)?;
            self.encode_filtered(octx)?;
        }
        if packet.is_none() {
            graph::finish(&mut self.graph)?;
            self.encode_filtered(octx)?;
            self.encoder.send_eof().map_err(VideoError::engine("aac"))?;
            self.drain(octx)?;
        }
        Ok(())
    }

    /// How much audio has been decoded, in seconds.
    fn decoded_seconds(&self) -> f64 {
        self.decoded as f64 / f64::from(self.decoder.rate().max(1))
    }

    /// The encoder's packets into this lane's output stream.
    fn drain(&mut self, octx: &mut Output) -> Result<(), VideoError> {
        let time_base = Rational(1, graph::AUDIO_RATE as i32);
        drain(&mut self.encoder, (time_base, 0), self.out_index, octx)
    }

    fn encode_filtered(&mut self, octx: &mut Output) -> Result<(), VideoError> {
        let mut out = frame::Audio::empty();
        while graph::pull(&mut self.graph, &mut out) {
            self.encoder.send_frame(&out).map_err(VideoError::engine("aac"))?;
            self.drain(octx)?;
        }
        Ok(())
    }
}

/// Counts frames against the limit and reports progress at the first frame
/// (so a caller sees the work start), then about once a second.
struct Meter<'a> {
    frames: u64,
    last_s: f64,
    duration_s: f64,
    max_frames: u64,
    started: Instant,
    reported: Option<Instant>,
    report: &'a mut dyn FnMut(Progress),
}

impl<'a> Meter<'a> {
    fn new(source: &Source, limits: &VideoLimits, report: &'a mut dyn FnMut(Progress)) -> Meter<'a> {
        Meter {
            frames: 0,
            last_s: 0.0,
            duration_s: source.duration_s,
            max_frames: limits.max_frames,
            started: Instant::now(),
            reported: None,
            report,
        }
    }

    fn frame(&mut self, at_s: f64) -> Result<(), VideoError> {
        self.frames += 1;
        self.last_s = self.last_s.max(at_s);
        if self.frames > self.max_frames {
            return Err(VideoError::TooLarge {
                what: "frame count",
                value: self.frames,
                max: self.max_frames,
            });
        }
        if self.reported.is_none_or(|at| at.elapsed().as_secs_f32() >= 1.0) {
            self.reported = Some(Instant::now());
            let percent = if self.duration_s > 0.0 {
                (self.last_s / self.duration_s * 100.0).clamp(0.0, 100.0) as f32
            } else {
                0.0
            };
            let fps = self.frames as f32 / self.started.elapsed().as_secs_f32().max(1e-3);
            (self.report)(Progress {
                percent,
                frames: self.frames,
                fps,
            });
        }
        Ok(())
    }

    /// A file that ends well before its header says was cut short.
    fn check_complete(&self) -> Result<(), VideoError> {
        if self.frames == 0 {
            return Err(VideoError::Corrupt("no frame could be decoded".into()));
        }
        if self.duration_s > 1.0 && self.last_s + 1.0 < self.duration_s * 0.9 {
            return Err(VideoError::Corrupt(format!(
                "truncated: the frames end at {:.1} s of {:.1} s",
                self.last_s, self.duration_s
            )));
        }
        Ok(())
    }
}
