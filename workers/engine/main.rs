//! `rendition-engine`: an image engine process, started by a worker or
//! `rendition render` (docs/security.md#engine-processes), never by hand.
//! Its own program so that it maps no FFmpeg library: the image engine
//! needs none, and every library mapped is memory and start-up time.

fn main() -> std::process::ExitCode {
    rendition::isolated::engine::main(rendition::isolated::engine::images_only, false)
}
