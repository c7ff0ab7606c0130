//! A short-lived cache of user profiles for hot read paths (`GET /auth/me` on every page load).
//! Entries live two seconds, so a change made on another instance shows within that; security does
//! not depend on it (revocation is enforced by [`crate::auth::revocation`] before any handler runs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{by_id, User};
use crate::db::Db;

const TTL: Duration = Duration::from_secs(2);
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct UserCache {
    entries: Mutex<HashMap<String, (Arc<User>, Instant)>>,
}

impl UserCache {
    pub async fn get(&self, db: &Db, id: &str) -> Result<Option<Arc<User>>, sqlx::Error> {
        if let Ok(entries) = self.entries.lock() {
            if let Some((user, at)) = entries.get(id) {
                if at.elapsed() < TTL {
                    return Ok(Some(user.clone()));
                }
            }
        }
        let Some(user) = by_id(db.pool(), id).await? else {
            return Ok(None);
        };
        let user = Arc::new(user);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, (_, at)| at.elapsed() < TTL);
            }
            entries.insert(id.to_owned(), (user.clone(), Instant::now()));
        }
        Ok(Some(user))
    }

    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}
