//! Table and property tests of the engine.
use super::*;
use crate::domain::process::{
    Combine, ProcessSettings, Requirement, Rule, TimeoutOutcome, WhenNoApprovers, WhenShort,
};
use chrono::Duration;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use Verdict::{Approve, Reject};

fn t0() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn count(count: u32) -> Rule {
    Rule::Count { count }
}

fn req(rule: Rule) -> Requirement {
    Requirement {
        rule,
        reject_at: None,
    }
}

/// Reads the directory from the plan itself: tests write the members a group's source names
/// into the unseated plan, and the engine seats them when the stage starts.
pub(super) struct FromPlan;

impl Resolve for FromPlan {
    fn resolve(&mut self, _stage: usize, plan: &StagePlan) -> Resolution {
        Resolution {
            condition: Condition::Holds,
            groups: plan
                .groups
                .iter()
                .map(|g| Candidates {
                    members: g.members.iter().map(Candidate::new).collect(),
                    removed: vec![],
                })
                .collect(),
        }
    }
}

pub(super) fn group(name: &str, require: Requirement, members: &[&str]) -> GroupPlan {
    let mut g = GroupPlan::unseated(name, require, true);
    g.members = members.iter().map(|m| m.to_string()).collect();
    g
}

pub(super) fn stage(name: &str, combine: Combine, groups: Vec<GroupPlan>) -> StagePlan {
    StagePlan::unseated(name, combine, groups)
}

/// A stage with a single group named after it.
fn single(name: &str, rule: Rule, members: &[&str]) -> StagePlan {
    stage(
        name,
        Combine::All,
        vec![group(&name.to_lowercase(), req(rule), members)],
    )
}

fn reusing() -> Policy {
    Policy {
        reuse_previous_answers: true,
        ..capping()
    }
}

/// Starts an approval with groups capped at their size: these tests are about the group and
/// stage arithmetic; shortness (`when_short`) has tests of its own.
fn open(plan: Vec<StagePlan>) -> Approval {
    open_with(plan, capping()).0
}

fn capping() -> Policy {
    Policy {
        when_short: WhenShort::Cap,
        ..Policy::default()
    }
}

fn open_with(plan: Vec<StagePlan>, policy: Policy) -> (Approval, Vec<Effect>) {
    Approval::start(plan, policy, Parties::default(), t0(), &mut FromPlan).unwrap()
}

fn answer(a: &mut Approval, who: &str, verdict: Verdict) -> Vec<Effect> {
    a.decide(
        who,
        who,
        verdict,
        Some("because".into()),
        at(1),
        &mut FromPlan,
    )
    .unwrap()
}

fn task<'a>(a: &'a Approval, stage: usize, who: &str) -> &'a Task {
    a.tasks
        .iter()
        .find(|t| t.stage == stage && t.approver_id == who)
        .unwrap()
}

fn stage_tasks(a: &Approval, stage: usize) -> Vec<(&str, TaskState)> {
    a.tasks
        .iter()
        .filter(|t| t.stage == stage)
        .map(|t| (t.approver_id.as_str(), t.state))
        .collect()
}

fn recorded(stage: usize, who: &str, verdict: Verdict) -> Effect {
    Effect::DecisionRecorded {
        stage,
        approver_id: who.into(),
        actor_id: who.into(),
        verdict,
        comment: Some("because".into()),
    }
}

fn ended(stage: usize, status: StageStatus, reason: OutcomeReason) -> Effect {
    Effect::StageEnded {
        stage,
        status,
        reason,
    }
}

fn finished(decision: ApprovalStatus, reason: OutcomeReason, seconds: i64) -> Effect {
    Effect::Finished {
        outcome: Outcome {
            decision,
            reason,
            decided_at: at(seconds),
        },
    }
}

// ---- groups -------------------------------------------------------------------------

struct GroupCase {
    what: &'static str,
    rule: Rule,
    reject_at: Option<u32>,
    members: usize,
    answers: &'static [(usize, Verdict)],
    want: GroupStatus,
}

const fn case(
    what: &'static str,
    rule: Rule,
    reject_at: Option<u32>,
    members: usize,
    answers: &'static [(usize, Verdict)],
    want: GroupStatus,
) -> GroupCase {
    GroupCase {
        what,
        rule,
        reject_at,
        members,
        answers,
        want,
    }
}

use GroupStatus::{Approved as GA, Pending as GP, Rejected as GR};

#[rustfmt::skip]
const GROUP_CASES: &[GroupCase] = &[
    // NinjaOne: two users, count 1.
    case("count 1 of 2: either approval approves", Rule::Count { count: 1 }, None, 2, &[(1, Approve)], GA),
    case("count 1 of 2: one rejection leaves it pending", Rule::Count { count: 1 }, None, 2, &[(0, Reject)], GP),
    case("count 1 of 2: both rejections reject", Rule::Count { count: 1 }, None, 2, &[(0, Reject), (1, Reject)], GR),
    case("count 1 of 2: a rejection then an approval approves", Rule::Count { count: 1 }, None, 2, &[(0, Reject), (1, Approve)], GA),
    // NinjaOne left the ticket unchanged here; the product rejects.
    case("count 2 of 2: one rejection rejects", Rule::Count { count: 2 }, None, 2, &[(0, Reject)], GR),
    case("count 2 of 2: an approval then a rejection rejects", Rule::Count { count: 2 }, None, 2, &[(0, Approve), (1, Reject)], GR),
    case("count 2 of 2: one approval is not enough", Rule::Count { count: 2 }, None, 2, &[(0, Approve)], GP),
    case("count 2 of 2: both approvals approve", Rule::Count { count: 2 }, None, 2, &[(0, Approve), (1, Approve)], GA),
    case("first_reply: a first approval decides", Rule::FirstReply, None, 3, &[(2, Approve)], GA),
    case("first_reply: a first rejection decides", Rule::FirstReply, None, 3, &[(1, Reject)], GR),
    case("majority of 4: two approvals are not enough", Rule::Majority, None, 4, &[(0, Approve), (1, Approve)], GP),
    case("majority of 4: three approvals approve", Rule::Majority, None, 4, &[(0, Approve), (1, Approve), (2, Approve)], GA),
    case("majority of 4: one rejection leaves it pending", Rule::Majority, None, 4, &[(0, Reject)], GP),
    case("majority of 4: two rejections make 3 unreachable", Rule::Majority, None, 4, &[(0, Reject), (1, Reject)], GR),
    case("majority of 3: two approvals approve", Rule::Majority, None, 3, &[(0, Approve), (1, Approve)], GA),
    case("percent 50 of 3: one approval is not enough", Rule::Percent { percent: 50 }, None, 3, &[(0, Approve)], GP),
    case("percent 50 of 3: two approvals approve", Rule::Percent { percent: 50 }, None, 3, &[(0, Approve), (2, Approve)], GA),
    case("percent 50 of 3: one rejection leaves it pending", Rule::Percent { percent: 50 }, None, 3, &[(0, Reject)], GP),
    case("percent 50 of 3: two rejections reject", Rule::Percent { percent: 50 }, None, 3, &[(0, Reject), (1, Reject)], GR),
    case("percent 100 of 3 is everyone", Rule::Percent { percent: 100 }, None, 3, &[(0, Approve), (1, Approve)], GP),
    case("all of 3: two approvals are not enough", Rule::All, None, 3, &[(0, Approve), (1, Approve)], GP),
    case("all of 3: three approvals approve", Rule::All, None, 3, &[(0, Approve), (1, Approve), (2, Approve)], GA),
    case("all of 3: one rejection rejects", Rule::All, None, 3, &[(0, Approve), (1, Reject)], GR),
    case("reject_at 1 with count 1 of 3: one rejection rejects", Rule::Count { count: 1 }, Some(1), 3, &[(0, Reject)], GR),
    case("reject_at 2 with count 1 of 3: one rejection is not enough", Rule::Count { count: 1 }, Some(2), 3, &[(0, Reject)], GP),
    case("reject_at 2 with count 1 of 3: two rejections reject", Rule::Count { count: 1 }, Some(2), 3, &[(0, Reject), (1, Reject)], GR),
    case("reject_at 2 with count 1 of 3: an approval first wins", Rule::Count { count: 1 }, Some(2), 3, &[(0, Reject), (1, Approve)], GA),
    case("count 5 of 2 is capped: one approval is not enough", Rule::Count { count: 5 }, None, 2, &[(0, Approve)], GP),
    case("count 5 of 2 is capped: both approvals approve", Rule::Count { count: 5 }, None, 2, &[(0, Approve), (1, Approve)], GA),
    case("count 5 of 2 is capped: one rejection rejects", Rule::Count { count: 5 }, None, 2, &[(0, Reject)], GR),
    // iTop "Approval ending".
    case("ends on first approve (count 1): rejections then an approval approve", Rule::Count { count: 1 }, None, 4, &[(0, Reject), (1, Reject), (2, Reject), (3, Approve)], GA),
    case("ends on first approve (count 1): all must reject to reject", Rule::Count { count: 1 }, None, 3, &[(0, Reject), (1, Reject), (2, Reject)], GR),
    case("ends on first reject (all): approvals then a rejection reject", Rule::All, None, 4, &[(0, Approve), (1, Approve), (2, Approve), (3, Reject)], GR),
    case("ends on first reject (all): approvals but not all stay pending", Rule::All, None, 4, &[(0, Approve), (1, Approve), (2, Approve)], GP),
    case("ends on first reply: the first to act decides", Rule::FirstReply, None, 4, &[(3, Reject)], GR),
];

