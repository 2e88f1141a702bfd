//! The directory's answer for a stage and what seating writes down: candidates, removals
//! and their reasons, and why a stage or group was skipped.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The directory's answer for one stage, read when the stage starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolution {
    /// The stage's condition (`when`), if it has one.
    pub condition: Condition,
    /// One entry per group of the stage, in plan order; a missing entry reads as empty.
    pub groups: Vec<Candidates>,
}

/// What a stage's `when` said.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Condition {
    /// No condition, or it holds: the stage runs.
    #[default]
    Holds,
    /// The condition is false: the stage is skipped.
    False,
    /// The condition could not be evaluated: the stage runs (asking is the safe side) and the
    /// reason is recorded.
    Failed(String),
}

/// The people a group's source named, before the rules apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidates {
    pub members: Vec<Candidate>,
    /// People the source named whom the directory refused (unknown, inactive).
    pub removed: Vec<Removal>,
}

/// One person a group's source named.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: String,
    /// Their delegate, when a delegation is in force at stage start and the delegate is active.
    pub delegate: Option<String>,
}

impl Candidate {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            delegate: None,
        }
    }
}

/// Someone a group's source named who does not sit in it, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Removal {
    pub principal_id: String,
    pub reason: RemovalReason,
}

/// Why a named person does not sit in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// The ticket's requester, and the process does not allow self-approval.
    Requester,
    /// The approval's `requested_by`, and the process does not allow self-approval.
    RequestedBy,
    /// Marked inactive in the directory.
    Inactive,
    /// Not in the directory.
    Unknown,
}

impl RemovalReason {
    pub(super) fn says(self) -> &'static str {
        match self {
            RemovalReason::Requester => "the requester may not approve",
            RemovalReason::RequestedBy => "whoever requested the approval may not approve it",
            RemovalReason::Inactive => "inactive in the directory",
            RemovalReason::Unknown => "not in the directory",
        }
    }

    /// True for removals that protect four eyes (as opposed to the directory's state).
    pub fn is_self(self) -> bool {
        matches!(self, RemovalReason::Requester | RemovalReason::RequestedBy)
    }
}

/// Why a stage or a group did not take part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The stage's condition (`when`) was false.
    Condition,
    /// Nobody could be asked.
    NoApprovers,
    /// The request asked another group of this `any` stage (`request_from`).
    NotAsked,
    /// The approval or the stage ended before this reached a result.
    Closed,
}
