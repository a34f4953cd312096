//! Where a worker stands in the policy log (docs/control-plane.md#the-policy-log):
//! the stream that keeps every update published on the policy exchange. A
//! worker reads it from the oldest update kept when it starts, and from
//! the one after the last it read when it reconnects, so an update
//! published while it was starting or between connections (on another
//! node of a cluster, say) still reaches it. Updates are applied by the
//! version rule, so reading one again changes nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Before taking jobs, a worker reads the log until no update has arrived
/// for this long: the broker sends a stream's backlog at once, so a quiet
/// log has been read to its end.
pub const CATCH_UP_QUIET: Duration = Duration::from_millis(300);
/// The most a worker spends reading the log before it takes jobs (a log
/// full of large inline documents); it reads the rest while it works.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

/// The next offset to read, kept across connections.
#[derive(Debug)]
pub struct PolicyLogCursor {
    next: AtomicU64,
    /// When this process started, in seconds since the epoch.
    started: u64,
}

/// Where an update read from the log comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published before this worker started: history it replays. Not
    /// applying it (an older version, a retired key) is no alarm.
    History,
    /// Published since: refusing it is counted and logged as an error.
    Live,
}

impl Default for PolicyLogCursor {
    fn default() -> Self {
        PolicyLogCursor::new(chrono::Utc::now().timestamp().max(0) as u64)
    }
}

impl PolicyLogCursor {
    pub fn new(started: u64) -> PolicyLogCursor {
        PolicyLogCursor {
            next: AtomicU64::new(0),
            started,
        }
    }

    /// Where the next connection starts reading (0: the oldest kept).
    pub fn next(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Records a delivery's `offset` and says where it comes from by its
    /// `published` timestamp (seconds; a message without one is live).
    pub fn record(&self, offset: Option<u64>, published: Option<u64>) -> Origin {
        if let Some(offset) = offset {
            self.next.fetch_max(offset.saturating_add(1), Ordering::SeqCst);
        }
        match published {
            Some(at) if at < self.started => Origin::History,
            _ => Origin::Live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_reads_on_from_the_update_after_the_last_read() {
        let cursor = PolicyLogCursor::new(1_000);
        assert_eq!(cursor.next(), 0, "a new worker reads from the oldest kept");
        cursor.record(Some(0), Some(900));
        cursor.record(Some(7), Some(1_200));
        assert_eq!(cursor.next(), 8);
        // A delivery read again (a redelivery after a lost ack) does not
        // move the cursor back.
        cursor.record(Some(3), Some(950));
        cursor.record(None, None);
        assert_eq!(cursor.next(), 8);
    }

    #[test]
    fn history_is_what_was_published_before_the_worker_started() {
        let cursor = PolicyLogCursor::new(1_000);
        assert_eq!(cursor.record(Some(0), Some(999)), Origin::History);
        assert_eq!(cursor.record(Some(1), Some(1_000)), Origin::Live);
        assert_eq!(cursor.record(Some(2), None), Origin::Live);
    }
}
