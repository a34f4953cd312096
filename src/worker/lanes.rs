//! Which delivery a worker starts next. Each job queue it consumes comes
//! in two lanes (interactive and bulk, [`crate::priority`]); at most
//! `limit` jobs of one queue run at once, and when a slot frees the lanes
//! are asked in [`Turns`] order: interactive first, bulk every fifth start
//! while both wait, bulk at full speed when nobody is waiting.
//!
//! Deliveries not started wait unacked in the consumer's prefetch (their
//! lane's own window), so an interactive job is never stuck behind
//! prefetched bulk work.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;

use crate::priority::{Priority, Turns};

/// One job queue's two lanes and its running jobs.
struct Family<S> {
    interactive: S,
    bulk: S,
    running: Arc<AtomicUsize>,
    turns: Turns,
}

/// A job slot: held by the job's task, freed when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The deliveries of every consumed queue, started in priority order.
/// Ends when any lane ends (the broker closed a consumer).
pub struct Lanes<S> {
    families: Vec<Family<S>>,
    limit: usize,
    /// Where the next poll starts, so no queue shadows another.
    next: usize,
}

impl<S> Lanes<S> {
    /// `lanes`: (interactive, bulk) per queue; `limit`: jobs at once per queue.
    pub fn new(lanes: Vec<(S, S)>, limit: usize) -> Lanes<S> {
        let families = lanes
            .into_iter()
            .map(|(interactive, bulk)| Family {
                interactive,
                bulk,
                running: Arc::default(),
                turns: Turns::default(),
            })
            .collect();
        Lanes {
            families,
            limit: limit.max(1),
            next: 0,
        }
    }

    /// Jobs running now, over all queues.
    pub fn running(&self) -> usize {
        self.families.iter().map(|f| f.running.load(Ordering::Acquire)).sum()
    }
}

impl<T, S: Stream<Item = T> + Unpin> Stream for Lanes<S> {
    type Item = (T, Priority, Slot);

    /// A queue without a free slot is not polled: its deliveries stay in
    /// the prefetch. The caller polls again when a job ends (a slot frees).
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let count = this.families.len();
        for i in 0..count {
            let index = (this.next + i) % count;
            let family = &mut this.families[index];
            if family.running.load(Ordering::Acquire) >= this.limit {
                continue;
            }
            for priority in family.turns.order() {
                let lane = match priority {
                    Priority::Interactive => &mut family.interactive,
                    Priority::Bulk => &mut family.bulk,
                };
                match Pin::new(lane).poll_next(cx) {
                    Poll::Ready(Some(item)) => {
                        family.turns.started();
                        family.running.fetch_add(1, Ordering::AcqRel);
                        let slot = Slot(Arc::clone(&family.running));
                        this.next = (index + 1) % count;
                        return Poll::Ready(Some((item, priority, slot)));
                    }
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use futures_util::stream::{self, BoxStream};

    fn lane(name: &'static str, n: usize) -> BoxStream<'static, String> {
        // Pending at the end instead of ending: a consumer waits for more.
        stream::iter((0..n).map(move |i| format!("{name}{i}")))
            .chain(stream::pending())
            .boxed()
    }

    fn take(lanes: &mut Lanes<BoxStream<'static, String>>, n: usize) -> Vec<(String, Slot)> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        while out.len() < n {
            match lanes.poll_next_unpin(&mut cx) {
                Poll::Ready(Some((item, _, slot))) => out.push((item, slot)),
                _ => break,
            }
        }
        out
    }

    #[test]
    fn interactive_overtakes_a_bulk_backlog_and_bulk_keeps_a_share() {
        let mut lanes = Lanes::new(vec![(lane("i", 20), lane("b", 300))], 100);
        let started: Vec<String> = take(&mut lanes, 25).into_iter().map(|(s, _)| s).collect();
        let bulk = started.iter().filter(|s| s.starts_with('b')).count();
        assert_eq!(bulk, 5, "one start in five: {started:?}");
        assert!(started[..4].iter().all(|s| s.starts_with('i')));
        // Interactive work done: bulk gets every start.
        let rest = take(&mut lanes, 10);
        assert!(rest.iter().all(|(s, _)| s.starts_with('b')));
    }

    #[test]
    fn a_queue_runs_at_most_its_limit_and_a_finished_job_frees_its_slot() {
        let mut lanes = Lanes::new(vec![(lane("i", 10), lane("b", 10)), (lane("v", 10), lane("w", 0))], 2);
        let mut running = take(&mut lanes, 10);
        assert_eq!(running.len(), 4, "two per queue");
        assert_eq!(lanes.running(), 4);
        assert!(take(&mut lanes, 1).is_empty(), "no slot free");
        let first = running.remove(0).0;
        assert_eq!(lanes.running(), 3);
        let next = take(&mut lanes, 1);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0.chars().next(), first.chars().next(), "the freed slot's queue");
    }
}
