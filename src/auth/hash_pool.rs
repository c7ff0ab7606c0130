//! A small pool of dedicated threads for password hashing, one per core, running at a lower OS
//! scheduling priority (nice 10 on Linux). Argon2 is pure CPU work; on the async runtime's blocking
//! pool it competed as an equal with the threads serving requests, so a login storm pushed every
//! other request's latency up. Here the scheduler serves requests first and gives hashing what is
//! left. Jobs queue when all threads are busy; the pool ends when its last handle is dropped.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ims-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `work` on a pool thread and waits for its result without blocking the runtime.
    pub async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs
            .lock()
            .map_err(|_| anyhow::anyhow!("hash pool poisoned"))?
            .send(job)
            .map_err(|_| anyhow::anyhow!("hash pool stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("hash job was dropped"))
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: plain system calls on the current thread with constant arguments; failure (e.g. a
    // seccomp policy) only leaves the thread at normal priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_runtime_and_return_results() {
        let pool = HashPool::new(2).unwrap();
        let here = std::thread::current().id();
        let (sum, there) = pool
            .run(|| ((1..=10).sum::<u32>(), std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(sum, 55);
        assert_ne!(here, there);
        let names = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(names.unwrap().starts_with("ims-hash-"));
    }
}
