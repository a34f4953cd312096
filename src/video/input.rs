//! The one way FFmpeg opens a source: a local file, read with a demuxer
//! from [`DEMUXERS`]. A playlist, a manifest or a script names other files
//! (or itself) and FFmpeg follows it: another asset's video delivered, or
//! a recursion that overflows the thread's stack and aborts the worker.
//! So the demuxer FFmpeg's probe picks is checked before the source is
//! opened with it; FFmpeg is given the same list (`format_whitelist`, which
//! nested demuxers inherit) and the `file` protocol alone; and the demuxer
//! it opened with is checked once more.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use ffmpeg_next::format::context::Input;
use ffmpeg_next::{Dictionary, Error, ffi, format};

use super::{Deadline, VideoError};

/// The demuxers a source may be read with: containers that carry their
/// media inside them. Each is a name from FFmpeg 5.1's `ffmpeg -demuxers`,
/// matched against every name a demuxer answers to ("mov" admits
/// "mov,mp4,m4a,3gp,3g2,mj2", "matroska" admits "matroska,webm").
///
/// - `mov`: QuickTime and ISO media (mov, mp4, m4v, 3gp, mj2): phone and
///   camera video, ProRes masters. Its data references to other files are
///   off by default and turned off again in [`options`].
/// - `matroska`: Matroska and WebM.
/// - `avi`: AVI, from older cameras and DV capture.
/// - `asf`: Windows Media (wmv).
/// - `mpegts`: MPEG transport streams: broadcast, AVCHD (mts, m2ts).
/// - `mpeg`: MPEG program streams (mpg, vob, mod).
/// - `mxf`: MXF, broadcast and camera masters.
/// - `dv`: raw DV from tape capture.
/// - `flv`: Flash video, old web exports.
/// - `ogg`: Ogg (Theora).
/// - `wav`, `aiff`, `mp3`, `flac`, `aac` (ADTS): audio. A video job finds
///   no video stream in them and says so, rather than calling them refused.
///
/// Left out on purpose: every demuxer that opens other files or URLs
/// (`hls`, `dash`, `concat`, `imf`, `webm_dash_manifest`, `sdp`, `rtsp`,
/// `image2`, `vobsub`…), and the raw streams, images, subtitles and text
/// formats that no video original is.
pub const DEMUXERS: &[&str] = &[
    "mov", "matroska", "avi", "asf", "mpegts", "mpeg", "mxf", "dv", "flv", "ogg", "wav", "aiff", "mp3", "flac", "aac",
];

/// Opens the file at `path` for reading (interruptible at the deadline),
/// with an allowed demuxer only.
pub(crate) fn open(path: &Path, deadline: Deadline) -> Result<Input, VideoError> {
    super::init();
    let url = path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or_else(|| VideoError::Engine(format!("FFmpeg cannot be given the path {}", path.display())))?;
    let demuxer = demuxer_for(path, &url)?;
    allowed(&demuxer)?;
    let input = format::input_with_interrupt_and_dictionary(path, move || deadline.passed(), options())
        .map_err(|e| deadline.check().err().unwrap_or_else(|| unreadable(path, e)))?;
    allowed(input.format().name())?;
    Ok(input)
}

/// What every open is told: the allowed demuxers, the `file` protocol
/// alone (no `data:`, `subfile,`, `crypto:` or network URL, even nested),
/// and QuickTime's references to other files off.
fn options() -> Dictionary<'static> {
    let mut options = Dictionary::new();
    options.set("format_whitelist", &DEMUXERS.join(","));
    options.set("protocol_whitelist", "file");
    options.set("enable_drefs", "0");
    options.set("use_absolute_path", "0");
    options
}

/// Refuses a demuxer (`name` as FFmpeg lists it, e.g. "hls") not allowed.
fn allowed(name: &str) -> Result<(), VideoError> {
    if name.split(',').any(|n| DEMUXERS.contains(&n)) {
        Ok(())
    } else {
        Err(VideoError::NotAllowed(name.to_string()))
    }
}