#[test]
fn group_requirements_follow_the_rules() {
    for c in GROUP_CASES {
        let members: Vec<String> = (0..c.members).map(|i| format!("u-{i}")).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        let require = Requirement {
            rule: c.rule,
            reject_at: c.reject_at,
        };
        let mut a = open(vec![stage(
            "S",
            Combine::All,
            vec![group("g", require, &refs)],
        )]);
        for (who, verdict) in c.answers {
            answer(&mut a, &members[*who], *verdict);
        }
        let tally = a.group_tally(0, 0).unwrap();
        assert_eq!(tally.status, c.want, "{}", c.what);
        let approvals = c.answers.iter().filter(|(_, v)| *v == Approve).count();
        assert_eq!(tally.approved, approvals, "{}", c.what);
        assert_eq!(tally.rejected, c.answers.len() - approvals, "{}", c.what);
        let (pending, status) = match c.want {
            GA => (0, ApprovalStatus::Approved),
            GR => (0, ApprovalStatus::Rejected),
            _ => (c.members - c.answers.len(), ApprovalStatus::Pending),
        };
        assert_eq!(tally.pending, pending, "{}", c.what);
        assert_eq!(a.status, status, "{}", c.what);
    }
}

#[test]
fn required_approvals_round_up_and_are_capped_by_the_group_size() {
    assert_eq!(model::required(Rule::Majority, 4), 3);
    assert_eq!(model::required(Rule::Percent { percent: 50 }, 3), 2);
    assert_eq!(model::required(Rule::Percent { percent: 1 }, 3), 1);
    assert_eq!(model::required(count(5), 2), 2);
    assert_eq!(model::required(Rule::All, 4), 4);
    assert_eq!(model::required(Rule::FirstReply, 4), 1);
    // Degenerate rules that validation refuses still need one approval.
    assert_eq!(model::required(count(0), 3), 1);
    assert_eq!(model::required(Rule::Percent { percent: 0 }, 3), 1);
    assert_eq!(model::required(Rule::All, 0), 0);
    let a = open(vec![single("S", Rule::Majority, &["a", "b", "c", "d"])]);
    assert_eq!(a.group_tally(0, 0).unwrap().required, 3);
}

#[test]
fn a_zero_reject_at_is_read_as_absent() {
    let require = Requirement {
        rule: count(1),
        reject_at: Some(0),
    };
    let mut a = open(vec![stage(
        "S",
        Combine::All,
        vec![group("g", require, &["a", "b"])],
    )]);
    assert_eq!(a.status, ApprovalStatus::Pending);
    answer(&mut a, "a", Reject);
    assert_eq!(a.status, ApprovalStatus::Pending);
}

// ---- stages -------------------------------------------------------------------------

/// Combine, whether the third group is empty, the answers, and the stage status after them.
type StageCase = (
    Combine,
    bool,
    &'static [(&'static str, Verdict)],
    StageStatus,
);

#[test]
fn stages_combine_their_groups() {
    #[rustfmt::skip]
    let cases: &[StageCase] = &[
        (Combine::All, false, &[("x", Approve)], StageStatus::Pending),
        (Combine::All, false, &[("x", Approve), ("y", Approve)], StageStatus::Pending),
        (Combine::All, false, &[("x", Approve), ("y", Approve), ("z", Approve)], StageStatus::Approved),
        (Combine::All, false, &[("x", Approve), ("y", Reject)], StageStatus::Rejected),
        (Combine::All, true, &[("x", Approve), ("y", Approve)], StageStatus::Approved),
        (Combine::Any, false, &[("x", Approve)], StageStatus::Approved),
        (Combine::Any, false, &[("x", Reject)], StageStatus::Pending),
        (Combine::Any, false, &[("x", Reject), ("y", Reject)], StageStatus::Pending),
        (Combine::Any, false, &[("x", Reject), ("y", Reject), ("z", Reject)], StageStatus::Rejected),
        (Combine::Any, false, &[("x", Reject), ("z", Approve)], StageStatus::Approved),
        (Combine::Any, true, &[("x", Reject), ("y", Reject)], StageStatus::Rejected),
    ];
    for (combine, third_empty, answers, want) in cases {
        let third: &[&str] = if *third_empty { &[] } else { &["z"] };
        let plan = vec![stage(
            "S",
            *combine,
            vec![
                group("gx", req(count(1)), &["x"]),
                group("gy", req(count(1)), &["y"]),
                group("gz", req(count(1)), third),
            ],
        )];
        let mut a = open(plan);
        for (who, verdict) in *answers {
            answer(&mut a, who, *verdict);
        }
        let case = format!("{combine:?}, third empty {third_empty}, {answers:?}");
        assert_eq!(a.stages[0].status, *want, "{case}");
        if *third_empty {
            assert_eq!(a.stages[0].groups[2], GroupStatus::Skipped, "{case}");
        }
    }
}

