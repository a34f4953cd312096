//! The policy a long-running process decides with, swapped atomically.
//! A bad or older document never replaces the one in force.
//!
//! The version rule (docs/control-plane.md#versions): a document applies
//! when it is in the same epoch with a higher version, or in the next epoch
//! (epoch + 1) with any version. So a replayed or older document never
//! applies; a runaway version (say 18446744073709551615) is undone by the
//! next epoch, after which every message of the old epoch, the runaway
//! included, is stale; and an epoch can only be raised one at a time, so
//! it cannot run away itself.

use std::sync::{Arc, RwLock};

use super::{Policy, PolicyError};

#[derive(Debug)]
pub struct CurrentPolicy {
    inner: RwLock<Arc<Policy>>,
}

/// A policy's place in the order: its epoch, then its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Standing {
    pub epoch: u64,
    pub version: u64,
}

impl Standing {
    /// Whether a document standing at `offered` may replace one at `self`.
    pub fn admits(self, offered: Standing) -> bool {
        (offered.epoch == self.epoch && offered.version > self.version)
            || Some(offered.epoch) == self.epoch.checked_add(1)
    }
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.epoch {
            0 => write!(f, "version {}", self.version),
            epoch => write!(f, "epoch {epoch} version {}", self.version),
        }
    }
}

/// What an offered update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Applied {
        from: Standing,
        to: Standing,
    },
    /// Not after the one in force by the version rule: kept the current one.
    Stale {
        current: Standing,
        offered: Standing,
    },
}

impl CurrentPolicy {
    pub fn new(policy: Policy) -> CurrentPolicy {
        CurrentPolicy {
            inner: RwLock::new(Arc::new(policy)),
        }
    }

    /// The policy in force; cheap, and stable for as long as it is held.
    pub fn get(&self) -> Arc<Policy> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Parses and validates `text`, then swaps it in by the version rule.
    pub fn offer(&self, text: &str, format: super::DocFormat) -> Result<Update, PolicyError> {
        let policy = Policy::parse(text, format)?;
        Ok(self.replace(policy))
    }

    /// Swaps in an already validated policy by the version rule.
    pub fn replace(&self, policy: Policy) -> Update {
        let mut slot = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let (current, offered) = (slot.standing(), policy.standing());
        if !current.admits(offered) {
            return Update::Stale { current, offered };
        }
        *slot = Arc::new(policy);
        Update::Applied {
            from: current,
            to: offered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DocFormat;

    const V1: &str = "version: 1\nroles: { admin: { staff: true } }\n";

    fn at(epoch: u64, version: u64) -> Standing {
        Standing { epoch, version }
    }

    fn parse(epoch: u64, version: u64) -> Policy {
        let text = format!("version: {version}\nepoch: {epoch}\nroles: {{ admin: {{ staff: true }} }}\n");
        Policy::parse(&text, DocFormat::Yaml).unwrap()
    }

    #[test]
    fn only_newer_valid_policies_replace_the_current_one() {
        let current = CurrentPolicy::new(Policy::parse(V1, DocFormat::Yaml).unwrap());
        let bad = "version: 5\nusers: { u: { role: nobody } }\n";
        assert!(current.offer(bad, DocFormat::Yaml).is_err());
        assert_eq!(current.get().version(), 1);
        assert_eq!(
            current.offer(V1, DocFormat::Yaml).unwrap(),
            Update::Stale {
                current: at(0, 1),
                offered: at(0, 1)
            }
        );
        let v2 = V1.replace("version: 1", "version: 2");
        assert_eq!(
            current.offer(&v2, DocFormat::Yaml).unwrap(),
            Update::Applied {
                from: at(0, 1),
                to: at(0, 2)
            }
        );
        assert_eq!(current.get().version(), 2);
    }

    #[test]
    fn a_runaway_version_is_undone_by_the_next_epoch_and_never_comes_back() {
        let current = CurrentPolicy::new(parse(0, 5));
        let applied = |p| matches!(current.replace(p), Update::Applied { .. });
        assert!(applied(parse(0, u64::MAX)), "a (signed) mistake applies");
        assert!(!applied(parse(0, 6)), "and freezes its epoch");
        assert!(!applied(parse(2, 6)), "epochs are raised one at a time");
        assert!(applied(parse(1, 6)), "the next epoch starts over");
        // Every message of the old epoch is stale now, the runaway too,
        // and the reset itself when replayed.
        for (epoch, version) in [(0, u64::MAX), (0, 7), (1, 6), (1, 5)] {
            assert!(!applied(parse(epoch, version)), "epoch {epoch} version {version}");
        }
        assert!(applied(parse(1, 7)));
        assert_eq!(current.get().standing(), at(1, 7));
        // An epoch cannot run away: u64::MAX is never the next one here,
        // and there is no epoch after it.
        assert!(!at(1, 7).admits(at(u64::MAX, 0)));
        assert!(!at(u64::MAX, 0).admits(at(0, 1)));
    }
}