/// The demuxer FFmpeg's probe picks for the file at `path` (`url`), by
/// the probe `avformat_open_input` runs itself, read through the `file`
/// protocol only: a `data:` or `subfile,` path is not opened at all.
fn demuxer_for(path: &Path, url: &CStr) -> Result<String, VideoError> {
    let mut options = Dictionary::new();
    options.set("protocol_whitelist", "file");
    // SAFETY: `io` is opened and closed here; the options are handed to
    // FFmpeg and taken back (what it did not use) to be freed; the format
    // found is a static table entry, read before returning.
    unsafe {
        let mut io = ptr::null_mut();
        let mut dict = options.disown();
        let opened = ffi::avio_open2(&mut io, url.as_ptr(), ffi::AVIO_FLAG_READ, ptr::null(), &mut dict);
        drop(Dictionary::own(dict));
        if opened < 0 {
            let e = Error::from(opened);
            return Err(VideoError::NotVideo(format!("not a local file FFmpeg may open ({e})")));
        }
        let mut found = ptr::null();
        let probed = ffi::av_probe_input_buffer2(io, &mut found, url.as_ptr(), ptr::null_mut(), 0, 0);
        ffi::avio_closep(&mut io);
        if probed < 0 {
            return Err(unreadable(path, Error::from(probed)));
        }
        if found.is_null() {
            return Err(unreadable(path, Error::InvalidData));
        }
        Ok(format::Input::wrap(found as *mut _).name().to_string())
    }
}

/// A file FFmpeg cannot open or read: damaged when it starts like a
/// container we know, else not a video at all.
fn unreadable(path: &Path, e: Error) -> VideoError {
    if looks_like_container(path) {
        VideoError::Corrupt(format!("the container cannot be read: {e}"))
    } else {
        VideoError::NotVideo(format!("not a video file FFmpeg recognises ({e})"))
    }
}

/// Whether the file starts like a container we know (MP4/MOV, Matroska/WebM,
/// AVI, MPEG-TS/PS): then an unreadable file is damaged, not the wrong kind.
fn looks_like_container(path: &Path) -> bool {
    let mut head = [0u8; 12];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)) else {
        return false;
    };
    let head = &head[..n];
    head.get(4..8) == Some(b"ftyp")
        || head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || head.starts_with(b"RIFF")
        || head.first() == Some(&0x47)
        || head.starts_with(&[0, 0, 1, 0xBA])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_demuxer_is_one_ffmpeg_has_and_none_follows_references() {
        super::super::init();
        for name in DEMUXERS {
            let demuxer = CString::new(*name).unwrap();
            // SAFETY: a lookup in FFmpeg's static table by a C string.
            let found = unsafe { ffi::av_find_input_format(demuxer.as_ptr()) };
            assert!(!found.is_null(), "FFmpeg has no demuxer {name}");
        }
        for name in [
            "hls",
            "dash",
            "concat",
            "imf",
            "webm_dash_manifest",
            "sdp",
            "image2",
            "vobsub",
        ] {
            assert!(allowed(name).is_err(), "{name}");
        }
        assert!(allowed("mov,mp4,m4a,3gp,3g2,mj2").is_ok() && allowed("matroska,webm").is_ok());
    }

    /// The second line holds without the first: FFmpeg itself, given the
    /// options, refuses a playlist and a `subfile,` path.
    #[test]
    fn the_options_alone_refuse_a_playlist_and_another_protocol() {
        super::super::init();
        let clip = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/originals/video/clip.mp4");
        let dir = tempfile::tempdir().unwrap();
        let playlist = dir.path().join("source");
        let hls = format!("#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\n{clip}\n#EXT-X-ENDLIST\n");
        std::fs::write(&playlist, hls).unwrap();
        let subfile = format!("subfile,,start,0,end,0,,:{clip}");
        for url in [playlist.to_str().unwrap(), &subfile] {
            assert!(format::input(url).is_ok(), "FFmpeg's defaults open {url}");
            assert!(format::input_with_dictionary(url, options()).is_err(), "{url}");
        }
        assert!(format::input_with_dictionary(clip, options()).is_ok());
    }
}
