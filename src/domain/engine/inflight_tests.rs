//! Withdraw and reassign: table tests for each refusal, and a property test that handing
//! seats on never changes a stage's counts, never seats a party or anyone twice, and leaves
//! every reassigned seat pointing at the person who holds it now.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::tests::{FromPlan, group, stage};
use super::*;
use crate::domain::process::{Combine, Requirement, Rule};
use Verdict::{Approve, Reject};

fn t0() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn rule(rule: Rule) -> Requirement {
    Requirement {
        rule,
        reject_at: None,
    }
}

fn parties() -> Parties {
    Parties {
        requester: Some("req".into()),
        requested_by: Some("asker".into()),
    }
}

/// One stage, one group of `members` needing `need` approvals, with `req` and `asker` as
/// the parties.
fn approval(members: &[&str], need: Rule) -> Approval {
    try_approval(members, need).expect("starts")
}

fn try_approval(members: &[&str], need: Rule) -> Result<Approval, EngineError> {
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![group("g", rule(need), members)],
    )];
    Approval::start(plan, Policy::default(), parties(), t0(), &mut FromPlan).map(|(a, _)| a)
}

fn task<'a>(a: &'a Approval, who: &str) -> &'a Task {
    a.tasks
        .iter()
        .find(|t| t.approver_id == who)
        .expect("a task")
}

#[test]
fn withdrawing_supersedes_the_pending_seats_and_records_a_withdrawn_outcome() {
    let mut a = approval(&["a", "b"], Rule::All);
    a.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    let effects = a
        .withdraw("req", Some("not needed".into()), t0() + Duration::hours(1))
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Withdrawn);
    let outcome = a.outcome.clone().unwrap();
    assert_eq!(
        (outcome.decision, outcome.reason),
        (ApprovalStatus::Withdrawn, OutcomeReason::Withdrawn)
    );
    assert_eq!(task(&a, "a").state, TaskState::Approved);
    assert_eq!(task(&a, "b").state, TaskState::Superseded);
    assert_eq!(
        effects,
        vec![
            Effect::TasksSuperseded { count: 1 },
            Effect::Withdrawn {
                reason: Some("not needed".into()),
                actor_id: "req".into(),
            }
        ]
    );
    assert_eq!(a.withdraw("req", None, t0()), Err(EngineError::Closed));
    assert_eq!(
        a.decide("b", "b", Approve, None, t0(), &mut FromPlan),
        Err(EngineError::Closed)
    );
}

#[test]
fn each_refused_reassignment_leaves_the_approval_as_it_was() {
    let refuse = |r| Err(EngineError::InvalidReassignment(r));
    let table: &[(&str, &str, Result<(), EngineError>)] = &[
        ("a", "req", refuse(SeatRefusal::Party)),
        ("a", "asker", refuse(SeatRefusal::Party)),
        ("a", "b", refuse(SeatRefusal::AlreadySeated)),
        ("a", "c", refuse(SeatRefusal::AlreadyAnswered)),
        ("a", "a", refuse(SeatRefusal::SamePerson)),
        ("c", "z", Err(EngineError::AlreadyDecided)),
        ("nobody", "z", Err(EngineError::NotAnApprover)),
        ("a", "z", Ok(())),
    ];
    for (from, to, want) in table {
        let mut a = approval(&["a", "b", "c"], Rule::All);
        a.decide("c", "c", Approve, None, t0(), &mut FromPlan)
            .unwrap();
        let before = a.clone();
        let got = a.reassign(from, to, Some("admin"), None, t0()).map(|_| ());
        assert_eq!(&got, want, "{from} → {to}");
        if got.is_err() {
            assert_eq!(a, before, "{from} → {to} changed the approval");
        }
    }
}

