//! The video engine's side (`rendition-video-engine`): posters and proxies
//! made by FFmpeg from the source the worker placed in the engine's own
//! scratch directory ([`wire::VIDEO_SOURCE`]); FFmpeg opens files by name,
//! and Landlock lets the engine open nothing else. Named only by that
//! program's `main`, so neither the image engine nor the worker maps an
//! FFmpeg library.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use super::confine::Confinement;
use super::engine::{Reply, attach_logo, caught, rendered_reply};
use super::wire::{self, Answer, Request};
use crate::error::panic_message;
use crate::rendition::{self, RenderError, decode::Picture};
use crate::video::{self, VideoLimits};

/// The [`super::engine::Extra`] of the video engine.
pub fn answer(
    request: Request,
    fds: &mut std::vec::IntoIter<OwnedFd>,
    socket: &UnixStream,
    confinement: &Confinement,
) -> Reply {
    let scratch = PathBuf::from(std::env::var_os("TMPDIR").unwrap_or_default());
    let source = scratch.join(wire::VIDEO_SOURCE);
    #[cfg(feature = "engine-test-requests")]
    if let Ok(file) = std::fs::File::open(&source) {
        super::attempts::crash_on_marked(&file);
    }
    match request {
        Request::Poster {
            mut spec,
            limits,
            video,
            memory,
            logo,
        } => {
            let made = attach_logo(spec.watermark.as_mut(), logo.zip(fds.next())).and_then(|()| {
                confinement.within_cpu(memory, cpu_seconds(&video), || {
                    caught(|| {
                        let frame = video::poster(&source, None, &video).map_err(refusal)?;
                        let picture = Picture::new(image::DynamicImage::ImageRgb8(frame));
                        rendition::render_picture(&picture, &spec, &limits)
                    })
                })
            });
            rendered_reply(made)
        }
        Request::Storyboard {
            mut spec,
            sheet,
            limits,
            video,
            memory,
            logo,
        } => {
            let mut duration_s = 0.0;
            let made = attach_logo(spec.watermark.as_mut(), logo.zip(fds.next())).and_then(|()| {
                confinement.within_cpu(memory, cpu_seconds(&video), || {
                    caught(|| {
                        let board = video::storyboard(&source, sheet, &video).map_err(refusal)?;
                        duration_s = board.duration_s;
                        let picture = Picture::new(image::DynamicImage::ImageRgb8(board.image));
                        rendition::render_picture(&picture, &spec, &limits)
                    })
                })
            });
            match rendered_reply(made) {
                (Answer::Rendered(outputs), file) => (Answer::Storyboard { outputs, duration_s }, file),
                refused => refused,
            }
        }
        Request::Proxy {
            mut spec,
            video,
            memory,
            logo,
        } => {
            if let Err(e) = attach_logo(spec.watermark.as_mut(), logo.zip(fds.next())) {
                return (Answer::refused(&e), None);
            }
            // Progress goes out as it comes; a worker that stopped reading
            // ends the transcode at its deadline like any other.
            let mut report = |p: video::Progress| {
                let _ = wire::send(socket, &Answer::Progress(p), &[]);
            };
            let output = scratch.join(wire::PROXY_OUTPUT);
            #[cfg(feature = "engine-test-requests")]
            if super::attempts::floods_progress(&source) {
                let lie = video::Progress {
                    percent: 1e30,
                    frames: u64::MAX,
                    fps: -5.0,
                };
                for _ in 0..super::attempts::PROGRESS_FLOOD {
                    let _ = wire::send(socket, &Answer::Progress(lie), &[]);
                }
                return (Answer::refused(&RenderError::CorruptInput("flooded".into())), None);
            }
            #[cfg(feature = "engine-test-requests")]
            if let Some(target) = super::attempts::linked_proxy_target(&source) {
                let linked = std::os::unix::fs::symlink(target, &output);
                eprintln!("engine: linked the proxy: {linked:?}");
                let lie = Answer::Transcoded {
                    width: 2,
                    height: 2,
                    frames: 1,
                };
                return (lie, None);
            }
            let done = confinement.within_cpu(memory, cpu_seconds(&video), || {
                catch_unwind(AssertUnwindSafe(|| {
                    video::transcode(&source, &output, &spec, &video, &mut report)
                }))
            });
            let answer = match done {
                Ok(Ok(t)) => Answer::Transcoded {
                    width: t.width,
                    height: t.height,
                    frames: t.frames,
                },
                Ok(Err(e)) => Answer::refused(&e),
                Err(panic) => Answer::refused(&RenderError::Answered {
                    code: crate::error::ErrorCode::EngineError,
                    message: format!("the engine panicked: {}", panic_message(&*panic)),
                }),
            };
            (answer, None)
        }
        other => super::engine::images_only(other, fds, socket, confinement),
    }
}

/// A video job's CPU: its deadline on every core (FFmpeg's and x264's
/// threads), a backstop behind the deadline itself.
fn cpu_seconds(video: &VideoLimits) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    video.deadline.as_secs().saturating_mul(cores).saturating_add(60)
}

/// A video refusal as the image rules' error, its code kept.
fn refusal(e: video::VideoError) -> RenderError {
    RenderError::Answered {
        code: crate::error::Coded::code(&e),
        message: e.to_string(),
    }
}
