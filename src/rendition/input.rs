//! Where an original's bytes are: in memory, or in a local file that
//! decoders read a block at a time (a 500 MB TIFF master is never held
//! whole: only JPEG, whose compressed data is small next to its pixels, is
//! read into memory for libjpeg-turbo).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek};
use std::path::Path;

use super::RenderError;

/// An original to render.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
    /// A file already open (an engine process's source, sent by
    /// descriptor): read by position, so readers never share an offset.
    Open(&'a File),
}

/// A buffered, seekable reader over either kind of input.
pub trait Reader: BufRead + Seek {}
impl<T: BufRead + Seek> Reader for T {}

/// Enough of the start of a file to tell its format.
const HEAD: usize = 64;

impl<'a> Input<'a> {
    /// The size in bytes.
    pub fn len(&self) -> Result<u64, RenderError> {
        match self {
            Input::Bytes(b) => Ok(b.len() as u64),
            Input::File(p) => Ok(std::fs::metadata(p).map_err(|e| unreadable(p, e))?.len()),
            Input::Open(f) => Ok(f.metadata().map_err(unreadable_open)?.len()),
        }
    }

    pub fn is_empty(&self) -> Result<bool, RenderError> {
        Ok(self.len()? == 0)
    }

    /// Whether the whole input is held in memory (it counts in a job's peak).
    pub fn in_memory(&self) -> bool {
        matches!(self, Input::Bytes(_))
    }

    pub fn open(&self) -> Result<Box<dyn Reader + 'a>, RenderError> {
        match *self {
            Input::Bytes(b) => Ok(Box::new(Cursor::new(b))),
            Input::File(p) => Ok(Box::new(BufReader::with_capacity(
                256 << 10,
                File::open(p).map_err(|e| unreadable(p, e))?,
            ))),
            Input::Open(file) => Ok(Box::new(BufReader::with_capacity(256 << 10, At { file, at: 0 }))),
        }
    }

    /// The first bytes, for telling the format.
    pub fn head(&self) -> Result<Cow<'a, [u8]>, RenderError> {
        self.prefix(HEAD)
    }

    /// Up to `n` bytes from the start.
    pub fn prefix(&self, n: usize) -> Result<Cow<'a, [u8]>, RenderError> {
        match *self {
            Input::Bytes(b) => Ok(Cow::Borrowed(&b[..b.len().min(n)])),
            Input::File(p) => {
                let mut head = Vec::with_capacity(n.min(1 << 20));
                let file = File::open(p).map_err(|e| unreadable(p, e))?;
                file.take(n as u64)
                    .read_to_end(&mut head)
                    .map_err(|e| unreadable(p, e))?;
                Ok(Cow::Owned(head))
            }
            Input::Open(file) => {
                let mut head = Vec::with_capacity(n.min(1 << 20));
                At { file, at: 0 }
                    .take(n as u64)
                    .read_to_end(&mut head)
                    .map_err(unreadable_open)?;
                Ok(Cow::Owned(head))
            }
        }
    }

    /// Every byte, in memory.
    pub fn bytes(&self) -> Result<Cow<'a, [u8]>, RenderError> {
        match *self {
            Input::Bytes(b) => Ok(Cow::Borrowed(b)),
            Input::File(p) => Ok(Cow::Owned(std::fs::read(p).map_err(|e| unreadable(p, e))?)),
            Input::Open(file) => {
                let mut all = Vec::new();
                At { file, at: 0 }.read_to_end(&mut all).map_err(unreadable_open)?;
                Ok(Cow::Owned(all))
            }
        }
    }
}

/// A reader of an open file by position (`pread`), with its own offset.
struct At<'a> {
    file: &'a File,
    at: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Seek for At<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let (base, delta) = match to {
            std::io::SeekFrom::Start(n) => (0, n as i64),
            std::io::SeekFrom::End(n) => (self.file.metadata()?.len(), n),
            std::io::SeekFrom::Current(n) => (self.at, n),
        };
        self.at = base
            .checked_add_signed(delta)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a seek before the start"))?;
        Ok(self.at)
    }
}

fn unreadable_open(e: std::io::Error) -> RenderError {
    RenderError::codec(format!("reading the source: {e}"), e)
}

fn unreadable(path: &Path, e: std::io::Error) -> RenderError {
    RenderError::codec(format!("reading {}: {e}", path.display()), e)
}

/// Reads into `out` until it is full or the source ends (a C library's
/// read callback asks for exactly this); the bytes read.
pub(super) fn read_up_to(reader: &mut dyn Reader, out: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < out.len() {
        match reader.read(&mut out[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