#[test]
fn someone_who_answered_for_another_cannot_take_a_seat() {
    let mut a = approval(&["a", "b"], Rule::All);
    // A substitute `s` answered for `a`.
    a.decide("a", "s", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(
        a.reassign("b", "s", None, None, t0()),
        Err(EngineError::InvalidReassignment(
            SeatRefusal::AlreadyAnswered
        ))
    );
}

#[test]
fn a_reassigned_seat_counts_for_its_new_holder_and_the_old_one_cannot_answer() {
    let mut a = approval(&["a", "b"], Rule::All);
    let effects = a
        .reassign("a", "z", Some("a"), Some("on leave".into()), t0())
        .unwrap();
    assert_eq!(
        effects,
        vec![Effect::Reassigned {
            stage: 0,
            from: "a".into(),
            to: "z".into(),
            reason: ReassignReason::Reassign,
            actor_id: Some("a".into()),
            comment: Some("on leave".into()),
        }]
    );
    assert_eq!(task(&a, "a").state, TaskState::Reassigned);
    assert_eq!(a.reassigned_to(0, "a"), Some("z"));
    assert_eq!(
        a.decide("a", "a", Approve, None, t0(), &mut FromPlan),
        Err(EngineError::AlreadyDecided)
    );
    assert_eq!(a.group_tally(0, 0).unwrap().pending, 2);
    a.decide("z", "z", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Pending);
    a.decide("b", "b", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn an_added_approver_counts_where_the_requirement_is_over_the_members() {
    for (need, required_after) in [
        (Rule::All, 3),
        (Rule::Majority, 2),
        (Rule::Percent { percent: 100 }, 3),
        (Rule::Count { count: 1 }, 1),
        (Rule::FirstReply, 1),
    ] {
        let mut a = approval(&["a", "b"], need);
        let effects = a.add_approver("g", "z", Some("admin")).unwrap();
        assert_eq!(
            effects,
            vec![Effect::ApproverAdded {
                stage: 0,
                group: "g".into(),
                approver_id: "z".into(),
                actor_id: Some("admin".into()),
            }]
        );
        let tally = a.group_tally(0, 0).unwrap();
        assert_eq!(
            (tally.required, tally.pending),
            (required_after, 3),
            "{need:?}"
        );
        assert_eq!(task(&a, "z").state, TaskState::Pending);
    }
    // With `all`, the approval now waits for the newcomer too.
    let mut a = approval(&["a"], Rule::All);
    a.add_approver("g", "z", None).unwrap();
    a.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Pending);
    a.decide("z", "z", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn adding_refuses_parties_the_seated_unknown_groups_and_decided_groups() {
    let mut a = approval(&["a", "b"], Rule::Count { count: 2 });
    a.decide("b", "b", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    let before = a.clone();
    let invalid = |r| Err(EngineError::InvalidApprover(r));
    assert_eq!(
        a.add_approver("g", "req", None),
        invalid(SeatRefusal::Party)
    );
    assert_eq!(
        a.add_approver("g", "a", None),
        invalid(SeatRefusal::AlreadySeated)
    );
    assert_eq!(
        a.add_approver("g", "b", None),
        invalid(SeatRefusal::AlreadyAnswered)
    );
    assert_eq!(
        a.add_approver("nope", "z", None),
        Err(EngineError::UnknownGroup)
    );
    assert_eq!(a, before);
    // Two groups in an `any` stage: once one decides, the stage ends; a settled group in a
    // running stage refuses newcomers.
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![
            group("one", rule(Rule::Count { count: 1 }), &["a"]),
            group("two", rule(Rule::Count { count: 1 }), &["b"]),
        ],
    )];
    let (mut a, _) =
        Approval::start(plan, Policy::default(), parties(), t0(), &mut FromPlan).unwrap();
    a.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(
        a.add_approver("one", "z", None),
        Err(EngineError::GroupDecided)
    );
    assert!(a.add_approver("two", "z", None).is_ok());
}

#[test]
fn an_answer_is_taken_back_only_by_its_giver_within_the_window_before_it_counts() {
    let hour = Some(Duration::hours(1));
    let revoked = |r| Err(EngineError::RevokeRefused(r));
    let mut a2 = approval(&["a", "b", "c"], Rule::All);
    a2.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    a2.decide("b", "s", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    let before = a2.clone();
    let later = t0() + Duration::minutes(30);
    assert_eq!(
        a2.revoke("a", "a", None, later),
        revoked(RevokeRefusal::NotAllowed)
    );
    assert_eq!(
        a2.revoke("a", "a", hour, t0() + Duration::hours(2)),
        revoked(RevokeRefusal::WindowPassed)
    );
    assert_eq!(
        a2.revoke("b", "b", hour, later),
        revoked(RevokeRefusal::NotYours)
    );
    assert_eq!(
        a2.revoke("c", "c", hour, later),
        revoked(RevokeRefusal::NothingToRevoke)
    );
    assert_eq!(
        a2.revoke("x", "x", hour, later),
        Err(EngineError::NotAnApprover)
    );
    assert_eq!(a2, before);
    let effects = a2.revoke("a", "a", hour, later).unwrap();
    assert_eq!(
        effects,
        vec![Effect::DecisionRevoked {
            stage: 0,
            approver_id: "a".into(),
            actor_id: "a".into(),
            verdict: Approve,
        }]
    );
    assert_eq!(*task(&a2, "a"), Task::pending(0, "a"));
    assert_eq!(a2.group_tally(0, 0).unwrap().approved, 1);

    // An answer that decided its group (of a stage still running) stays.
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![
            group("one", rule(Rule::Count { count: 1 }), &["a"]),
            group("two", rule(Rule::Count { count: 1 }), &["b"]),
        ],
    )];
    let (mut a, _) =
        Approval::start(plan, Policy::default(), parties(), t0(), &mut FromPlan).unwrap();
    a.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(
        a.revoke("a", "a", hour, later),
        revoked(RevokeRefusal::Counted)
    );
}

fn with_policy(members: &[&str], need: Rule, cap: bool) -> Approval {
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![group("g", rule(need), members)],
    )];
    let policy = Policy {
        when_short: if cap {
            crate::domain::process::WhenShort::Cap
        } else {
            crate::domain::process::WhenShort::Refuse
        },
        ..Policy::default()
    };
    let (a, _) = Approval::start(plan, policy, parties(), t0(), &mut FromPlan).unwrap();
    a
}

