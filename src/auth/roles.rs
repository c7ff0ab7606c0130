//! The three roles and their storage form. Roles are not hierarchical: an ADMIN is not a MANAGER
//! unless they hold both. In the database a user's roles are a sorted, comma-separated list.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Manager,
    LineLeader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Manager, Role::LineLeader];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::LineLeader => "LINE_LEADER",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sorted, de-duplicated roles.
pub fn normalize(roles: &[Role]) -> Vec<Role> {
    let mut r = roles.to_vec();
    r.sort();
    r.dedup();
    r
}

pub fn to_db(roles: &[Role]) -> String {
    normalize(roles)
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the stored form; unknown names (which no code path writes) are dropped.
pub fn from_db(text: &str) -> Vec<Role> {
    normalize(&text.split(',').filter_map(Role::parse).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_sorted_and_deduplicated() {
        let stored = to_db(&[Role::LineLeader, Role::Admin, Role::LineLeader]);
        assert_eq!(stored, "ADMIN,LINE_LEADER");
        assert_eq!(from_db(&stored), vec![Role::Admin, Role::LineLeader]);
        assert_eq!(from_db(""), Vec::<Role>::new());
        assert_eq!(Role::parse("admin"), None);
    }
}
