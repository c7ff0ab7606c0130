//! A one-second micro-cache of leaders' task lists (`GET /api/my/tasks`), as served JSON. Tablets
//! on a line, wallboards and a whole shift opening the app at once ask for the same list many
//! times a second; this answers them from memory instead of repeating the query.
//!
//! Consistency: any write through this instance (every non-GET request under `/api/`, counted
//! when it has been answered, i.e. after its transaction) starts a new generation, and a list read
//! in an older generation is never served again — so a leader always sees their own action at once,
//! on the instance that took it. A write through *another* instance is seen within [`TTL`], the
//! same bound as a revocation's; the web app keeps the newer `version` of a task it has just
//! changed, so a list that old cannot undo what the leader sees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use time::Date;

/// How long a cached list may be served when nothing was written through this instance.
pub const TTL: Duration = Duration::from_secs(1);
/// Past this many entries the cache is emptied (it refills within a second).
const CAPACITY: usize = 10_000;

struct Entry {
    generation: u64,
    at: Instant,
    json: Bytes,
}

#[derive(Default)]
pub struct TaskCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<(String, Date), Entry>>,
}

impl TaskCache {
    /// The current generation: read it *before* querying, and pass it to [`TaskCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Something was written: no list read before now is served again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self, user_id: &str, date: Date) -> Option<Bytes> {
        let current = self.generation();
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&(user_id.to_owned(), date))?;
        (entry.generation == current && entry.at.elapsed() < TTL).then(|| entry.json.clone())
    }

    /// Stores a list read in `generation`; a write since then makes it unusable at once.
    pub fn put(&self, user_id: &str, date: Date, generation: u64, json: Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(
                (user_id.to_owned(), date),
                Entry {
                    generation,
                    at: Instant::now(),
                    json,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Date {
        Date::from_calendar_date(2026, time::Month::November, 24).unwrap()
    }

    #[test]
    fn a_write_after_the_read_started_makes_the_list_unusable() {
        let cache = TaskCache::default();
        let seen = cache.generation();
        cache.put("leader", day(), seen, Bytes::from_static(b"[]"));
        assert_eq!(cache.get("leader", day()).as_deref(), Some(&b"[]"[..]));
        assert!(cache.get("other", day()).is_none());

        let before_write = cache.generation();
        cache.invalidate();
        assert!(
            cache.get("leader", day()).is_none(),
            "served across a write"
        );
        // A read that began before the write and stores afterwards is not served either.
        cache.put("leader", day(), before_write, Bytes::from_static(b"[1]"));
        assert!(cache.get("leader", day()).is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TaskCache::default();
        cache.put(
            "leader",
            day(),
            cache.generation(),
            Bytes::from_static(b"[]"),
        );
        if let Ok(mut entries) = cache.entries.lock() {
            for e in entries.values_mut() {
                e.at -= TTL;
            }
        }
        assert!(cache.get("leader", day()).is_none());
    }
}