#[test]
fn abstaining_takes_each_requirement_over_the_members_who_remain() {
    // (rule, members, approvals given before, cap?) → state after `a` abstains, required after.
    type Case<'a> = (
        Rule,
        &'a [&'a str],
        &'a [&'a str],
        bool,
        ApprovalStatus,
        usize,
    );
    let table: &[Case] = &[
        // `all` of three, two approved: the third steps out and the rest is everyone.
        (
            Rule::All,
            &["a", "b", "c"],
            &["b", "c"],
            false,
            ApprovalStatus::Approved,
            2,
        ),
        (
            Rule::All,
            &["a", "b", "c"],
            &["b"],
            false,
            ApprovalStatus::Pending,
            2,
        ),
        // a majority of four is 3; of the three who remain, 2.
        (
            Rule::Majority,
            &["a", "b", "c", "d"],
            &["b", "c"],
            false,
            ApprovalStatus::Approved,
            2,
        ),
        // `count: 2` of three still meetable by the two who remain.
        (
            Rule::Count { count: 2 },
            &["a", "b", "c"],
            &["b"],
            false,
            ApprovalStatus::Pending,
            2,
        ),
        // `count: 2` of two: no longer meetable; refuse rejects, cap lowers it.
        (
            Rule::Count { count: 2 },
            &["a", "b"],
            &[],
            false,
            ApprovalStatus::Rejected,
            2,
        ),
        (
            Rule::Count { count: 2 },
            &["a", "b"],
            &[],
            true,
            ApprovalStatus::Pending,
            1,
        ),
        (
            Rule::Count { count: 2 },
            &["a", "b"],
            &["b"],
            true,
            ApprovalStatus::Approved,
            1,
        ),
        // Nobody left: never an approval on nobody's word, cap or not.
        (Rule::All, &["a"], &[], true, ApprovalStatus::Rejected, 1),
        (
            Rule::FirstReply,
            &["a"],
            &[],
            false,
            ApprovalStatus::Rejected,
            1,
        ),
    ];
    for (need, members, before, cap, state, required_after) in table {
        let mut a = with_policy(members, *need, *cap);
        for who in *before {
            a.decide(who, who, Approve, None, t0(), &mut FromPlan)
                .unwrap();
        }
        let effects = a
            .abstain(
                "a",
                Some("conflict of interest".into()),
                t0(),
                &mut FromPlan,
            )
            .unwrap();
        assert_eq!(
            effects[0],
            Effect::Abstained {
                stage: 0,
                approver_id: "a".into(),
                comment: "conflict of interest".into(),
            }
        );
        let case = format!("{need:?} {members:?} {before:?} cap={cap}");
        assert_eq!(a.status, *state, "{case}");
        assert_eq!(task(&a, "a").state, TaskState::Abstained, "{case}");
        assert_eq!(a.plan[0].groups[0].required(), *required_after, "{case}");
        if *state == ApprovalStatus::Rejected {
            let outcome = a.outcome.clone().unwrap();
            assert_eq!(outcome.reason, OutcomeReason::NotEnoughApprovers, "{case}");
        }
    }
}

