//! The worker's side of a video engine: the source placed in the engine's
//! scratch directory (a hard link, not a copy, where the two share a
//! file system), a poster or a proxy asked for, the proxy taken back out
//! and checked. The engine owns that directory and is not trusted with
//! it: nothing here follows a link the engine could have put there.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use super::wire::{Answer, PROXY_OUTPUT, Request, VIDEO_SOURCE};
use super::{Session, logo_file, unexpected};
use crate::rendition::{EngineLimits, RenderError, Rendered, Spec, sandbox_id};
use crate::video::{Progress, ProxySpec, Sheet, VideoLimits};

/// A proxy as the engine made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proxy {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
}

impl Session {
    /// Every size of `spec` from a frame of the video at `source`, under
    /// `memory` bytes.
    pub fn poster(
        &mut self,
        source: &Path,
        spec: &Spec,
        (limits, video): (&EngineLimits, &VideoLimits),
        memory: u64,
    ) -> Result<Vec<Rendered>, RenderError> {
        self.placed(source)?;
        let (logo, logo_file) = logo_file(spec.watermark.as_ref())?;
        let request = Request::Poster {
            spec: spec.clone(),
            limits: *limits,
            video: *video,
            memory,
            logo,
        };
        let fds: Vec<_> = logo_file.iter().map(|f| f.as_fd()).collect();
        let made = self
            .ask(&request, &fds, "poster", deadline(video), &mut |_| {})
            .and_then(|answered| self.outputs(answered, spec, u32::MAX, memory));
        self.clear();
        made
    }

    /// A storyboard's sheet of the video at `source` in every size of
    /// `spec`, and the duration its tiles share, under `memory` bytes.
    pub fn storyboard(
        &mut self,
        source: &Path,
        (spec, sheet): (&Spec, Sheet),
        (limits, video): (&EngineLimits, &VideoLimits),
        memory: u64,
    ) -> Result<(Vec<Rendered>, f64), RenderError> {
        self.placed(source)?;
        let (logo, logo_file) = logo_file(spec.watermark.as_ref())?;
        let request = Request::Storyboard {
            spec: spec.clone(),
            sheet,
            limits: *limits,
            video: *video,
            memory,
            logo,
        };
        let fds: Vec<_> = logo_file.iter().map(|f| f.as_fd()).collect();
        let made = self
            .ask(&request, &fds, "storyboard", deadline(video), &mut |_| {})
            .and_then(|(answer, files)| match answer {
                // A duration past what the limits admit is a lie.
                Answer::Storyboard { outputs, duration_s }
                    if duration_s.is_finite() && (0.0..=video.max_duration_s).contains(&duration_s) =>
                {
                    let rendered = self.outputs((Answer::Rendered(outputs), files), spec, u32::MAX, memory)?;
                    Ok((rendered, duration_s))
                }
                other => {
                    self.discard = true;
                    Err(unexpected(other))
                }
            });
        self.clear();
        made
    }

