//! Where a worker stands in the policy log (docs/control-plane.md#the-policy-log):
//! the stream that keeps every update published on the policy exchange. On
//! every connection a worker appends a marker of its own, then reads the
//! log from the oldest update kept up to that marker before it takes a
//! job, so an update published while it was starting or between
//! connections (on another node of a cluster, say) still reaches it.
//! Updates are applied by the version rule, so reading one again changes
//! nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;

use crate::queue::Message;

/// The most a worker spends reading the log up to its marker before it
/// takes jobs (a broker that does not deliver, a log full of junk); it
/// reads the rest alongside the jobs and logs a warning.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);
/// The header a marker carries its nonce in. A message with it is never
/// taken for an update.
pub const MARKER_HEADER: &str = "rendition-policy-log-marker";

/// What this process has read of the log, kept across connections.
#[derive(Debug, Default)]
pub struct PolicyLogCursor {
    /// One past the highest offset read.
    next: AtomicU64,
    /// Whether a connection has read the log up to its marker yet: until
    /// then, everything read is history.
    caught_up: AtomicBool,
}

/// One connection's reading of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The nonce of the marker this connection appended: the end of the
    /// catch-up.
    pub nonce: String,
    first: bool,
    read_before: u64,
}

/// Where an update read from the log comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published before this worker started, or read by it before: not
    /// applying it (a version since superseded, a retired key) is no alarm.
    History,
    /// New to this worker: refusing it is counted and logged as an error.
    Live,
}

impl PolicyLogCursor {
    /// A new connection's reading, with the marker to append.
    pub fn begin(&self) -> (Reading, Message) {
        let nonce = hex::encode(rand::rng().random::<[u8; 16]>());
        let reading = Reading {
            nonce: nonce.clone(),
            first: !self.caught_up.load(Ordering::SeqCst),
            read_before: self.next.load(Ordering::SeqCst),
        };
        let marker = Message {
            headers: BTreeMap::from([(MARKER_HEADER.to_string(), nonce)]),
            mandatory: true,
            ..Message::default()
        };
        (reading, marker)
    }

    /// A connection read the log up to its marker (or gave up waiting).
    pub fn caught_up(&self) {
        self.caught_up.store(true, Ordering::SeqCst);
    }

    /// Records an update's `offset` and says where it comes from: while
    /// catching up, the first connection's whole log is history, a later
    /// connection's only what it had read before.
    pub fn record(&self, reading: &Reading, catching_up: bool, offset: Option<u64>) -> Origin {
        if let Some(offset) = offset {
            self.next.fetch_max(offset.saturating_add(1), Ordering::SeqCst);
        }
        let read_before = offset.is_some_and(|o| o < reading.read_before);
        match catching_up && (reading.first || read_before) {
            true => Origin::History,
            false => Origin::Live,
        }
    }
}

/// Whether an entry whose marker header holds `nonce` is a marker, and
/// whose: `Some(true)` for this reading's own.
pub fn marker(reading: &Reading, nonce: Option<&str>) -> Option<bool> {
    nonce.map(|nonce| nonce == reading.nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_connection_s_catch_up_is_history_and_what_follows_is_live() {
        let cursor = PolicyLogCursor::default();
        let (first, marker_message) = cursor.begin();
        assert_eq!(marker(&first, marker_message.header(MARKER_HEADER)), Some(true));
        assert_eq!(cursor.record(&first, true, Some(0)), Origin::History);
        assert_eq!(cursor.record(&first, true, Some(1)), Origin::History);
        assert_eq!(cursor.record(&first, false, Some(3)), Origin::Live);
    }

    #[test]
    fn a_reconnect_counts_as_live_only_what_it_had_not_read() {
        let cursor = PolicyLogCursor::default();
        let (failed, _) = cursor.begin();
        cursor.record(&failed, true, Some(0));
        // A connection lost before its marker came back: the next one's
        // catch-up is still history.
        let (first, _) = cursor.begin();
        assert_eq!(cursor.record(&first, true, Some(1)), Origin::History);
        cursor.caught_up();
        for offset in 2..5 {
            cursor.record(&first, false, Some(offset));
        }
        let (again, _) = cursor.begin();
        assert_ne!(again.nonce, first.nonce, "each connection has its own marker");
        assert_eq!(cursor.record(&again, true, Some(4)), Origin::History, "read before");
        assert_eq!(
            cursor.record(&again, true, Some(5)),
            Origin::Live,
            "published in the gap"
        );
        // A log deleted and declared again starts at 0: read again, and
        // applied by the version rule, but no alarm.
        assert_eq!(cursor.record(&again, true, Some(0)), Origin::History);
    }

    #[test]
    fn another_worker_s_marker_is_not_this_one_s_end() {
        let cursor = PolicyLogCursor::default();
        let (mine, _) = cursor.begin();
        let (_, theirs) = PolicyLogCursor::default().begin();
        assert_eq!(marker(&mine, theirs.header(MARKER_HEADER)), Some(false));
        assert_eq!(marker(&mine, None), None);
    }
}
