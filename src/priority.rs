//! Interactive work before bulk work, without starving bulk (a job's
//! `priority`: docs/contract.md#job; the lanes: docs/operating.md#priorities).
//!
//! A person waiting for a download should not wait behind a publish run of
//! ten thousand assets. Quorum queues have no message priorities, so each
//! job queue has a second lane (its own queue) and two places choose
//! between lanes with the same [`Turns`]: the worker, when a job slot
//! frees, and the engine pools, when a thread frees.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Someone is waiting: downloads, previews, shares.
    Interactive,
    /// Nobody is waiting: publish runs, pre-generation.
    Bulk,
}

impl Priority {
    pub const ALL: [Priority; 2] = [Priority::Interactive, Priority::Bulk];

    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Bulk => "bulk",
        }
    }

    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// While both lanes have work waiting, one start in this many goes to
/// bulk: interactive work overtakes, bulk still moves at a fifth of the
/// capacity (and at all of it when nobody is waiting).
pub const BULK_TURN: u32 = 5;

/// Whose turn it is, counted over the starts made so far.
#[derive(Debug, Default, Clone)]
pub struct Turns {
    starts: u32,
}

impl Turns {
    /// The lanes in the order to try them for the next start.
    pub fn order(&self) -> [Priority; 2] {
        if self.starts % BULK_TURN == BULK_TURN - 1 {
            [Priority::Bulk, Priority::Interactive]
        } else {
            [Priority::Interactive, Priority::Bulk]
        }
    }

    /// The lane to start from, given which have work; `None` when neither.
    pub fn pick(&mut self, waiting: impl Fn(Priority) -> bool) -> Option<Priority> {
        let lane = self.order().into_iter().find(|p| waiting(*p))?;
        self.started();
        Some(lane)
    }

    /// Counts a start (when the caller tried the lanes in [`Turns::order`] itself).
    pub fn started(&mut self) {
        self.starts = self.starts.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactive_goes_first_and_bulk_gets_every_fifth_start_while_both_wait() {
        let mut turns = Turns::default();
        let both: Vec<Priority> = (0..10).filter_map(|_| turns.pick(|_| true)).collect();
        let bulk = both.iter().filter(|p| **p == Priority::Bulk).count();
        assert_eq!(bulk, 2, "{both:?}");
        assert_eq!(&both[..4], [Priority::Interactive; 4]);
        assert_eq!(both[4], Priority::Bulk);
    }

    #[test]
    fn a_lane_alone_gets_every_start() {
        let mut turns = Turns::default();
        for _ in 0..12 {
            assert_eq!(turns.pick(|p| p == Priority::Bulk), Some(Priority::Bulk));
        }
        assert_eq!(turns.pick(|_| false), None);
        for _ in 0..12 {
            assert_eq!(turns.pick(|p| p == Priority::Interactive), Some(Priority::Interactive));
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        assert_eq!(Priority::parse("urgent"), None);
    }
}
