//! What every module's error answers: a stable code and whether trying
//! again could help (docs/contract.md#error-codes). The codes are one enum:
//! code that decides on an error decides on these values, never on strings.

/// What to do with a job whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A passing fault (storage, broker): try again after a backoff.
    Retry,
    /// Bad input or a permanent error: answer `failed` at once.
    Reject,
}

/// Every stable error code a result, a dead letter or a refused control
/// message may carry. Codes are added, never renamed or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJob,
    UnsupportedFormat,
    CorruptInput,
    TooLarge,
    MissingSource,
    NoSuchPage,
    DeadlineExceeded,
    EngineError,
    StorageError,
    TempSpace,
    BrokerError,
    InvalidPolicy,
    PolicyUnreadable,
    UnsignedControl,
    UnknownControlKey,
    BadSignature,
    InvalidControl,
    PolicyLocationRefused,
    PolicyDigestMismatch,
    StalePolicy,
    EngineCrashed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidJob,
        ErrorCode::UnsupportedFormat,
        ErrorCode::CorruptInput,
        ErrorCode::TooLarge,
        ErrorCode::MissingSource,
        ErrorCode::NoSuchPage,
        ErrorCode::DeadlineExceeded,
        ErrorCode::EngineError,
        ErrorCode::StorageError,
        ErrorCode::TempSpace,
        ErrorCode::BrokerError,
        ErrorCode::InvalidPolicy,
        ErrorCode::PolicyUnreadable,
        ErrorCode::UnsignedControl,
        ErrorCode::UnknownControlKey,
        ErrorCode::BadSignature,
        ErrorCode::InvalidControl,
        ErrorCode::PolicyLocationRefused,
        ErrorCode::PolicyDigestMismatch,
        ErrorCode::StalePolicy,
        ErrorCode::EngineCrashed,
    ];

    /// The code as it travels: in results, headers, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJob => "invalid_job",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::CorruptInput => "corrupt_input",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::MissingSource => "missing_source",
            ErrorCode::NoSuchPage => "no_such_page",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::EngineError => "engine_error",
            ErrorCode::StorageError => "storage_error",
            ErrorCode::TempSpace => "temp_space",
            ErrorCode::BrokerError => "broker_error",
            ErrorCode::InvalidPolicy => "invalid_policy",
            ErrorCode::PolicyUnreadable => "policy_unreadable",
            ErrorCode::UnsignedControl => "unsigned_control",
            ErrorCode::UnknownControlKey => "unknown_control_key",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::InvalidControl => "invalid_control",
            ErrorCode::PolicyLocationRefused => "policy_location_refused",
            ErrorCode::PolicyDigestMismatch => "policy_digest_mismatch",
            ErrorCode::StalePolicy => "stale_policy",
            ErrorCode::EngineCrashed => "engine_crashed",
        }
    }

    /// Whether a job failing with this code is worth running again: only
    /// passing faults of the stores, the broker, the temporary disk, or a
    /// policy location that did not answer.
    pub fn disposition(self) -> Disposition {
        match self {
            ErrorCode::StorageError | ErrorCode::TempSpace | ErrorCode::BrokerError | ErrorCode::PolicyUnreadable => {
                Disposition::Retry
            }
            _ => Disposition::Reject,
        }
    }

    /// The code a string names, if any.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error with a stable, machine-readable code.
pub trait Coded {
    /// The stable code, e.g. `invalid_job`, `too_large`.
    fn code(&self) -> ErrorCode;
    /// Retry or reject: the code's own disposition.
    fn disposition(&self) -> Disposition {
        self.code().disposition()
    }
}

/// What a caught panic said, for the log and the error message.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_only_passing_faults_retry() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        let retried: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.disposition() == Disposition::Retry)
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            retried,
            ["storage_error", "temp_space", "broker_error", "policy_unreadable"]
        );
        assert_eq!(ErrorCode::parse("delivery_limit"), None);
    }
}
