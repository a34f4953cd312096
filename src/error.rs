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

/// What a caught panic said, for the log and the error message.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
