//! The requests being handled, so that a graceful stop can wait for them. Each write runs in
//! its own task (`middleware::edge`), which goes on after its client has gone away (a read runs
//! inline and is counted with [`InFlight::enter`]); once the listener has closed, those tasks are
//! all that is left, and the pool must outlive them. A task is counted from the moment it is
//! spawned until it ends, however it ends (a guard is dropped with it, also on a panic).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct InFlight {
    running: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Spawns `task`, counted while it runs.
    pub fn spawn<F>(self: &Arc<Self>, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.running.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(self.clone());
        tokio::spawn(async move {
            let _counted = guard;
            task.await
        })
    }

    /// Counts a request handled inline (a read) until the returned guard is dropped.
    #[must_use = "the request is counted only while the guard lives"]
    pub fn enter(self: &Arc<Self>) -> impl Drop + Send + 'static {
        self.running.fetch_add(1, Ordering::SeqCst);
        Guard(self.clone())
    }

    /// How many requests are running now (tasks and inline reads).
    pub fn len(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns once no request is running.
    pub async fn idle(&self) {
        loop {
            // Registered before the check, so a task ending in between still wakes us.
            let mut ended = pin!(self.idle.notified());
            ended.as_mut().enable();
            if self.is_empty() {
                return;
            }
            ended.await;
        }
    }
}

struct Guard(Arc<InFlight>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_every_task_also_one_that_panics() {
        let tasks = Arc::new(InFlight::default());
        tasks.idle().await;
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let slow = tasks.spawn(async move {
            let _ = wait.await;
        });
        let failing = tasks.spawn(async { panic!("a handler bug") });
        assert!(failing.await.is_err());
        assert_eq!(tasks.len(), 1);
        let waited = tokio::time::timeout(Duration::from_millis(50), tasks.idle()).await;
        assert!(waited.is_err(), "idle while a task runs");
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), tasks.idle())
            .await
            .expect("idle once the last task ended");
        slow.await.unwrap();
        assert!(tasks.is_empty());
    }
}