#[test]
fn one_decision_counts_for_every_group_that_holds_the_principal() {
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![
            group("g1", req(count(1)), &["s", "a"]),
            group("g2", req(count(1)), &["b", "s"]),
        ],
    )];
    let mut a = open(plan);
    assert_eq!(
        stage_tasks(&a, 0),
        [
            ("s", TaskState::Pending),
            ("a", TaskState::Pending),
            ("b", TaskState::Pending)
        ]
    );
    answer(&mut a, "s", Approve);
    assert_eq!(
        a.stages[0].groups,
        [GroupStatus::Approved, GroupStatus::Approved]
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn a_group_keeps_the_first_result_it_reaches() {
    // `any` keeps the stage running after the first_reply group rejects.
    let plan = vec![stage(
        "S",
        Combine::Any,
        vec![
            group("first", req(Rule::FirstReply), &["a", "b"]),
            group("pair", req(count(2)), &["b", "c"]),
            group(
                "strict",
                Requirement {
                    rule: count(1),
                    reject_at: Some(1),
                },
                &["d", "e"],
            ),
        ],
    )];
    let mut a = open(plan);
    answer(&mut a, "a", Reject);
    answer(&mut a, "d", Reject);
    assert_eq!(
        a.stages[0].groups,
        [
            GroupStatus::Rejected,
            GroupStatus::Pending,
            GroupStatus::Rejected
        ]
    );
    // b's approval also counts in `first` and e's in `strict`; neither changes their result.
    answer(&mut a, "b", Approve);
    answer(&mut a, "e", Approve);
    assert_eq!(a.group_tally(0, 0).unwrap().status, GroupStatus::Rejected);
    assert_eq!(a.group_tally(0, 0).unwrap().approved, 1);
    assert_eq!(a.group_tally(0, 2).unwrap().status, GroupStatus::Rejected);
    assert_eq!(a.status, ApprovalStatus::Pending);
    answer(&mut a, "c", Approve);
    assert_eq!(
        a.stages[0].groups,
        [
            GroupStatus::Rejected,
            GroupStatus::Approved,
            GroupStatus::Rejected
        ]
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn undecided_groups_are_skipped_when_their_stage_ends() {
    let plan = vec![stage(
        "S",
        Combine::Any,
        vec![
            group("g1", req(count(1)), &["a"]),
            group("g2", req(count(1)), &["b"]),
        ],
    )];
    let mut a = open(plan);
    answer(&mut a, "a", Approve);
    assert_eq!(
        a.stages[0].groups,
        [GroupStatus::Approved, GroupStatus::Skipped]
    );
    assert_eq!(task(&a, 0, "b").state, TaskState::Superseded);
}

#[test]
fn request_from_narrows_an_any_stage_to_one_group() {
    let mut cfo = group("cfo", req(count(1)), &["u-9", "u-3"]);
    cfo.asked = false;
    let plan = vec![stage(
        "Finance",
        Combine::Any,
        vec![group("finance", req(count(2)), &["u-1", "u-3"]), cfo],
    )];
    let mut a = open(plan);
    assert_eq!(
        stage_tasks(&a, 0),
        [("u-1", TaskState::Pending), ("u-3", TaskState::Pending)]
    );
    assert_eq!(
        a.stages[0].groups,
        [GroupStatus::Pending, GroupStatus::Skipped]
    );
    let skipped = a.group_tally(0, 1).unwrap();
    assert_eq!((skipped.required, skipped.pending), (0, 0));
    assert_eq!(
        a.decide("u-9", "u-9", Approve, None, at(1), &mut FromPlan),
        Err(EngineError::NotAnApprover)
    );
    // u-3 is asked through finance; their answer does not make the skipped cfo approve.
    answer(&mut a, "u-3", Approve);
    assert_eq!(a.status, ApprovalStatus::Pending);
    answer(&mut a, "u-1", Approve);
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(
        a.stages[0].groups,
        [GroupStatus::Approved, GroupStatus::Skipped]
    );
}

#[test]
fn a_stage_whose_asked_group_is_empty_is_skipped() {
    let mut other = group("other", req(count(1)), &["x"]);
    other.asked = false;
    let plan = vec![
        stage(
            "Narrowed",
            Combine::Any,
            vec![group("named", req(count(1)), &[]), other],
        ),
        single("Next", count(1), &["y"]),
    ];
    let a = open(plan);
    assert_eq!(a.stages[0].status, StageStatus::Skipped);
    assert_eq!(a.current_stage, Some(1));
    assert!(stage_tasks(&a, 0).is_empty());
}

// ---- start ----------------------------------------------------------------------------

#[test]
fn members_are_deduplicated_keeping_the_first_seen_order() {
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![
            group("g", req(Rule::All), &["b", "a", "b", "c", "a"]),
            group("h", req(count(1)), &["c", "d"]),
        ],
    )];
    let a = open(plan);
    assert_eq!(a.plan[0].groups[0].members, ["b", "a", "c"]);
    let names: Vec<&str> = stage_tasks(&a, 0).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["b", "a", "c", "d"]);
    // `all` of three, not five: duplicates must not inflate the requirement.
    assert_eq!(a.group_tally(0, 0).unwrap().required, 3);
}

#[test]
fn tasks_are_created_when_their_stage_starts() {
    let (mut a, effects) = open_with(
        vec![
            single("Manager", count(1), &["m"]),
            single("Finance", count(1), &["f", "m"]),
        ],
        Policy::default(),
    );
    assert_eq!(effects, [Effect::StageStarted { stage: 0 }]);
    assert_eq!(stage_tasks(&a, 1), []);
    assert!(!a.plan[1].resolved);
    assert_eq!(a.stages[1].status, StageStatus::Waiting);
    assert_eq!(a.stages[1].groups, [GroupStatus::Waiting]);
    assert_eq!(a.stages[0].started_at, Some(t0()));
    assert_eq!(a.pending_approvers(), ["m"]);
    answer(&mut a, "m", Approve);
    assert!(a.plan[1].resolved);
    assert_eq!(
        stage_tasks(&a, 1),
        [("f", TaskState::Pending), ("m", TaskState::Pending)]
    );
}

