//! The worker's memory budget. Each render reserves its estimated peak
//! (from the header, before a pixel is decoded) and waits while the
//! budget has no room for it, so eight big TIFFs at once queue instead of
//! running the process out of memory; a job larger than the whole budget
//! is refused `too_large`. The originals cache is carved out of the budget
//! first. The default is three quarters of the machine's memory, or of
//! the container's limit (cgroup v2 `memory.max`, v1 `limit_in_bytes`).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::rendition::RenderError;

/// Reservations are counted in these units (the semaphore counts `u32`s).
const UNIT: u64 = 1 << 20;

/// The originals cache takes this share of the budget, at most 256 MiB.
const CACHE_SHARE: u64 = 8;
const CACHE_MAX: u64 = 256 << 20;

/// What the process holds before any job (code, libraries, pools, the
/// runtime), measured at about 45 MiB: not available to jobs.
pub const PROCESS_BASE: u64 = 48 << 20;

#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    cache: u64,
    room: Arc<Semaphore>,
    units: u32,
}

/// Room held for one job's work; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `total` bytes for the whole process.
    pub fn new(total: u64) -> MemoryBudget {
        let cache = (total / CACHE_SHARE).min(CACHE_MAX);
        let for_jobs = total.saturating_sub(cache).saturating_sub(PROCESS_BASE);
        let units = u32::try_from(for_jobs / UNIT).unwrap_or(u32::MAX).max(1);
        MemoryBudget {
            total,
            cache,
            room: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The machine's (or container's) memory, three quarters of it.
    pub fn for_this_machine() -> MemoryBudget {
        MemoryBudget::new(machine_memory().unwrap_or(4 << 30) / 4 * 3)
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes of originals the cache may keep.
    pub fn cache_bytes(&self) -> u64 {
        self.cache
    }

    /// Bytes that jobs may reserve at once.
    pub fn for_jobs(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        (u64::from(self.units) - self.room.available_permits() as u64) * UNIT
    }

    /// Waits until `bytes` fit, then holds them; more than the budget can
    /// ever give is `too_large`, naming both figures.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, RenderError> {
        let units = bytes.div_ceil(UNIT);
        if units > u64::from(self.units) {
            return Err(RenderError::TooLarge {
                what: "estimated memory in bytes (RENDITION_MEMORY_BUDGET less the cache and the process)",
                value: bytes,
                max: self.for_jobs(),
            });
        }
        let permit = Arc::clone(&self.room)
            .acquire_many_owned(units as u32)
            .await
            .expect("the budget's semaphore is never closed");
        Ok(Reservation { _permit: Some(permit) })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b >> 20;
        format!(
            "memory_budget={} MiB (jobs {} MiB, originals cache {} MiB, process {} MiB)",
            mib(self.total),
            mib(self.for_jobs()),
            mib(self.cache),
            mib(PROCESS_BASE)
        )
    }
}

impl Default for MemoryBudget {
    fn default() -> MemoryBudget {
        MemoryBudget::for_this_machine()
    }
}

/// The memory this process may use: the cgroup's limit when one is set,
/// else the machine's.
pub fn machine_memory() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = read("/proc/meminfo").and_then(|m| meminfo_total(&m));
    match (cgroup, total) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, t) => c.or(t),
    }
}

fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `RENDITION_MEMORY_BUDGET`: bytes, or with a K, M, G or T suffix
/// (powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        (i, 't' | 'T') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Coded;

    #[tokio::test]
    async fn jobs_wait_for_room_and_one_larger_than_the_budget_is_too_large() {
        let budget = MemoryBudget::new(PROCESS_BASE + (100 << 20) + (100 << 20) / 7);
        assert!(budget.cache_bytes() > 0);
        let jobs = budget.for_jobs();
        assert!((90 << 20..=100 << 20).contains(&jobs), "{jobs}");
        let first = budget.reserve(60 << 20).await.unwrap();
        assert_eq!(budget.reserved(), 60 << 20);
        // A second 60 MiB does not fit beside the first: it waits.
        let waiting = budget.reserve(60 << 20);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(budget.reserved(), 60 << 20);
        drop(second);
        let refused = budget.reserve(jobs + 1).await.unwrap_err();
        assert_eq!(refused.code(), "too_large");
        assert!(refused.to_string().contains(&jobs.to_string()), "{refused}");
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn sizes_parse_with_suffixes_and_the_machine_has_memory() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes(" 2g "), Some(2 << 30));
        assert_eq!(parse_bytes("1.5G"), None);
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(
            meminfo_total("MemTotal:       24576000 kB\nMemFree: 1 kB"),
            Some(24_576_000 * 1024)
        );
        assert!(machine_memory().is_some_and(|m| m > 64 << 20));
    }
}
