//! FFmpeg filter graphs: frames in as decoded, out as the encoder wants
//! them. Video: turned upright, scaled, yuv420p (or rgb24 for posters).
//! Audio: resampled to stereo float planar 48 kHz in AAC-sized frames.

use ffmpeg_next::filter::Graph;
use ffmpeg_next::util::format::{Sample, sample};
use ffmpeg_next::{ChannelLayout, Rational, codec, filter};

use super::VideoError;
use super::probe::Source;

/// The sample rate and layout of every audio track we write.
pub const AUDIO_RATE: u32 = 48_000;

/// Decoded frames of `source` → upright, `width` × `height`, in the
/// pixel format FFmpeg calls `pixel` (`yuv420p`, `rgb24`).
pub fn video(
    decoder: &codec::decoder::Video,
    source: &Source,
    (width, height): (u32, u32),
    pixel: &str,
) -> Result<Graph, VideoError> {
    let mut graph = Graph::new();
    let sar = decoder.aspect_ratio();
    let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
        sar
    } else {
        Rational(1, 1)
    };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        decoder.width(),
        decoder.height(),
        ffmpeg_next::ffi::AVPixelFormat::from(decoder.format()) as i32,
        source.time_base.numerator(),
        source.time_base.denominator().max(1),
        sar.numerator(),
        sar.denominator()
    );
    let turn = match source.quarter_turns {
        1 => "transpose=clock,",
        2 => "hflip,vflip,",
        3 => "transpose=cclock,",
        _ => "",
    };
    let spec = format!("{turn}scale={width}:{height}:flags=bicubic,format={pixel},setsar=1");
    add(&mut graph, "buffer", "in", &args)?;
    add(&mut graph, "buffersink", "out", "")?;
    connect(graph, &spec)
}

/// Decoded audio → what the AAC encoder takes, `frame_size` samples a frame.
pub fn audio(decoder: &codec::decoder::Audio, frame_size: u32) -> Result<Graph, VideoError> {
    let mut graph = Graph::new();
    let layout = match decoder.channel_layout() {
        l if l.bits() != 0 => l,
        _ => ChannelLayout::default(i32::from(decoder.channels().max(1))),
    };
    let args = format!(
        "time_base=1/{rate}:sample_rate={rate}:sample_fmt={}:channel_layout=0x{:x}",
        decoder.format().name(),
        layout.bits(),
        rate = decoder.rate().max(1),
    );
    add(&mut graph, "abuffer", "in", &args)?;
    let mut out = add(&mut graph, "abuffersink", "out", "")?;
    out.set_sample_format(Sample::F32(sample::Type::Planar));
    out.set_channel_layout(ChannelLayout::STEREO);
    out.set_sample_rate(AUDIO_RATE);
    let spec = format!("aresample={AUDIO_RATE}");
    let mut graph = connect(graph, &spec)?;
    graph
        .get("out")
        .expect("the sink was added")
        .sink()
        .set_frame_size(frame_size);
    Ok(graph)
}

fn add(graph: &mut Graph, kind: &str, name: &str, args: &str) -> Result<filter::Context, VideoError> {
    let filter = filter::find(kind).ok_or_else(|| VideoError::Engine(format!("FFmpeg lacks the {kind} filter")))?;
    graph.add(&filter, name, args).map_err(VideoError::engine(kind))
}

fn connect(mut graph: Graph, spec: &str) -> Result<Graph, VideoError> {
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(spec))
        .map_err(VideoError::engine("filter graph"))?;
    graph.validate().map_err(VideoError::engine("filter graph"))?;
    Ok(graph)
}

/// Hands a decoded frame to the graph's input.
pub fn push(graph: &mut Graph, frame: &ffmpeg_next::Frame) -> Result<(), VideoError> {
    let mut input = graph.get("in").expect("the graph has an input");
    input.source().add(frame).map_err(VideoError::engine("filter input"))
}

/// The graph's next output frame into `frame`; false when it has none yet.
pub fn pull(graph: &mut Graph, frame: &mut ffmpeg_next::Frame) -> bool {
    let mut output = graph.get("out").expect("the graph has an output");
    output.sink().frame(frame).is_ok()
}

/// Tells the graph's input there are no more frames.
pub fn finish(graph: &mut Graph) -> Result<(), VideoError> {
    let mut input = graph.get("in").expect("the graph has an input");
    input.source().flush().map_err(VideoError::engine("filter input"))
}