#[test]
fn an_abstention_needs_a_comment_a_pending_seat_and_not_a_party() {
    let mut a = approval(&["a", "b"], Rule::All);
    let before = a.clone();
    assert_eq!(
        a.abstain("a", Some("  ".into()), t0(), &mut FromPlan),
        Err(EngineError::CommentRequired)
    );
    assert_eq!(
        a.abstain("req", Some("x".into()), t0(), &mut FromPlan),
        Err(EngineError::SelfApproval)
    );
    assert_eq!(
        a.abstain("z", Some("x".into()), t0(), &mut FromPlan),
        Err(EngineError::NotAnApprover)
    );
    assert_eq!(a, before);
    a.decide("a", "a", Approve, None, t0(), &mut FromPlan)
        .unwrap();
    assert_eq!(
        a.abstain("a", Some("x".into()), t0(), &mut FromPlan),
        Err(EngineError::AlreadyDecided)
    );
}

/// Principals p-0..p-5 may sit in the group; p-6..p-8 never do; `req` and `asker` are parties.
const POOL: usize = 9;

#[derive(Clone, Debug)]
enum Op {
    Decide(usize, Verdict),
    Reassign(usize, usize),
    ReassignToParty(usize),
    Add(usize),
    Revoke(usize),
    Abstain(usize),
    Escalate(usize, usize),
    Ask,
    Answer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..POOL, prop_oneof![3 => Just(Approve), 1 => Just(Reject)]).prop_map(|(w, v)| Op::Decide(w, v)),
        3 => (0..POOL, 0..POOL).prop_map(|(f, t)| Op::Reassign(f, t)),
        1 => (0..POOL).prop_map(Op::ReassignToParty),
        2 => (0..POOL).prop_map(Op::Add),
        2 => (0..POOL).prop_map(Op::Revoke),
        2 => (0..POOL).prop_map(Op::Abstain),
        2 => (0..POOL, 0..POOL).prop_map(|(f, t)| Op::Escalate(f, t)),
        1 => Just(Op::Ask),
        1 => Just(Op::Answer),
    ]
}

fn requirement() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (1u32..=4).prop_map(|count| Rule::Count { count }),
        Just(Rule::All),
        Just(Rule::Majority),
        (1u32..=100).prop_map(|percent| Rule::Percent { percent }),
        Just(Rule::FirstReply),
    ]
}

fn p(i: usize) -> String {
    format!("p-{i}")
}

/// The running stage's counts per group: what a reassignment must not change.
fn tallies(a: &Approval) -> Vec<(usize, usize, usize)> {
    let Some(s) = a.running_stage() else {
        return vec![];
    };
    (0..a.plan[s].groups.len())
        .filter_map(|g| a.group_tally(s, g))
        .map(|t| (t.approved, t.rejected, t.pending))
        .collect()
}

fn task_of<'a>(a: &'a Approval, who: &str) -> &'a Task {
    task(a, who)
}