#[test]
fn empty_stages_are_skipped() {
    let plan = vec![
        single("Empty", count(1), &[]),
        single("First", count(1), &["a"]),
        stage(
            "AlsoEmpty",
            Combine::Any,
            vec![
                group("e1", req(Rule::All), &[]),
                group("e2", req(Rule::All), &[]),
            ],
        ),
        single("Last", count(1), &["b"]),
    ];
    let (mut a, effects) = open_with(plan, capping());
    assert_eq!(
        effects,
        [
            Effect::StageSkipped {
                stage: 0,
                reason: SkipReason::NoApprovers
            },
            Effect::StageStarted { stage: 1 }
        ]
    );
    assert_eq!(a.current_stage, Some(1));
    assert_eq!(a.stages[0].status, StageStatus::Skipped);
    assert_eq!(a.plan[0].skip_reason, Some(SkipReason::NoApprovers));
    let effects = answer(&mut a, "a", Approve);
    assert!(effects.contains(&Effect::StageSkipped {
        stage: 2,
        reason: SkipReason::NoApprovers
    }));
    assert_eq!(a.stages[2].status, StageStatus::Skipped);
    assert!(effects.contains(&Effect::StageAdvanced { from: 1, to: 3 }));
    assert_eq!(a.current_stage, Some(3));
    answer(&mut a, "b", Approve);
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn no_approvers_is_refused_by_default() {
    let plan = vec![single("A", count(1), &[]), single("B", Rule::All, &[])];
    assert_eq!(
        Approval::start(
            plan,
            Policy::default(),
            Parties::default(),
            t0(),
            &mut FromPlan
        )
        .unwrap_err(),
        EngineError::NoApprovers
    );
    assert_eq!(
        Approval::start(
            Vec::new(),
            Policy::default(),
            Parties::default(),
            t0(),
            &mut FromPlan
        )
        .unwrap_err(),
        EngineError::NoApprovers
    );
}

#[test]
fn no_approvers_approves_at_once_when_the_process_says_so() {
    let policy = Policy {
        when_no_approvers: WhenNoApprovers::Approve,
        ..Policy::default()
    };
    let (a, effects) = open_with(
        vec![single("A", count(1), &[]), single("B", Rule::All, &[])],
        policy,
    );
    assert_eq!(
        effects,
        [finished(
            ApprovalStatus::Approved,
            OutcomeReason::Decisions,
            0
        )]
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.current_stage, None);
    assert!(a.tasks.is_empty());
    assert!(a.stages.iter().all(|s| s.status == StageStatus::Skipped));
    assert_eq!(
        a.outcome.as_ref().map(|o| o.reason),
        Some(OutcomeReason::Decisions)
    );
    // The policy only matters when nobody is asked.
    let (a, _) = open_with(vec![single("A", count(1), &["x"])], policy);
    assert_eq!(a.status, ApprovalStatus::Pending);
}

// ---- moving on ------------------------------------------------------------------------

fn two_stages() -> Vec<StagePlan> {
    vec![
        single("Manager", count(1), &["u-1", "u-2"]),
        single("Finance", count(1), &["u-3"]),
    ]
}

#[test]
fn approving_a_stage_starts_the_next_and_supersedes_its_leftovers() {
    let mut a = open(two_stages());
    let effects = answer(&mut a, "u-1", Approve);
    assert_eq!(
        effects,
        [
            recorded(0, "u-1", Approve),
            ended(0, StageStatus::Approved, OutcomeReason::Decisions),
            Effect::TasksSuperseded { count: 1 },
            Effect::StageAdvanced { from: 0, to: 1 },
            Effect::StageStarted { stage: 1 },
        ]
    );
    assert_eq!(a.current_stage, Some(1));
    assert_eq!(a.stages[0].ended_at, Some(at(1)));
    assert_eq!(a.stages[0].reason, Some(OutcomeReason::Decisions));
    assert_eq!(a.stages[1].status, StageStatus::Pending);
    assert_eq!(a.stages[1].started_at, Some(at(1)));
    assert_eq!(task(&a, 0, "u-2").state, TaskState::Superseded);
    assert_eq!(
        a.decide("u-2", "u-2", Approve, None, at(2), &mut FromPlan),
        Err(EngineError::NotAnApprover)
    );
    assert_eq!(a.outcome, None);
}

#[test]
fn the_last_stage_approved_approves_the_approval() {
    let mut a = open(two_stages());
    answer(&mut a, "u-2", Approve);
    let effects = a
        .decide("u-3", "u-3", Approve, None, at(5), &mut FromPlan)
        .unwrap();
    assert_eq!(
        effects,
        [
            Effect::DecisionRecorded {
                stage: 1,
                approver_id: "u-3".into(),
                actor_id: "u-3".into(),
                verdict: Approve,
                comment: None,
            },
            ended(1, StageStatus::Approved, OutcomeReason::Decisions),
            finished(ApprovalStatus::Approved, OutcomeReason::Decisions, 5),
        ]
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.current_stage, None);
}

#[test]
fn the_first_stage_rejected_rejects_and_supersedes_every_stage() {
    let plan = vec![
        single("Manager", count(2), &["u-1", "u-2"]),
        single("Finance", count(1), &["u-3"]),
    ];
    let mut a = open(plan);
    let effects = answer(&mut a, "u-1", Reject);
    assert_eq!(
        effects,
        [
            recorded(0, "u-1", Reject),
            ended(0, StageStatus::Rejected, OutcomeReason::Decisions),
            Effect::TasksSuperseded { count: 1 },
            finished(ApprovalStatus::Rejected, OutcomeReason::Decisions, 1),
        ]
    );
    assert_eq!(a.stages[1].status, StageStatus::Skipped);
    assert_eq!(a.stages[1].groups, [GroupStatus::Skipped]);
    assert_eq!(a.plan[1].skip_reason, Some(SkipReason::Closed));
    assert!(
        a.tasks
            .iter()
            .all(|t| t.stage == 0 && t.state != TaskState::Pending)
    );
}

#[test]
fn ninjaone_count_one_records_the_first_decision_only() {
    let mut a = open(vec![single("S", count(1), &["u-1", "u-2"])]);
    answer(&mut a, "u-2", Approve);
    assert_eq!(
        a.decide(
            "u-1",
            "u-1",
            Reject,
            Some("no".into()),
            at(2),
            &mut FromPlan
        ),
        Err(EngineError::Closed)
    );
    assert_eq!(
        a.outcome.as_ref().map(|o| o.decision),
        Some(ApprovalStatus::Approved)
    );
}

// ---- guards ---------------------------------------------------------------------------

#[test]
fn a_decision_records_who_answered_for_whom() {
    let mut a = open(two_stages());
    a.decide(
        "u-1",
        "sub-7",
        Reject,
        Some("  not now ".into()),
        at(3),
        &mut FromPlan,
    )
    .unwrap();
    let t = task(&a, 0, "u-1");
    assert_eq!(t.state, TaskState::Rejected);
    assert_eq!(t.verdict, Some(Reject));
    assert_eq!(t.decided_at, Some(at(3)));
    assert_eq!(t.comment.as_deref(), Some("  not now "));
    assert_eq!(t.actor_id.as_deref(), Some("sub-7"));
    assert_eq!(t.on_behalf_of.as_deref(), Some("u-1"));
    a.decide(
        "u-2",
        "u-2",
        Reject,
        Some("   ".into()),
        at(3),
        &mut FromPlan,
    )
    .unwrap();
    let t = task(&a, 0, "u-2");
    assert_eq!(
        (t.on_behalf_of.as_deref(), t.comment.as_deref()),
        (None, None)
    );
}

#[test]
fn decisions_are_guarded_in_order_and_refusals_change_nothing() {
    let policy = Policy {
        reject_requires_comment: true,
        ..Policy::default()
    };
    let (mut a, _) = open_with(
        vec![
            single("Manager", count(2), &["u-1", "u-2", "u-3"]),
            single("Finance", count(1), &["u-4"]),
        ],
        policy,
    );
    a.decide("u-1", "u-1", Approve, None, at(1), &mut FromPlan)
        .unwrap();
    let before = a.clone();
    let refused: &[(&str, Verdict, Option<&str>, EngineError)] = &[
        ("stranger", Reject, None, EngineError::NotAnApprover),
        ("u-4", Approve, None, EngineError::NotAnApprover),
        ("u-1", Reject, None, EngineError::AlreadyDecided),
        ("u-1", Approve, None, EngineError::AlreadyDecided),
        ("u-2", Reject, None, EngineError::CommentRequired),
        ("u-2", Reject, Some(""), EngineError::CommentRequired),
        ("u-2", Reject, Some(" \n\t"), EngineError::CommentRequired),
    ];
    for (who, verdict, comment, want) in refused {
        let got = a.decide(
            who,
            who,
            *verdict,
            comment.map(str::to_string),
            at(2),
            &mut FromPlan,
        );
        assert_eq!(got, Err(*want), "{who} {verdict:?} {comment:?}");
        assert_eq!(a, before, "{who} {verdict:?} {comment:?}");
    }
    a.decide(
        "u-2",
        "u-2",
        Reject,
        Some("too dear".into()),
        at(2),
        &mut FromPlan,
    )
    .unwrap();
    a.decide(
        "u-3",
        "u-3",
        Reject,
        Some("agreed".into()),
        at(2),
        &mut FromPlan,
    )
    .unwrap();
    assert_eq!(a.status, ApprovalStatus::Rejected);
    let closed = a.clone();
    // Closed comes first, even for a stranger or a missing comment.
    for who in ["stranger", "u-1", "u-4"] {
        assert_eq!(
            a.decide(who, who, Reject, None, at(3), &mut FromPlan),
            Err(EngineError::Closed)
        );
    }
    assert_eq!(a, closed);
}

#[test]
fn approving_needs_no_comment_when_rejecting_does() {
    let policy = Policy {
        reject_requires_comment: true,
        ..Policy::default()
    };
    let (mut a, _) = open_with(vec![single("S", count(1), &["u-1"])], policy);
    a.decide("u-1", "u-1", Approve, None, at(1), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
}

// ---- reuse ----------------------------------------------------------------------------

#[test]
fn reused_answers_cascade_through_later_stages() {
    let plan = vec![
        single("One", count(1), &["a", "b"]),
        single("Two", count(1), &["c", "a"]),
        single("Three", Rule::All, &["a"]),
    ];
    let (mut a, _) = open_with(plan, reusing());
    let effects = answer(&mut a, "a", Approve);
    assert_eq!(
        effects,
        [
            recorded(0, "a", Approve),
            ended(0, StageStatus::Approved, OutcomeReason::Decisions),
            Effect::TasksSuperseded { count: 1 },
            Effect::StageAdvanced { from: 0, to: 1 },
            Effect::StageStarted { stage: 1 },
            Effect::AnswerReused {
                stage: 1,
                approver_id: "a".into(),
                verdict: Approve
            },
            ended(1, StageStatus::Approved, OutcomeReason::Decisions),
            Effect::TasksSuperseded { count: 1 },
            Effect::StageAdvanced { from: 1, to: 2 },
            Effect::StageStarted { stage: 2 },
            Effect::AnswerReused {
                stage: 2,
                approver_id: "a".into(),
                verdict: Approve
            },
            ended(2, StageStatus::Approved, OutcomeReason::Decisions),
            finished(ApprovalStatus::Approved, OutcomeReason::Decisions, 1),
        ]
    );
    let reused = task(&a, 2, "a");
    assert_eq!(
        (reused.state, reused.verdict, reused.decided_at),
        (TaskState::Reused, Some(Approve), Some(at(1)))
    );
    assert_eq!(task(&a, 1, "c").state, TaskState::Superseded);
}

#[test]
fn a_reused_rejection_counts_after_a_timeout() {
    let plan = vec![
        single("One", count(1), &["a", "b"]),
        single("Two", count(1), &["a"]),
    ];
    let (mut a, _) = open_with(plan, reusing());
    answer(&mut a, "a", Reject);
    a.time_out(0, TimeoutOutcome::Approve, at(9), &mut FromPlan)
        .unwrap();
    assert_eq!(a.stages[0].reason, Some(OutcomeReason::Timeout));
    assert_eq!(task(&a, 1, "a").state, TaskState::Reused);
    assert_eq!(a.status, ApprovalStatus::Rejected);
    // The final stage was decided by an answer, not by the clock.
    assert_eq!(
        a.outcome.as_ref().map(|o| o.reason),
        Some(OutcomeReason::Decisions)
    );
}

#[test]
fn answers_are_not_reused_without_the_setting() {
    let mut a = open(vec![
        single("One", count(1), &["a"]),
        single("Two", count(1), &["a"]),
    ]);
    answer(&mut a, "a", Approve);
    assert_eq!(task(&a, 1, "a").state, TaskState::Pending);
    assert_eq!(a.pending_approvers(), ["a"]);
}

#[test]
fn only_answers_given_are_reused_and_a_reused_task_takes_no_second_answer() {
    let plan = vec![
        single("One", count(1), &["a", "b"]),
        stage(
            "Two",
            Combine::All,
            vec![group("g", req(count(2)), &["a", "b", "c"])],
        ),
    ];
    let (mut a, _) = open_with(plan, reusing());
    answer(&mut a, "a", Approve);
    assert_eq!(task(&a, 1, "a").state, TaskState::Reused);
    // b's task in stage one was superseded, not answered.
    assert_eq!(task(&a, 1, "b").state, TaskState::Pending);
    assert_eq!(
        a.decide("a", "a", Reject, None, at(2), &mut FromPlan),
        Err(EngineError::AlreadyDecided)
    );
    assert_eq!(a.waiting_for(), ["Two: 1 more approval from b, c"]);
    answer(&mut a, "c", Approve);
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn reuse_stops_at_the_answer_that_decides_the_stage() {
    let plan = vec![
        single("One", Rule::All, &["a", "b"]),
        single("Two", Rule::FirstReply, &["b", "a"]),
    ];
    let (mut a, _) = open_with(plan, reusing());
    answer(&mut a, "a", Approve);
    let effects = answer(&mut a, "b", Approve);
    let reused = effects
        .iter()
        .filter(|e| matches!(e, Effect::AnswerReused { .. }))
        .count();
    assert_eq!(reused, 1);
    assert_eq!(
        stage_tasks(&a, 1),
        [("b", TaskState::Reused), ("a", TaskState::Superseded)]
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
}

// ---- admin actions and time -----------------------------------------------------------

#[test]
fn cancelling_supersedes_pending_tasks_and_gives_no_outcome() {
    let mut a = open(two_stages());
    answer(&mut a, "u-1", Approve);
    let effects = a.cancel("wrong ticket", Some("admin"), at(4)).unwrap();
    assert_eq!(
        effects,
        [
            Effect::TasksSuperseded { count: 1 },
            Effect::Cancelled {
                reason: "wrong ticket".into(),
                actor_id: Some("admin".into()),
            },
        ]
    );
    assert_eq!(a.status, ApprovalStatus::Cancelled);
    assert_eq!(a.outcome, None);
    assert_eq!(a.current_stage, None);
    assert_eq!(a.stages[1].status, StageStatus::Skipped);
    assert_eq!(a.stages[1].ended_at, Some(at(4)));
    assert!(a.tasks.iter().all(|t| t.state != TaskState::Pending));
    assert!(a.waiting_for().is_empty() && a.pending_approvers().is_empty());
    let closed = a.clone();
    assert_eq!(a.cancel("again", None, at(5)), Err(EngineError::Closed));
    assert_eq!(a.bypass(Approve, at(5)), Err(EngineError::Closed));
    assert_eq!(
        a.decide("u-3", "u-3", Approve, None, at(5), &mut FromPlan),
        Err(EngineError::Closed)
    );
    assert_eq!(a, closed);
}

#[test]
fn bypass_forces_the_outcome_whatever_stages_remain() {
    for verdict in [Approve, Reject] {
        let mut a = open(two_stages());
        let effects = a.bypass(verdict, at(2)).unwrap();
        let (stage_status, decision) = match verdict {
            Approve => (StageStatus::Approved, ApprovalStatus::Approved),
            Reject => (StageStatus::Rejected, ApprovalStatus::Rejected),
        };
        assert_eq!(
            effects,
            [
                ended(0, stage_status, OutcomeReason::Bypass),
                Effect::TasksSuperseded { count: 2 },
                finished(decision, OutcomeReason::Bypass, 2),
            ]
        );
        assert_eq!(a.stages[0].reason, Some(OutcomeReason::Bypass));
        assert_eq!(a.stages[1].status, StageStatus::Skipped);
        assert_eq!(a.status, decision);
        assert_eq!(a.bypass(verdict, at(3)), Err(EngineError::Closed));
    }
}

#[test]
fn a_timeout_ends_the_stage_with_its_default_outcome() {
    let mut a = open(two_stages());
    let effects = a
        .time_out(0, TimeoutOutcome::Approve, at(7), &mut FromPlan)
        .unwrap();
    assert_eq!(
        effects,
        [
            ended(0, StageStatus::Approved, OutcomeReason::Timeout),
            Effect::TasksSuperseded { count: 2 },
            Effect::StageAdvanced { from: 0, to: 1 },
            Effect::StageStarted { stage: 1 },
        ]
    );
    let effects = a
        .time_out(1, TimeoutOutcome::Approve, at(8), &mut FromPlan)
        .unwrap();
    assert_eq!(
        effects,
        [
            ended(1, StageStatus::Approved, OutcomeReason::Timeout),
            Effect::TasksSuperseded { count: 1 },
            finished(ApprovalStatus::Approved, OutcomeReason::Timeout, 8),
        ]
    );

    // iTop: some rejections but not all, then the delay expires: the default decides.
    let mut a = open(vec![
        single("S", count(1), &["a", "b", "c"]),
        single("T", count(1), &["d"]),
    ]);
    answer(&mut a, "a", Reject);
    answer(&mut a, "b", Reject);
    a.time_out(0, TimeoutOutcome::Reject, at(9), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Rejected);
    assert_eq!(
        a.outcome.as_ref().map(|o| o.reason),
        Some(OutcomeReason::Timeout)
    );
    // Stage T never started: nobody in it was asked.
    assert!(a.tasks.iter().all(|t| t.stage == 0));
}

#[test]
fn a_stale_timer_is_refused_without_change() {
    let mut a = open(two_stages());
    let before = a.clone();
    assert_eq!(
        a.time_out(1, TimeoutOutcome::Reject, at(1), &mut FromPlan),
        Err(EngineError::StageNotCurrent)
    );
    assert_eq!(
        a.time_out(7, TimeoutOutcome::Reject, at(1), &mut FromPlan),
        Err(EngineError::StageNotCurrent)
    );
    assert_eq!(a, before);
    answer(&mut a, "u-1", Approve);
    let before = a.clone();
    assert_eq!(
        a.time_out(0, TimeoutOutcome::Reject, at(2), &mut FromPlan),
        Err(EngineError::StageNotCurrent)
    );
    assert_eq!(a, before);
    answer(&mut a, "u-3", Approve);
    assert_eq!(
        a.time_out(1, TimeoutOutcome::Reject, at(3), &mut FromPlan),
        Err(EngineError::StageNotCurrent)
    );
    assert_eq!(a.status, ApprovalStatus::Approved);
}

// ---- the view -------------------------------------------------------------------------

#[test]
fn waiting_for_says_who_is_missing_in_plain_words() {
    let plan = vec![
        single("Manager", count(1), &["u-42"]),
        stage(
            "Finance",
            Combine::All,
            vec![
                group("finance", req(count(2)), &["u-1", "u-2", "u-3"]),
                group("cfo", req(Rule::FirstReply), &["u-9"]),
                group("nobody", req(Rule::All), &[]),
            ],
        ),
    ];
    let mut a = open(plan);
    assert_eq!(a.waiting_for(), ["Manager: 1 more approval from u-42"]);
    answer(&mut a, "u-42", Approve);
    assert_eq!(
        a.waiting_for(),
        [
            "Finance (finance): 2 more approvals from u-1, u-2, u-3",
            "Finance (cfo): an answer from u-9"
        ]
    );
    answer(&mut a, "u-2", Approve);
    answer(&mut a, "u-9", Approve);
    assert_eq!(
        a.waiting_for(),
        ["Finance (finance): 1 more approval from u-1, u-3"]
    );
    assert_eq!(a.pending_approvers(), ["u-1", "u-3"]);
    let tally = a.group_tally(1, 0).unwrap();
    assert_eq!(
        tally,
        GroupTally {
            status: GroupStatus::Pending,
            required: 2,
            approved: 1,
            rejected: 0,
            pending: 2
        }
    );
    assert_eq!(a.group_tally(1, 2).unwrap().status, GroupStatus::Skipped);
    assert_eq!(a.group_tally(1, 3), None);
    assert_eq!(a.group_tally(2, 0), None);
    answer(&mut a, "u-3", Approve);
    assert!(a.waiting_for().is_empty());
    assert!(a.pending_approvers().is_empty());
}

#[test]
fn the_state_serializes_with_the_api_names() {
    let mut a = open(two_stages());
    answer(&mut a, "u-1", Approve);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["status"], "pending");
    assert_eq!(json["stages"][0]["status"], "approved");
    assert_eq!(json["stages"][0]["reason"], "decisions");
    assert_eq!(json["stages"][1]["groups"][0], "pending");
    assert_eq!(json["tasks"][0]["verdict"], "approve");
    assert_eq!(json["tasks"][1]["state"], "superseded");
    assert_eq!(json["policy"]["when_no_approvers"], "refuse");
    let back: Approval = serde_json::from_value(json).unwrap();
    assert_eq!(back, a);
    let effect = serde_json::to_value(Effect::StageAdvanced { from: 0, to: 1 }).unwrap();
    assert_eq!(
        effect,
        serde_json::json!({"type": "stage_advanced", "from": 0, "to": 1})
    );
    assert_eq!(serde_json::to_value(Verdict::Reject).unwrap(), "reject");
    assert_eq!(
        serde_json::to_value(OutcomeReason::Bypass).unwrap(),
        "bypass"
    );
    assert_eq!(serde_json::to_value(TaskState::Reused).unwrap(), "reused");
}

#[test]
fn the_policy_comes_from_the_process_settings() {
    let settings = ProcessSettings {
        reuse_previous_answers: true,
        reject_requires_comment: true,
        when_no_approvers: WhenNoApprovers::Approve,
        ..ProcessSettings::default()
    };
    assert_eq!(
        Policy::from(&settings),
        Policy {
            reuse_previous_answers: true,
            reject_requires_comment: true,
            when_no_approvers: WhenNoApprovers::Approve,
            allow_self_approval: false,
            when_short: WhenShort::Refuse,
        }
    );
    assert_eq!(EngineError::NotAnApprover.code(), "not_an_approver");
}

// ---- properties -----------------------------------------------------------------------

/// An independent model of the rules: it keeps only the ordered answers of each stage and
/// replays them from scratch to find each group's first result, then each stage's.
struct Model {
    plan: Vec<StagePlan>,
    policy: Policy,
    status: ApprovalStatus,
    outcome: Option<(ApprovalStatus, OutcomeReason)>,
    current: Option<usize>,
    /// Per stage: (approver, verdict, actor) in the order given.
    answers: Vec<Vec<(String, Verdict, String)>>,
    /// Stages that started (and so have tasks).
    entered: Vec<bool>,
}

fn unique(ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// Approvals a group of `n` people needs, or None when it is short of its count and the
/// policy refuses that.
fn model_required(rule: Rule, n: usize, policy: Policy) -> Option<usize> {
    if n == 0 {
        return Some(0);
    }
    let k = match rule {
        Rule::Count { count } => count as usize,
        Rule::All => n,
        Rule::Majority => (0..=n).find(|k| 2 * k > n).unwrap(),
        Rule::Percent { percent } => (0..=n).find(|k| 100 * k >= n * percent as usize).unwrap(),
        Rule::FirstReply => 1,
    };
    if matches!(rule, Rule::Count { .. }) && k > n && policy.when_short == WhenShort::Refuse {
        return None;
    }
    Some(k.min(n).max(1))
}

/// Replays a group's answers and returns the first result any prefix reaches.
fn model_group(
    members: &[String],
    require: &Requirement,
    required: usize,
    answers: &[(String, Verdict, String)],
) -> Option<Verdict> {
    let n = members.len();
    for k in 0..=answers.len() {
        let mine = answers[..k]
            .iter()
            .filter(|(who, _, _)| members.contains(who));
        let a = mine.clone().filter(|(_, v, _)| *v == Approve).count();
        let r = mine.filter(|(_, v, _)| *v == Reject).count();
        let p = n - a - r;
        if a >= required {
            return Some(Approve);
        }
        let first_reply = require.rule == Rule::FirstReply && r >= 1;
        let reject_at = require.reject_at.is_some_and(|x| x > 0 && r >= x as usize);
        if a + p < required || first_reply || reject_at {
            return Some(Reject);
        }
    }
    None
}

/// How a stage comes out when it would start.
enum ModelOpen {
    Ready,
    Skip,
    Short(usize),
}

impl Model {
    fn start(plan: Vec<StagePlan>, policy: Policy) -> Result<Model, EngineError> {
        let mut m = Model {
            answers: vec![Vec::new(); plan.len()],
            entered: vec![false; plan.len()],
            plan,
            policy,
            status: ApprovalStatus::Pending,
            outcome: None,
            current: None,
        };
        let anyone = (0..m.plan.len()).any(|s| !m.asked(s).is_empty());
        if !anyone {
            if policy.when_no_approvers == WhenNoApprovers::Approve {
                m.finish(Approve, OutcomeReason::Decisions);
                return Ok(m);
            }
            return Err(EngineError::NoApprovers);
        }
        let mut from = 0;
        loop {
            match m.open(from) {
                ModelOpen::Skip => from += 1,
                ModelOpen::Short(group) => {
                    return Err(EngineError::NotEnoughApprovers { stage: from, group });
                }
                ModelOpen::Ready => {
                    m.enter(from);
                    return Ok(m);
                }
            }
        }
    }

    fn asked(&self, stage: usize) -> Vec<String> {
        let all: Vec<String> = self.plan[stage]
            .groups
            .iter()
            .filter(|g| g.asked)
            .flat_map(|g| g.members.clone())
            .collect();
        unique(&all)
    }

    fn open(&self, stage: usize) -> ModelOpen {
        for (g, group) in self.plan[stage].groups.iter().enumerate() {
            if group.asked
                && model_required(
                    group.require.rule,
                    unique(&group.members).len(),
                    self.policy,
                )
                .is_none()
            {
                return ModelOpen::Short(g);
            }
        }
        if self.asked(stage).is_empty() {
            ModelOpen::Skip
        } else {
            ModelOpen::Ready
        }
    }

    fn stage_result(&self, stage: usize) -> Option<Verdict> {
        let results: Vec<Option<Verdict>> = self.plan[stage]
            .groups
            .iter()
            .filter(|g| g.asked && !g.members.is_empty())
            .map(|g| {
                let members = unique(&g.members);
                let required = model_required(g.require.rule, members.len(), self.policy).unwrap();
                model_group(&members, &g.require, required, &self.answers[stage])
            })
            .collect();
        let any = |v: Verdict| results.contains(&Some(v));
        let every = |v: Verdict| results.iter().all(|r| *r == Some(v));
        match self.plan[stage].combine {
            Combine::All if any(Reject) => Some(Reject),
            Combine::All if every(Approve) => Some(Approve),
            Combine::Any if any(Approve) => Some(Approve),
            Combine::Any if every(Reject) => Some(Reject),
            _ => None,
        }
    }

    fn enter(&mut self, stage: usize) {
        self.current = Some(stage);
        self.entered[stage] = true;
        if !self.policy.reuse_previous_answers {
            return;
        }
        for who in self.asked(stage) {
            // Only a person's own answer for their own seat is reused.
            let earlier = (0..stage).rev().find_map(|s| {
                self.answers[s]
                    .iter()
                    .find(|(w, _, actor)| *w == who && *actor == who)
                    .map(|(_, v, _)| *v)
            });
            if let Some(v) = earlier {
                self.answers[stage].push((who.clone(), v, who));
                if let Some(result) = self.stage_result(stage) {
                    self.conclude(stage, result, OutcomeReason::Decisions);
                    return;
                }
            }
        }
    }

    fn conclude(&mut self, stage: usize, result: Verdict, reason: OutcomeReason) {
        if result == Reject {
            return self.finish(result, reason);
        }
        let mut next = stage + 1;
        while next < self.plan.len() {
            match self.open(next) {
                ModelOpen::Skip => next += 1,
                ModelOpen::Short(_) => {
                    return self.finish(Reject, OutcomeReason::NotEnoughApprovers);
                }
                ModelOpen::Ready => return self.enter(next),
            }
        }
        self.finish(result, reason)
    }

    fn finish(&mut self, v: Verdict, reason: OutcomeReason) {
        self.status = match v {
            Approve => ApprovalStatus::Approved,
            Reject => ApprovalStatus::Rejected,
        };
        self.outcome = Some((self.status, reason));
        self.current = None;
    }

    fn decide(
        &mut self,
        who: &str,
        actor: &str,
        v: Verdict,
        has_comment: bool,
    ) -> Result<(), EngineError> {
        if self.status != ApprovalStatus::Pending {
            return Err(EngineError::Closed);
        }
        let stage = self.current.unwrap();
        let asked = self.asked(stage);
        if !asked.iter().any(|w| w == who) {
            return Err(EngineError::NotAnApprover);
        }
        if self.answers[stage].iter().any(|(w, _, _)| w == who) {
            return Err(EngineError::AlreadyDecided);
        }
        if actor != who
            && (asked.iter().any(|w| w == actor)
                || self.answers[stage].iter().any(|(_, _, a)| a == actor))
        {
            return Err(EngineError::DoubleAnswer);
        }
        if v == Reject && self.policy.reject_requires_comment && !has_comment {
            return Err(EngineError::CommentRequired);
        }
        self.answers[stage].push((who.to_string(), v, actor.to_string()));
        if let Some(result) = self.stage_result(stage) {
            self.conclude(stage, result, OutcomeReason::Decisions);
        }
        Ok(())
    }

    fn time_out(&mut self, stage: usize, v: Verdict) -> Result<(), EngineError> {
        if self.status != ApprovalStatus::Pending || self.current != Some(stage) {
            return Err(EngineError::StageNotCurrent);
        }
        self.conclude(stage, v, OutcomeReason::Timeout);
        Ok(())
    }

    fn bypass(&mut self, v: Verdict) -> Result<(), EngineError> {
        if self.status != ApprovalStatus::Pending {
            return Err(EngineError::Closed);
        }
        self.finish(v, OutcomeReason::Bypass);
        Ok(())
    }

    fn cancel(&mut self) -> Result<(), EngineError> {
        if self.status != ApprovalStatus::Pending {
            return Err(EngineError::Closed);
        }
        self.status = ApprovalStatus::Cancelled;
        self.current = None;
        Ok(())
    }

    fn withdraw(&mut self) -> Result<(), EngineError> {
        if self.status != ApprovalStatus::Pending {
            return Err(EngineError::Closed);
        }
        self.status = ApprovalStatus::Withdrawn;
        self.current = None;
        self.outcome = Some((ApprovalStatus::Withdrawn, OutcomeReason::Withdrawn));
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Decide {
        who: usize,
        verdict: Verdict,
        comment: u8,
        /// Who answers: None the approver; Some(k) u-k, or an outside delegate for k = POOL.
        proxy: Option<usize>,
    },
    TimeOut {
        stage: usize,
        outcome: TimeoutOutcome,
    },
    Bypass(Verdict),
    Cancel,
    Withdraw,
}

/// Principals u-0..u-5 may be members; u-6 never is.
const POOL: usize = 7;

/// Leans towards approvals so that runs often get past their first stage.
fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![3 => Just(Approve), 1 => Just(Reject)]
}

fn rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (1u32..=6).prop_map(|count| Rule::Count { count }),
        Just(Rule::All),
        Just(Rule::Majority),
        (1u32..=100).prop_map(|percent| Rule::Percent { percent }),
        Just(Rule::FirstReply),
    ]
}

fn group_plan() -> impl Strategy<Value = GroupPlan> {
    (
        rule(),
        proptest::option::of(1u32..=4),
        proptest::collection::vec(0..POOL - 1, 0..=5),
    )
        .prop_map(|(rule, reject_at, members)| {
            let mut g = GroupPlan::unseated("g", Requirement { rule, reject_at }, true);
            g.members = members.into_iter().map(|m| format!("u-{m}")).collect();
            g
        })
}

fn stage_plan() -> impl Strategy<Value = StagePlan> {
    (
        proptest::collection::vec(group_plan(), 1..=3),
        any::<bool>(),
        proptest::option::of(0usize..3),
    )
        .prop_map(|(mut groups, any_of, request_from)| {
            let combine = if any_of { Combine::Any } else { Combine::All };
            if let (Combine::Any, Some(named)) = (combine, request_from)
                && named < groups.len()
            {
                for (i, g) in groups.iter_mut().enumerate() {
                    g.asked = i == named;
                }
            }
            for (i, g) in groups.iter_mut().enumerate() {
                g.name = format!("g{i}");
            }
            StagePlan::unseated("S", combine, groups)
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(reuse, comment, approve, cap)| Policy {
            reuse_previous_answers: reuse,
            reject_requires_comment: comment,
            when_no_approvers: if approve {
                WhenNoApprovers::Approve
            } else {
                WhenNoApprovers::Refuse
            },
            when_short: if cap {
                WhenShort::Cap
            } else {
                WhenShort::Refuse
            },
            ..Policy::default()
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (0..POOL, verdict(), 0u8..3, prop_oneof![3 => Just(None), 1 => (0..=POOL).prop_map(Some)])
            .prop_map(|(who, verdict, comment, proxy)| Op::Decide { who, verdict, comment, proxy }),
        3 => (0usize..3, any::<bool>()).prop_map(|(stage, approve)| Op::TimeOut {
            stage,
            outcome: if approve { TimeoutOutcome::Approve } else { TimeoutOutcome::Reject },
        }),
        1 => verdict().prop_map(Op::Bypass),
        1 => Just(Op::Cancel),
        1 => Just(Op::Withdraw),
    ]
}

/// What must hold after every operation, whatever happened before.
fn check_invariants(a: &Approval) -> Result<(), TestCaseError> {
    for (i, t) in a.tasks.iter().enumerate() {
        let twice = a.tasks[..i]
            .iter()
            .any(|u| u.stage == t.stage && u.approver_id == t.approver_id);
        prop_assert!(!twice, "{} asked twice in stage {}", t.approver_id, t.stage);
        let expected = match t.state {
            TaskState::Approved => Some(Approve),
            TaskState::Rejected => Some(Reject),
            TaskState::Pending
            | TaskState::Superseded
            | TaskState::Reassigned
            | TaskState::Abstained => None,
            TaskState::Reused => t.verdict,
        };
        prop_assert_eq!(t.verdict, expected);
        prop_assert!(t.state != TaskState::Reused || t.verdict.is_some());
    }
    match a.status {
        ApprovalStatus::Pending => {
            let current = a.current_stage.unwrap();
            prop_assert_eq!(a.stages[current].status, StageStatus::Pending);
            prop_assert!(
                a.stages[..current]
                    .iter()
                    .all(|s| !matches!(s.status, StageStatus::Waiting | StageStatus::Pending))
            );
            prop_assert!(
                a.stages[current + 1..]
                    .iter()
                    .all(|s| matches!(s.status, StageStatus::Waiting | StageStatus::Skipped))
            );
            prop_assert!(
                a.tasks
                    .iter()
                    .all(|t| t.stage >= current || t.state != TaskState::Pending)
            );
            // Every answer settles a group, so a running stage always waits for someone.
            prop_assert!(!a.pending_approvers().is_empty());
            prop_assert_eq!(&a.outcome, &None);
        }
        status => {
            prop_assert_eq!(a.current_stage, None);
            prop_assert!(a.tasks.iter().all(|t| t.state != TaskState::Pending));
            prop_assert!(
                a.stages
                    .iter()
                    .all(|s| !matches!(s.status, StageStatus::Waiting | StageStatus::Pending))
            );
            prop_assert!(
                a.stages
                    .iter()
                    .flat_map(|s| &s.groups)
                    .all(|g| !matches!(g, GroupStatus::Waiting | GroupStatus::Pending))
            );
            let decision = a.outcome.as_ref().map(|o| o.decision);
            if status == ApprovalStatus::Cancelled {
                prop_assert_eq!(decision, None);
            } else {
                prop_assert_eq!(decision, Some(status));
            }
        }
    }
    Ok(())
}

fn apply(a: &mut Approval, op: &Op, now: DateTime<Utc>) -> Result<Vec<Effect>, EngineError> {
    match *op {
        Op::Decide {
            who,
            verdict,
            comment,
            proxy,
        } => {
            let approver = format!("u-{who}");
            let actor = proxy_actor(proxy, &approver);
            let comment = [None, Some("  "), Some("why")][comment as usize].map(str::to_string);
            a.decide(&approver, &actor, verdict, comment, now, &mut FromPlan)
        }
        Op::TimeOut { stage, outcome } => a.time_out(stage, outcome, now, &mut FromPlan),
        Op::Bypass(verdict) => a.bypass(verdict, now),
        Op::Cancel => a.cancel("reason", None, now),
        Op::Withdraw => a.withdraw("requester", None, now),
    }
}

fn proxy_actor(proxy: Option<usize>, approver: &str) -> String {
    match proxy {
        None => approver.to_string(),
        Some(k) if k < POOL => format!("u-{k}"),
        Some(_) => "delegate".to_string(),
    }
}

fn model_apply(m: &mut Model, op: &Op) -> Result<(), EngineError> {
    match *op {
        Op::Decide {
            who,
            verdict,
            comment,
            proxy,
        } => {
            let approver = format!("u-{who}");
            m.decide(
                &approver,
                &proxy_actor(proxy, &approver),
                verdict,
                comment == 2,
            )
        }
        Op::TimeOut { stage, outcome } => m.time_out(stage, outcome.into()),
        Op::Bypass(verdict) => m.bypass(verdict),
        Op::Cancel => m.cancel(),
        Op::Withdraw => m.withdraw(),
    }
}

fn finishes(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Finished { .. }))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_runs_agree_with_the_model(
        plan in proptest::collection::vec(stage_plan(), 1..=3),
        policy in policy(),
        ops in proptest::collection::vec(op(), 0..40),
    ) {
        let (mut a, effects, mut model) = match (
            Model::start(plan.clone(), policy),
            Approval::start(plan, policy, Parties::default(), t0(), &mut FromPlan),
        ) {
            (Err(want), Err(got)) => {
                prop_assert_eq!(got, want);
                return Ok(());
            }
            (Ok(model), Ok((a, effects))) => (a, effects, model),
            (expected, got) => {
                return Err(TestCaseError::fail(format!(
                    "model starts: {:?}, engine: {got:?}",
                    expected.map(|_| ())
                )));
            }
        };
        let mut finished = finishes(&effects);
        let mut first_outcome = a.outcome.clone();
        check_invariants(&a)?;

        for (i, op) in ops.iter().enumerate() {
            let before = a.clone();
            let got = apply(&mut a, op, at(i as i64 + 1));
            let want = model_apply(&mut model, op);
            prop_assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), want, "op {} {:?}", i, op);
            match &got {
                Err(_) => prop_assert_eq!(&a, &before),
                Ok(effects) => {
                    finished += finishes(effects);
                    if let Some(Effect::Finished { outcome }) = effects.last() {
                        prop_assert_eq!(Some(outcome), a.outcome.as_ref());
                    }
                }
            }
            prop_assert!(finished <= 1, "finished {} times", finished);
            prop_assert_eq!(a.status, model.status);
            prop_assert_eq!(a.current_stage, model.current);
            prop_assert_eq!(a.outcome.as_ref().map(|o| (o.decision, o.reason)), model.outcome);
            for stage in 0..a.plan.len() {
                let mut asked: Vec<&str> = a.tasks.iter().filter(|t| t.stage == stage).map(|t| t.approver_id.as_str()).collect();
                let mut expected = if model.entered[stage] { model.asked(stage) } else { vec![] };
                asked.sort_unstable();
                expected.sort_unstable();
                prop_assert_eq!(asked, expected, "tasks of stage {}", stage);
                let mut answered: Vec<(String, Verdict, String)> = a
                    .tasks
                    .iter()
                    .filter(|t| t.stage == stage)
                    .filter_map(|t| t.verdict.map(|v| (t.approver_id.clone(), v, t.actor().to_string())))
                    .collect();
                let mut expected = model.answers[stage].clone();
                answered.sort_unstable_by(|x, y| x.0.cmp(&y.0));
                expected.sort_unstable_by(|x, y| x.0.cmp(&y.0));
                prop_assert_eq!(answered, expected, "answers of stage {}", stage);
            }
            match &first_outcome {
                Some(first) => prop_assert_eq!(a.outcome.as_ref(), Some(first)),
                None => first_outcome = a.outcome.clone(),
            }
            check_invariants(&a)?;
        }

        if a.status != ApprovalStatus::Pending {
            let closed = a.clone();
            for who in 0..POOL {
                for verdict in [Approve, Reject] {
                    let op = Op::Decide { who, verdict, comment: 2, proxy: None };
                    prop_assert_eq!(apply(&mut a, &op, at(100)), Err(EngineError::Closed));
                }
            }
            for stage in 0..3 {
                prop_assert_eq!(
                    a.time_out(stage, TimeoutOutcome::Approve, at(100), &mut FromPlan),
                    Err(EngineError::StageNotCurrent)
                );
            }
            prop_assert_eq!(a.bypass(Approve, at(100)), Err(EngineError::Closed));
            prop_assert_eq!(a.cancel("late", None, at(100)), Err(EngineError::Closed));
            prop_assert_eq!(a.withdraw("requester", None, at(100)), Err(EngineError::Closed));
            prop_assert_eq!(
                a.reassign("u-0", "u-6", None, None, at(100)),
                Err(EngineError::Closed)
            );
            prop_assert_eq!(&a, &closed);
        }
    }
}

#[test]
fn a_waiting_for_line_names_ten_people_and_counts_the_rest() {
    let names = |n: usize| (1..=n).map(|i| format!("P{i}")).collect::<Vec<_>>();
    assert_eq!(super::name_list(&names(1)), "P1");
    assert_eq!(super::name_list(&names(10)), names(10).join(", "));
    assert_eq!(
        super::name_list(&names(11)),
        format!("{} and 1 other", names(10).join(", "))
    );
    assert_eq!(
        super::name_list(&names(20_000)),
        format!("{} and 19990 others", names(10).join(", "))
    );
}
