//! The policy a long-running process decides with, swapped atomically.
//! A bad or older document never replaces the one in force.
//!
//! The version rule (docs/control-plane.md, "Versions"): a signed update
//! applies when its version is higher than the one in force; an update
//! that names the version it `replaces` applies only while exactly that
//! version is in force, and may go lower. So a runaway version (say
//! 18446744073709551615) is undone by one signed message naming it, and
//! replaying that message later does nothing: the version it names is no
//! longer in force.

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
    /// The update replaces a version that is not the one in force.
    NotReplacing {
        current: u64,
        replaces: u64,
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
        Ok(self.replace(policy, None))
    }

    /// Swaps in an already validated policy by the version rule (module docs).
    pub fn replace(&self, policy: Policy, replaces: Option<u64>) -> Update {
        let mut slot = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let (current, offered) = (slot.version(), policy.version());
        match replaces {
            Some(replaces) if replaces != current => return Update::NotReplacing { current, replaces },
            Some(_) => {}
            None if offered <= current => return Update::Stale { current, offered },
            None => {}
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

    #[test]
    fn a_runaway_version_is_undone_once_by_naming_it() {
        let parse =
            |v: u64| Policy::parse(&V1.replace("version: 1", &format!("version: {v}")), DocFormat::Yaml).unwrap();
        let current = CurrentPolicy::new(parse(5));
        assert_eq!(
            current.replace(parse(u64::MAX), None),
            Update::Applied { from: 5, to: u64::MAX }
        );
        assert_eq!(
            current.replace(parse(6), None),
            Update::Stale {
                current: u64::MAX,
                offered: 6
            }
        );
        // Naming another version than the one in force does nothing.
        assert_eq!(
            current.replace(parse(6), Some(5)),
            Update::NotReplacing {
                current: u64::MAX,
                replaces: 5
            }
        );
        assert_eq!(
            current.replace(parse(6), Some(u64::MAX)),
            Update::Applied { from: u64::MAX, to: 6 }
        );
        // The same reset again (a replay) finds version 6 in force.
        assert_eq!(
            current.replace(parse(6), Some(u64::MAX)),
            Update::NotReplacing {
                current: 6,
                replaces: u64::MAX
            }
        );
        assert_eq!(current.replace(parse(7), None), Update::Applied { from: 6, to: 7 });
    }
}
