//! The work-order state machine: `planned → in_progress ⇄ paused → completed`, and `cancelled`
//! from planned or paused. [`Status::after`] is the whole table; anything it refuses is a
//! `409 illegal_transition`. Output and stops may be reported only while a work order is open
//! (running or paused).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{conflict, ProdError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Planned,
    InProgress,
    Paused,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Complete,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Complete => "complete",
            Action::Cancel => "cancel",
        }
    }
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Planned,
        Status::InProgress,
        Status::Paused,
        Status::Completed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::InProgress => "in_progress",
            Status::Paused => "paused",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The state after an action, or `None` when the action is not allowed from this state.
    pub fn after(self, action: Action) -> Option<Status> {
        use {Action as A, Status as S};
        match (self, action) {
            (S::Planned, A::Start) => Some(S::InProgress),
            (S::InProgress, A::Pause) => Some(S::Paused),
            (S::Paused, A::Resume) => Some(S::InProgress),
            (S::InProgress | S::Paused, A::Complete) => Some(S::Completed),
            (S::Planned | S::Paused, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }

    /// Whether output and downtime may still be reported.
    pub fn is_open(self) -> bool {
        matches!(self, Status::InProgress | Status::Paused)
    }
}

/// The `409` for an action the state does not allow.
pub fn illegal(from: Status, action: Action) -> ProdError {
    conflict(
        "illegal_transition",
        format!(
            "cannot {} a work order that is {}",
            action.as_str(),
            from.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_exactly_the_documented_transitions() {
        use {Action as A, Status as S};
        let allowed = [
            (S::Planned, A::Start, S::InProgress),
            (S::InProgress, A::Pause, S::Paused),
            (S::Paused, A::Resume, S::InProgress),
            (S::InProgress, A::Complete, S::Completed),
            (S::Paused, A::Complete, S::Completed),
            (S::Planned, A::Cancel, S::Cancelled),
            (S::Paused, A::Cancel, S::Cancelled),
        ];
        for from in Status::ALL {
            for action in [A::Start, A::Pause, A::Resume, A::Complete, A::Cancel] {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|t| t.2);
                assert_eq!(from.after(action), expected, "{from:?} {action:?}");
            }
        }
    }
}