fn check(a: &Approval) -> Result<(), TestCaseError> {
    // No group is approved on fewer distinct approvals than it requires, nor on nobody's.
    for (s, state) in a.stages.iter().enumerate() {
        for (g, status) in state.groups.iter().enumerate() {
            if *status == GroupStatus::Approved {
                let tally = a.group_tally(s, g).unwrap();
                prop_assert!(tally.approved >= tally.required.max(1), "{:?}", tally);
            }
        }
    }
    if a.status == ApprovalStatus::Approved {
        prop_assert!(a.tasks.iter().any(|t| t.verdict == Some(Approve)));
    }
    let mut seen = BTreeSet::new();
    for t in &a.tasks {
        prop_assert!(seen.insert((t.stage, t.approver_id.clone())), "two seats");
        if t.state == TaskState::Pending {
            prop_assert!(!a.parties.is_party(&t.approver_id), "a party is seated");
        }
        if t.state == TaskState::Reassigned {
            prop_assert_eq!(t.verdict, None);
            let to = a.reassigned_to(t.stage, &t.approver_id);
            prop_assert!(
                to.is_some_and(|to| a
                    .tasks
                    .iter()
                    .any(|u| u.stage == t.stage && u.approver_id == to)),
                "a reassigned seat points at nobody"
            );
            for g in &a.plan[t.stage].groups {
                prop_assert!(!g.members.contains(&t.approver_id), "still a member");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn handing_seats_on_keeps_the_counts_and_the_four_eyes(
        need in requirement(),
        members in proptest::collection::btree_set(0usize..6, 1..=5),
        ops in proptest::collection::vec(op(), 0..30),
    ) {
        let ids: Vec<String> = members.iter().map(|&m| p(m)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        // A count above the members is refused at the start (when_short: refuse): keep it
        // within them.
        let need = match need {
            Rule::Count { count } => Rule::Count { count: count.min(refs.len() as u32) },
            other => other,
        };
        let mut a = try_approval(&refs, need).expect("starts");
        check(&a)?;
        for op in &ops {
            let before = a.clone();
            let counts = tallies(&a);
            let got = match *op {
                Op::Decide(w, v) => a.decide(&p(w), &p(w), v, Some("c".into()), t0(), &mut FromPlan),
                Op::Reassign(f, t) => a.reassign(&p(f), &p(t), None, None, t0()),
                Op::ReassignToParty(f) => a.reassign(&p(f), "req", None, None, t0()),
                Op::Add(w) => a.add_approver("g", &p(w), None),
                Op::Revoke(w) => a.revoke(&p(w), &p(w), Some(Duration::hours(1)), t0()),
                Op::Abstain(w) => a.abstain(&p(w), Some("out".into()), t0(), &mut FromPlan),
                Op::Escalate(f, t) => a.escalate_seat(&p(f), &p(t), t0()),
                Op::Ask => a.info_requested(),
                Op::Answer => a.info_provided(),
            };
            match (&got, op) {
                (Err(_), _) => prop_assert_eq!(&a, &before),
                (Ok(_), Op::Decide(..) | Op::Abstain(_)) => {
                    // No answer is taken while a question waits.
                    prop_assert!(before.status != ApprovalStatus::InfoRequested);
                }
                (Ok(_), Op::Ask) => prop_assert_eq!(a.status, ApprovalStatus::InfoRequested),
                (Ok(_), Op::Answer) => prop_assert_eq!(a.status, ApprovalStatus::Pending),
                (Ok(_), Op::Reassign(..) | Op::Escalate(..)) => {
                    prop_assert_eq!(tallies(&a), counts, "a reassignment changed the counts");
                    prop_assert_eq!(a.status, before.status);
                }
                (Ok(_), Op::ReassignToParty(_)) => {
                    return Err(TestCaseError::fail("a seat went to a party"));
                }
                (Ok(_), Op::Add(_)) => {
                    let (approved, rejected, pending) = counts[0];
                    prop_assert_eq!(tallies(&a)[0], (approved, rejected, pending + 1));
                }
                (Ok(_), Op::Revoke(w)) => {
                    prop_assert_eq!(task_of(&a, &p(*w)).state, TaskState::Pending);
                    prop_assert_eq!(a.status, before.status);
                }
            }
            check(&a)?;
        }
    }
}

#[test]
fn an_any_stage_decided_by_its_first_group_ends_on_the_first_result_either_way() {
    for (first_group, answer, want) in [
        (true, Reject, ApprovalStatus::Rejected),
        (true, Approve, ApprovalStatus::Approved),
        // Without it, one group rejecting leaves the stage to the other.
        (false, Reject, ApprovalStatus::Pending),
        (false, Approve, ApprovalStatus::Approved),
    ] {
        let mut plan = stage(
            "S",
            Combine::Any,
            vec![
                group("it", rule(Rule::Count { count: 1 }), &["a"]),
                group("finance", rule(Rule::Count { count: 1 }), &["b"]),
            ],
        );
        plan.first_group = first_group;
        let (mut a, _) = Approval::start(
            vec![plan],
            Policy::default(),
            parties(),
            t0(),
            &mut FromPlan,
        )
        .unwrap();
        a.decide("a", "a", answer, Some("why".into()), t0(), &mut FromPlan)
            .unwrap();
        assert_eq!(a.status, want, "first_group={first_group} {answer:?}");
    }
}