    /// A proxy of the video at `source`, written to `output` (a new file),
    /// under `memory` bytes; progress reported as the engine sends it.
    pub fn proxy(
        &mut self,
        (source, output): (&Path, &Path),
        spec: &ProxySpec,
        video: &VideoLimits,
        memory: u64,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Proxy, RenderError> {
        self.placed(source)?;
        let made = self.transcode(output, spec, video, memory, on_progress);
        self.clear();
        made
    }

    fn transcode(
        &mut self,
        output: &Path,
        spec: &ProxySpec,
        video: &VideoLimits,
        memory: u64,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Proxy, RenderError> {
        let (logo, logo_file) = logo_file(spec.watermark.as_ref())?;
        let request = Request::Proxy {
            spec: spec.clone(),
            video: *video,
            memory,
            logo,
        };
        let fds: Vec<_> = logo_file.iter().map(|f| f.as_fd()).collect();
        let (answer, _) = self.ask(&request, &fds, "transcoded", deadline(video), on_progress)?;
        let Answer::Transcoded { width, height, frames } = answer else {
            self.discard = true;
            return Err(unexpected(answer));
        };
        let proxy = Proxy { width, height, frames };
        // The engine is done: killed before its file is read, so it cannot
        // change the file while it is copied (and does no other job).
        self.discard = true;
        if let Some(engine) = self.engine.as_mut() {
            let _ = engine.kill();
        }
        self.take_proxy(output, spec, proxy)?;
        Ok(proxy)
    }

    /// The engine's scratch directory.
    fn scratch(&self) -> Result<&Path, RenderError> {
        let engine = self
            .engine
            .as_ref()
            .ok_or_else(|| RenderError::CorruptInput("no engine".into()))?;
        Ok(engine.scratch.path())
    }

    /// [`Session::place`]; an engine whose directory refused the source
    /// does no other job.
    fn placed(&mut self, source: &Path) -> Result<(), RenderError> {
        let placed = self.place(source);
        self.discard |= placed.is_err();
        placed
    }

    /// Puts the source where the engine reads it: read only for all (the
    /// engine's user is not the worker's), set on the file this worker
    /// staged before it is linked, so no path of the engine's is followed.
    fn place(&self, source: &Path) -> Result<(), RenderError> {
        let to = self.scratch()?.join(VIDEO_SOURCE);
        let failed = |e: std::io::Error| local(format!("placing the source for a video engine: {e}"));
        let staged = File::open(source).map_err(failed)?;
        staged
            .set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(failed)?;
        // Unlinking never follows a link; what a job before left goes.
        let _ = std::fs::remove_file(&to);
        match std::fs::hard_link(source, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                // Another file system: a copy, into a file that must be new.
                let mut copy = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o444)
                    .open(&to)
                    .map_err(failed)?;
                std::io::copy(&mut &staged, &mut copy).map(drop).map_err(failed)
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// Copies the proxy out of the engine's directory into `output`: only a
    /// regular file the engine's user made, with no other name (never a
    /// link to a file of the worker's), that is an MP4 no larger than the
    /// spec allows.
    fn take_proxy(&self, output: &Path, spec: &ProxySpec, proxy: Proxy) -> Result<(), RenderError> {
        let bad = |why: String| RenderError::CorruptInput(format!("the video engine's proxy: {why}"));
        let made = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.scratch()?.join(PROXY_OUTPUT))
            .map_err(|e| bad(e.to_string()))?;
        let meta = made.metadata().map_err(|e| bad(e.to_string()))?;
        // An audio preview is no longer than its length at its bit rate
        // (with room for the container and AAC's overshoot).
        if let (Some(kbps), Some(seconds)) = (spec.audio_kbps, spec.audio_seconds) {
            let most = u64::from(kbps) * 125 * (u64::from(seconds) + 1) * 3 / 2 + (64 << 10);
            if meta.len() > most {
                return Err(bad(format!("{} bytes for {seconds} s at {kbps} kb/s", meta.len())));
            }
        }
        let owner_ok = sandbox_id().is_none_or(|id| meta.uid() == id);
        if !meta.is_file() || meta.nlink() != 1 || !owner_ok {
            return Err(bad(format!(
                "not a file of the engine's own (uid {}, {} links)",
                meta.uid(),
                meta.nlink()
            )));
        }
        let mut head = [0u8; 8];
        let read = (&made).read_exact(&mut head);
        if read.is_err() || &head[4..8] != b"ftyp" {
            return Err(bad("not an MP4 file".into()));
        }
        let within = spec.max_height.is_none_or(|max| proxy.height <= max);
        let framed = match spec.audio_kbps {
            // An audio proxy has no frames.
            Some(_) => proxy.width == 0 && proxy.height == 0,
            None => {
                within
                    && proxy.width > 0
                    && proxy.height > 0
                    && proxy.width.is_multiple_of(2)
                    && proxy.height.is_multiple_of(2)
            }
        };
        if !framed {
            return Err(bad(format!(
                "{}×{} for {:?}",
                proxy.width, proxy.height, spec.max_height
            )));
        }
        let mut copy = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(output)
            .map_err(|e| local(format!("writing the proxy: {e}")))?;
        std::io::Seek::rewind(&mut &made).map_err(|e| bad(e.to_string()))?;
        std::io::copy(&mut &made, &mut copy)
            .map(drop)
            .map_err(|e| local(format!("copying the proxy: {e}")))
    }

    /// Empties what the worker put in the engine's directory (for the
    /// engine's next job, if it has one).
    fn clear(&self) {
        if let Ok(scratch) = self.scratch() {
            let _ = std::fs::remove_file(scratch.join(VIDEO_SOURCE));
            let _ = std::fs::remove_file(scratch.join(PROXY_OUTPUT));
        }
    }
}

/// How long a video engine may take over one answer: the video deadline
/// (which the engine keeps itself) and a minute.
fn deadline(video: &VideoLimits) -> Duration {
    video.deadline + Duration::from_secs(60)
}

/// This machine's disk failed the job, not the source.
fn local(message: String) -> RenderError {
    RenderError::Answered {
        code: crate::error::ErrorCode::EngineError,
        message,
    }
}
