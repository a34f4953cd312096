//! `rendition-video-engine`: a video engine process (FFmpeg: posters and
//! proxies), started by a worker or `rendition render`
//! (docs/security.md#engine-processes), never by hand. The one program of
//! ours that maps the FFmpeg libraries.

fn main() -> std::process::ExitCode {
    rendition::isolated::engine::main(rendition::isolated::video_engine::answer, true)
}
