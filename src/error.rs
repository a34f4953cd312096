//! What every module's error answers: a stable code (contract §3) and
//! whether trying again could help.

/// What to do with a job whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A passing fault (storage, broker): try again after a backoff.
    Retry,
    /// Bad input or a permanent error: answer `failed` at once.
    Reject,
}

/// An error with a stable, machine-readable code.
pub trait Coded {
    /// The stable code, e.g. `invalid_job`, `too_large`.
    fn code(&self) -> &'static str;
    fn disposition(&self) -> Disposition;
}
