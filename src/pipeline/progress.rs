//! A job run with its progress handed on as it comes: to the broker for the
//! worker, to the progress bar for `rendition render`. Best effort: a
//! lost update is not an error, and the job never waits for one.

use std::future::Future;

use super::{Arrival, Outcome, Pipeline};
use crate::policy::Policy;
use crate::result::JobProgress;
use crate::storage::Store;
use crate::work::Work;

impl<S: Store> Pipeline<S> {
    /// [`Pipeline::run`], handing each progress update to `forward`.
    pub async fn run_forwarding_progress<F, Sent>(
        &self,
        policy: &Policy,
        work: &Work,
        arrival: Arrival,
        mut forward: F,
    ) -> Outcome
    where
        F: FnMut(JobProgress) -> Sent,
        Sent: Future<Output = ()>,
    {
        let (sink, mut updates) = tokio::sync::mpsc::unbounded_channel();
        let run = async move { self.run(policy, work, arrival, Some(&sink)).await };
        let hand_on = async {
            while let Some(update) = updates.recv().await {
                forward(update).await;
            }
        };
        let (outcome, ()) = tokio::join!(run, hand_on);
        outcome
    }
}
