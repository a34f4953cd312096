//! The policy a long-running process decides with, swapped atomically.
//! A bad or older document never replaces the one in force.

use std::sync::{Arc, RwLock};

use super::{Policy, PolicyError};

#[derive(Debug)]
pub struct CurrentPolicy {
    inner: RwLock<Arc<Policy>>,
}

/// What an offered update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Applied {
        from: u64,
        to: u64,
    },
    /// Not newer than the version in force: kept the current one.
    Stale {
        current: u64,
        offered: u64,
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

    /// Parses and validates `text`, then swaps it in if it is newer.
    pub fn offer(&self, text: &str, format: super::DocFormat) -> Result<Update, PolicyError> {
        let policy = Policy::parse(text, format)?;
        Ok(self.replace(policy))
    }

    /// Swaps in an already validated policy if it is newer.
    pub fn replace(&self, policy: Policy) -> Update {
        let mut slot = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let (current, offered) = (slot.version(), policy.version());
        if offered <= current {
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

    #[test]
    fn only_newer_valid_policies_replace_the_current_one() {
        let current = CurrentPolicy::new(Policy::parse(V1, DocFormat::Yaml).unwrap());
        let bad = "version: 5\nusers: { u: { role: nobody } }\n";
        assert!(current.offer(bad, DocFormat::Yaml).is_err());
        assert_eq!(current.get().version(), 1);
        assert_eq!(
            current.offer(V1, DocFormat::Yaml).unwrap(),
            Update::Stale { current: 1, offered: 1 }
        );
        let v2 = V1.replace("version: 1", "version: 2");
        assert_eq!(
            current.offer(&v2, DocFormat::Yaml).unwrap(),
            Update::Applied { from: 1, to: 2 }
        );
        assert_eq!(current.get().version(), 2);
    }
}
