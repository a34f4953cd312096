//! The pools the CPU work of a job runs on: a rayon pool per lane kind
//! (images, video) whose waiting work leaves in priority order, and the
//! one way async code waits for it, a panic caught and answered.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use super::PipelineError;
use crate::error::panic_message;
use crate::priority::{Priority, Turns};

/// A rayon pool whose waiting work leaves in [`Turns`] order: every spawn
/// runs the task whose turn it is when a thread takes it, not the one it
/// was spawned with, so an interactive render queued behind a bulk
/// backlog is the next to start.
pub(super) struct LanePool {
    threads: rayon::ThreadPool,
    waiting: Arc<Mutex<Waiting>>,
}

type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Waiting {
    interactive: VecDeque<Task>,
    bulk: VecDeque<Task>,
    turns: Turns,
}

impl Waiting {
    fn next(&mut self) -> Option<Task> {
        let (interactive, bulk) = (!self.interactive.is_empty(), !self.bulk.is_empty());
        match self
            .turns
            .pick(|p| if p == Priority::Interactive { interactive } else { bulk })?
        {
            Priority::Interactive => self.interactive.pop_front(),
            Priority::Bulk => self.bulk.pop_front(),
        }
    }
}

impl LanePool {
    /// `threads` threads named `name-N`, each with a stack of `stack`
    /// bytes if given.
    pub(super) fn new(threads: usize, name: &'static str, stack: Option<usize>) -> LanePool {
        let mut builder = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("{name}-{i}"))
            .panic_handler(|_| tracing::error!("a pool task panicked outside a job"));
        if let Some(bytes) = stack {
            builder = builder.stack_size(bytes);
        }
        LanePool {
            threads: builder.build().expect("a rayon pool starts"),
            waiting: Arc::default(),
        }
    }

    /// One task in, one run out: each spawn takes exactly one waiting task.
    fn spawn(&self, priority: Priority, task: Task) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match priority {
            Priority::Interactive => waiting.interactive.push_back(task),
            Priority::Bulk => waiting.bulk.push_back(task),
        }
        drop(waiting);
        let waiting = Arc::clone(&self.waiting);
        self.threads.spawn(move || {
            let next = waiting.lock().unwrap_or_else(|e| e.into_inner()).next();
            if let Some(task) = next {
                task();
            }
        });
    }
}

/// Runs `work` on `pool` and waits for it without blocking the runtime. A
/// panic is caught on the pool thread and answered as an error.
pub(super) async fn on_pool<T: Send + 'static>(
    pool: &LanePool,
    priority: Priority,
    work: impl FnOnce() -> Result<T, PipelineError> + Send + 'static,
) -> Result<T, PipelineError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(
        priority,
        Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|panic| Err(PipelineError::Panicked(panic_message(&*panic))));
            let _ = tx.send(outcome);
        }),
    );
    rx.await
        .unwrap_or_else(|_| Err(PipelineError::Panicked("the pool dropped the task".into())))
}
