//! `rendition-engine`: an engine process, started by a worker or
//! `rendition render` (docs/security.md#engine-processes), never by hand.
//! Its own program so that it maps no FFmpeg library: the image engine
//! needs none, and every library mapped is memory and start-up time.

fn main() -> std::process::ExitCode {
    // No other process of its user (another engine) may read its memory.
    if let Err(e) = rendition::rendition::harden_worker() {
        eprintln!("engine: could not make the process non-dumpable: {e}");
        return std::process::ExitCode::from(2);
    }
    let threads = std::env::args().nth(1).and_then(|t| t.parse().ok()).unwrap_or(1);
    match rendition::isolated::engine::run(threads) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
