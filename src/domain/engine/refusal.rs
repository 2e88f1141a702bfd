//! Why an operation on an approval was refused: the engine's errors, and the reasons a
//! person cannot take a seat or take an answer back.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why an operation was refused. The approval is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// Nobody to ask in any stage and the process refuses that, or only the requester could
    /// have been asked (422).
    NoApprovers,
    /// The first stage's group has fewer members than its count and the process refuses
    /// that (422).
    NotEnoughApprovers { stage: usize, group: usize },
    /// The approval is not pending any more (409).
    Closed,
    /// This principal has no task in the current stage (403).
    NotAnApprover,
    /// This principal's task in the current stage already has an answer (409).
    AlreadyDecided,
    /// The actor already answers in this stage, for themselves or someone else (403).
    DoubleAnswer,
    /// The actor is the requester or `requested_by` and the process does not allow
    /// self-approval: they may not decide, for themselves or anyone else (403).
    SelfApproval,
    /// The process requires a comment to reject (422).
    CommentRequired,
    /// The stage is not the running one, e.g. a stale timer (409; timers may ignore it).
    StageNotCurrent,
    /// A seat cannot go to this person (422 `invalid_reassignment`, with the reason).
    InvalidReassignment(SeatRefusal),
    /// This person cannot be added to the group (422 `invalid_approver`, with the reason).
    InvalidApprover(SeatRefusal),
    /// The running stage has no group of this name (422 `unknown_group`).
    UnknownGroup,
    /// The group already reached its result; nobody can join it (409 `group_decided`).
    GroupDecided,
    /// An answer cannot be taken back (409 `revoke_not_allowed`, with the reason).
    RevokeRefused(RevokeRefusal),
    /// The approval waits for the requester's answer to a question (409 `awaiting_info`).
    AwaitingInfo,
    /// A question is already open (409 `info_request_open`).
    InfoRequestOpen,
    /// No question waits for an answer (409 `no_open_question`).
    NoOpenQuestion,
}

/// Why an answer cannot be taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeRefusal {
    /// The process sets no `revoke_window`.
    NotAllowed,
    /// The answer is older than the process's `revoke_window`.
    WindowPassed,
    /// The answer already settled its group's result.
    Counted,
    /// The seat has no answer of its own to take back (pending, reused or reassigned).
    NothingToRevoke,
    /// Someone else gave this answer; only they may take it back.
    NotYours,
}

impl RevokeRefusal {
    /// The reason in plain words.
    pub fn text(self) -> &'static str {
        match self {
            RevokeRefusal::NotAllowed => "this process does not let answers be taken back",
            RevokeRefusal::WindowPassed => "the answer is older than the process's revoke window",
            RevokeRefusal::Counted => "the answer has already decided its group",
            RevokeRefusal::NothingToRevoke => "this seat has no answer to take back",
            RevokeRefusal::NotYours => "only whoever gave the answer may take it back",
        }
    }
}

/// Why someone cannot take a seat (handed on, or added).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatRefusal {
    /// The ticket's requester or `requested_by` (four eyes).
    Party,
    /// Not an active principal of the directory.
    Inactive,
    /// No principal of the directory has this id.
    UnknownPrincipal,
    /// Already has a seat in the stage.
    AlreadySeated,
    /// Has already answered in the stage, for themselves or for someone else.
    AlreadyAnswered,
    /// A seat cannot be handed to the person who holds it.
    SamePerson,
}

impl SeatRefusal {
    /// The reason in plain words.
    pub fn text(self) -> &'static str {
        match self {
            SeatRefusal::Party => {
                "is the ticket's requester or requested the approval, and may not approve it"
            }
            SeatRefusal::Inactive => "is not an active principal",
            SeatRefusal::UnknownPrincipal => "is not a principal of the directory",
            SeatRefusal::AlreadySeated => "already has a seat in this stage",
            SeatRefusal::AlreadyAnswered => "has already answered in this stage",
            SeatRefusal::SamePerson => "already holds this seat",
        }
    }
}

impl EngineError {
    /// Stable machine-readable code for problem+json.
    pub fn code(self) -> &'static str {
        match self {
            EngineError::NoApprovers => "no_approvers",
            EngineError::NotEnoughApprovers { .. } => "not_enough_approvers",
            EngineError::Closed => "approval_closed",
            EngineError::NotAnApprover => "not_an_approver",
            EngineError::AlreadyDecided => "already_decided",
            EngineError::DoubleAnswer => "double_answer",
            EngineError::SelfApproval => "self_approval_not_allowed",
            EngineError::CommentRequired => "comment_required",
            EngineError::StageNotCurrent => "stage_not_current",
            EngineError::InvalidReassignment(_) => "invalid_reassignment",
            EngineError::InvalidApprover(_) => "invalid_approver",
            EngineError::UnknownGroup => "unknown_group",
            EngineError::GroupDecided => "group_decided",
            EngineError::RevokeRefused(_) => "revoke_not_allowed",
            EngineError::AwaitingInfo => "awaiting_info",
            EngineError::InfoRequestOpen => "info_request_open",
            EngineError::NoOpenQuestion => "no_open_question",
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineError::NoApprovers => "no stage of this process has anybody to ask",
            EngineError::NotEnoughApprovers { .. } => {
                "a group has fewer members than its count requires"
            }
            EngineError::Closed => "the approval is no longer pending",
            EngineError::NotAnApprover => "this principal is not asked in the current stage",
            EngineError::AlreadyDecided => "this principal has already answered in this stage",
            EngineError::DoubleAnswer => {
                "this principal already answers in this stage and may not answer twice"
            }
            EngineError::SelfApproval => {
                "the requester may not approve or decide on anyone's behalf"
            }
            EngineError::CommentRequired => "a rejection needs a comment",
            EngineError::StageNotCurrent => "the stage is not the running one",
            EngineError::InvalidReassignment(r) | EngineError::InvalidApprover(r) => r.text(),
            EngineError::UnknownGroup => "the running stage has no group of this name",
            EngineError::GroupDecided => "the group has already reached its result",
            EngineError::RevokeRefused(r) => r.text(),
            EngineError::AwaitingInfo => {
                "the approval waits for the requester to answer a question"
            }
            EngineError::InfoRequestOpen => "a question to the requester is already open",
            EngineError::NoOpenQuestion => "no question waits for an answer",
        })
    }
}

impl std::error::Error for EngineError {}
