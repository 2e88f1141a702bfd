//! "One person, one answer": table tests for each way a sign-off could be weakened, and a
//! property test that no approved group ever has fewer distinct people than it requires,
//! over random substitutes, delegations, parties and reuse.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::tests::{group, stage};
use super::*;
use crate::domain::process::{Combine, Requirement, Rule, WhenNoApprovers, WhenShort};
use Verdict::{Approve, Reject};
use chrono::{DateTime, Utc};

fn t0() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn count(n: u32) -> Requirement {
    Requirement {
        rule: Rule::Count { count: n },
        reject_at: None,
    }
}

/// A directory the test changes between stages: members named per stage and group, and
/// delegations in force.
#[derive(Default)]
struct Dir {
    members: HashMap<(usize, usize), Vec<String>>,
    delegates: HashMap<String, String>,
    conditions: HashMap<usize, Condition>,
    reads: Vec<usize>,
}

impl Dir {
    fn with(mut self, stage: usize, group: usize, ids: &[&str]) -> Self {
        self.members
            .insert((stage, group), ids.iter().map(|s| s.to_string()).collect());
        self
    }

    fn delegating(mut self, from: &str, to: &str) -> Self {
        self.delegates.insert(from.into(), to.into());
        self
    }
}

impl Resolve for Dir {
    fn resolve(&mut self, stage: usize, plan: &StagePlan) -> Resolution {
        self.reads.push(stage);
        Resolution {
            condition: self.conditions.get(&stage).cloned().unwrap_or_default(),
            groups: (0..plan.groups.len())
                .map(|g| Candidates {
                    members: self
                        .members
                        .get(&(stage, g))
                        .into_iter()
                        .flatten()
                        .map(|id| Candidate {
                            id: id.clone(),
                            delegate: self.delegates.get(id).cloned(),
                        })
                        .collect(),
                    removed: vec![],
                })
                .collect(),
        }
    }
}

fn one_group_stages(n: usize, require: Requirement) -> Vec<StagePlan> {
    (0..n)
        .map(|s| {
            stage(
                &format!("S{s}"),
                Combine::All,
                vec![group("g", require.clone(), &[])],
            )
        })
        .collect()
}

fn policy() -> Policy {
    Policy::default()
}

fn parties(requester: Option<&str>, requested_by: Option<&str>) -> Parties {
    Parties {
        requester: requester.map(str::to_string),
        requested_by: requested_by.map(str::to_string),
    }
}

fn start(plan: Vec<StagePlan>, policy: Policy, p: Parties, dir: &mut Dir) -> Approval {
    Approval::start(plan, policy, p, t0(), dir).unwrap().0
}

fn actors_of_approvals(a: &Approval, stage: usize) -> BTreeSet<String> {
    a.tasks
        .iter()
        .filter(|t| t.stage == stage && t.verdict == Some(Approve))
        .map(|t| t.actor().to_string())
        .collect()
}

#[test]
fn an_answer_given_for_someone_else_is_never_reused_for_them_or_the_giver() {
    // S answers for A in stage 1; stage 2 needs two of [A, S] and reuses answers.
    let mut dir = Dir::default().with(0, 0, &["A"]).with(1, 0, &["A", "S"]);
    let reuse = Policy {
        reuse_previous_answers: true,
        ..policy()
    };
    let mut plan = one_group_stages(1, count(1));
    plan.extend(one_group_stages(1, count(2)));
    let mut a = start(plan, reuse, Parties::default(), &mut dir);
    a.decide("A", "S", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(a.current_stage, Some(1));
    assert!(
        a.tasks
            .iter()
            .filter(|t| t.stage == 1)
            .all(|t| t.state == TaskState::Pending),
        "nothing may be reused: {:?}",
        a.tasks
    );
    a.decide("S", "S", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(
        a.status,
        ApprovalStatus::Pending,
        "one person filled two seats"
    );
    a.decide("A", "A", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(actors_of_approvals(&a, 1).len(), 2);
}

#[test]
fn a_reused_answer_records_who_gave_it() {
    let mut dir = Dir::default().with(0, 0, &["A"]).with(1, 0, &["A", "B"]);
    let reuse = Policy {
        reuse_previous_answers: true,
        ..policy()
    };
    let mut a = start(
        one_group_stages(2, count(1)),
        reuse,
        Parties::default(),
        &mut dir,
    );
    let effects = a.decide("A", "A", Approve, None, t0(), &mut dir).unwrap();
    assert!(effects.contains(&Effect::AnswerReused {
        stage: 1,
        approver_id: "A".into(),
        verdict: Approve
    }));
    let reused = a
        .tasks
        .iter()
        .find(|t| t.stage == 1 && t.approver_id == "A");
    assert_eq!(reused.unwrap().state, TaskState::Reused);
    assert_eq!(reused.unwrap().actor_id.as_deref(), Some("A"));
    assert_eq!(a.status, ApprovalStatus::Approved);
}

#[test]
fn delegation_never_shrinks_a_group() {
    // A delegates to D, who already sits in the group: A keeps the seat, two people needed.
    let mut dir = Dir::default().with(0, 0, &["A", "D"]).delegating("A", "D");
    let mut a = start(
        one_group_stages(1, count(2)),
        policy(),
        Parties::default(),
        &mut dir,
    );
    assert_eq!(a.plan[0].groups[0].members, ["A", "D"]);
    assert_eq!(a.group_tally(0, 0).unwrap().required, 2);
    assert!(a.delegations.is_empty());
    assert!(
        a.plan[0]
            .notes
            .iter()
            .any(|n| n.contains("keeps their seat"))
    );
    a.decide("D", "D", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(
        a.decide("A", "D", Approve, None, t0(), &mut dir),
        Err(EngineError::DoubleAnswer)
    );
    assert_eq!(a.status, ApprovalStatus::Pending);
}

#[test]
fn two_delegators_to_one_delegate_do_not_merge_their_seats() {
    let mut dir = Dir::default()
        .with(0, 0, &["A", "B"])
        .delegating("A", "D")
        .delegating("B", "D");
    let a = start(
        one_group_stages(1, count(2)),
        policy(),
        Parties::default(),
        &mut dir,
    );
    assert_eq!(a.plan[0].groups[0].members, ["D", "B"]);
    assert_eq!(a.delegated_from(0, "D"), Some("A"));
    assert_eq!(a.group_tally(0, 0).unwrap().required, 2);
}

#[test]
fn delegations_are_decided_from_who_was_asked_so_a_pair_swaps() {
    let plan = vec![stage(
        "S",
        Combine::All,
        vec![group("x", count(1), &[]), group("y", count(1), &[])],
    )];
    let mut dir = Dir::default()
        .with(0, 0, &["A"])
        .with(0, 1, &["B"])
        .delegating("A", "B")
        .delegating("B", "A");
    let a = start(plan, policy(), Parties::default(), &mut dir);
    assert_eq!(a.plan[0].groups[0].members, ["B"]);
    assert_eq!(a.plan[0].groups[1].members, ["A"]);
}

#[test]
fn a_short_first_stage_is_refused_and_a_capped_one_says_so() {
    let mut dir = Dir::default().with(0, 0, &["A"]);
    assert_eq!(
        Approval::start(
            one_group_stages(1, count(2)),
            policy(),
            Parties::default(),
            t0(),
            &mut dir
        )
        .unwrap_err(),
        EngineError::NotEnoughApprovers { stage: 0, group: 0 }
    );
    let cap = Policy {
        when_short: WhenShort::Cap,
        ..policy()
    };
    let a = start(
        one_group_stages(1, count(2)),
        cap,
        Parties::default(),
        &mut dir,
    );
    let g = &a.plan[0].groups[0];
    assert_eq!((g.required, g.capped_from), (Some(1), Some(2)));
    assert!(
        a.plan[0]
            .notes
            .iter()
            .any(|n| n.contains("lowered from 2 to 1"))
    );
}

#[test]
fn a_later_stage_that_starts_short_rejects_the_approval() {
    let mut dir = Dir::default().with(0, 0, &["A"]).with(1, 0, &["B", "C"]);
    let mut plan = one_group_stages(1, count(1));
    plan.extend(one_group_stages(1, count(2)));
    let mut a = start(plan, policy(), Parties::default(), &mut dir);
    // C leaves the role before stage 2 starts.
    dir.members.insert((1, 0), vec!["B".into()]);
    a.decide("A", "A", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(a.status, ApprovalStatus::Rejected);
    assert_eq!(
        a.outcome.as_ref().map(|o| o.reason),
        Some(OutcomeReason::NotEnoughApprovers)
    );
}

#[test]
fn approvers_are_read_when_their_stage_starts() {
    let mut dir = Dir::default().with(0, 0, &["A"]).with(1, 0, &["B"]);
    let mut a = start(
        one_group_stages(2, count(1)),
        policy(),
        Parties::default(),
        &mut dir,
    );
    dir.members.insert((1, 0), vec!["E".into()]);
    a.decide("A", "A", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(a.pending_approvers(), ["E"]);
    assert_eq!(
        dir.reads,
        [0, 1, 1],
        "every stage read at request, stage 1 again at start"
    );
}

#[test]
fn the_requester_and_requested_by_are_removed_and_may_not_decide() {
    let mut dir = Dir::default().with(0, 0, &["R", "T", "A", "B"]);
    let p = parties(Some("R"), Some("T"));
    let mut a = start(one_group_stages(1, count(1)), policy(), p, &mut dir);
    let g = &a.plan[0].groups[0];
    assert_eq!(g.members, ["A", "B"]);
    let reasons: Vec<RemovalReason> = g.removed.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [RemovalReason::Requester, RemovalReason::RequestedBy]
    );
    for actor in ["R", "T"] {
        assert_eq!(
            a.decide("A", actor, Approve, None, t0(), &mut dir),
            Err(EngineError::SelfApproval)
        );
        // Deciding as themselves is refused for the same reason, not as "not asked".
        assert_eq!(
            a.decide(actor, actor, Approve, None, t0(), &mut dir),
            Err(EngineError::SelfApproval)
        );
    }
    // With self-approval allowed they sit and answer like anyone.
    let allow = Policy {
        allow_self_approval: true,
        ..policy()
    };
    let a = start(
        one_group_stages(1, count(1)),
        allow,
        parties(Some("R"), Some("T")),
        &mut dir,
    );
    assert_eq!(a.plan[0].groups[0].members, ["R", "T", "A", "B"]);
}

#[test]
fn only_the_requester_in_a_group_is_refused_even_when_no_approvers_approves() {
    let mut dir = Dir::default().with(0, 0, &["R"]);
    let approve = Policy {
        when_no_approvers: WhenNoApprovers::Approve,
        when_short: WhenShort::Cap,
        ..policy()
    };
    let refused = Approval::start(
        one_group_stages(1, count(1)),
        approve,
        parties(Some("R"), None),
        t0(),
        &mut dir,
    );
    assert_eq!(refused.unwrap_err(), EngineError::NoApprovers);
}

#[test]
fn a_delegation_to_the_requester_is_not_applied() {
    let mut dir = Dir::default().with(0, 0, &["A"]).delegating("A", "R");
    let a = start(
        one_group_stages(1, count(1)),
        policy(),
        parties(Some("R"), None),
        &mut dir,
    );
    assert_eq!(a.plan[0].groups[0].members, ["A"]);
}

#[test]
fn nobody_answers_twice_in_a_stage() {
    let plan = vec![stage("S", Combine::All, vec![group("g", count(3), &[])])];
    let mut dir = Dir::default().with(0, 0, &["A", "B", "C"]);
    let mut a = start(plan, policy(), Parties::default(), &mut dir);
    // A sits in the stage: may not answer for B too.
    assert_eq!(
        a.decide("B", "A", Approve, None, t0(), &mut dir),
        Err(EngineError::DoubleAnswer)
    );
    // An outsider answers for B, then may not answer for C.
    a.decide("B", "X", Approve, None, t0(), &mut dir).unwrap();
    assert_eq!(
        a.decide("C", "X", Approve, None, t0(), &mut dir),
        Err(EngineError::DoubleAnswer)
    );
}

#[test]
fn a_false_condition_skips_the_stage_and_a_failed_one_runs_it() {
    let mut dir = Dir::default().with(0, 0, &["A"]).with(1, 0, &["B"]);
    dir.conditions.insert(0, Condition::False);
    dir.conditions
        .insert(1, Condition::Failed("no such key: amount".into()));
    let a = start(
        one_group_stages(2, count(1)),
        policy(),
        Parties::default(),
        &mut dir,
    );
    assert_eq!(a.plan[0].skip_reason, Some(SkipReason::Condition));
    assert_eq!(a.stages[0].status, StageStatus::Skipped);
    assert_eq!(a.current_stage, Some(1));
    assert!(a.plan[1].notes[0].contains("could not be evaluated"));
}

#[test]
fn a_preview_seats_every_stage_and_explains_itself() {
    let mut dir = Dir::default().with(0, 0, &["R", "A"]).with(1, 0, &["B"]);
    dir.conditions.insert(1, Condition::False);
    let (a, notes) = Approval::preview(
        one_group_stages(2, count(2)),
        policy(),
        parties(Some("R"), None),
        &mut dir,
    );
    assert_eq!(a.current_stage, Some(0));
    assert_eq!(a.plan[0].groups[0].members, ["A"]);
    assert!(notes.iter().any(|n| n.contains("R removed")), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("would be refused")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("S1: skipped")), "{notes:?}");
}

// ---- property -------------------------------------------------------------------------

const POOL: usize = 6;

fn person(i: usize) -> String {
    format!("p{i}")
}

#[derive(Clone, Debug)]
struct Case {
    /// Per stage, per group: requirement and member indices.
    stages: Vec<Vec<(Requirement, Vec<usize>)>>,
    /// Delegations in force: (from, to).
    delegations: Vec<(usize, usize)>,
    requester: Option<usize>,
    requested_by: Option<usize>,
    policy: Policy,
    /// (approver, actor, verdict): the actor answers for the approver.
    ops: Vec<(usize, usize, Verdict)>,
}

fn requirement() -> impl Strategy<Value = Requirement> {
    (
        prop_oneof![
            (1u32..=4).prop_map(|count| Rule::Count { count }),
            Just(Rule::All),
            Just(Rule::Majority),
            (1u32..=100).prop_map(|percent| Rule::Percent { percent }),
            Just(Rule::FirstReply),
        ],
        proptest::option::of(1u32..=3),
    )
        .prop_map(|(rule, reject_at)| Requirement { rule, reject_at })
}

fn case() -> impl Strategy<Value = Case> {
    let group = (requirement(), proptest::collection::vec(0..POOL, 0..=4));
    let stage = proptest::collection::vec(group, 1..=2);
    (
        proptest::collection::vec(stage, 1..=3),
        proptest::collection::vec((0..POOL, 0..POOL), 0..=3),
        proptest::option::of(0..POOL),
        proptest::option::of(0..POOL),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::collection::vec(
            (
                0..POOL,
                0..POOL + 1,
                prop_oneof![4 => Just(Approve), 1 => Just(Reject)],
            ),
            0..30,
        ),
    )
        .prop_map(
            |(stages, delegations, requester, requested_by, (reuse, cap, allow), ops)| Case {
                stages,
                delegations,
                requester,
                requested_by,
                policy: Policy {
                    reuse_previous_answers: reuse,
                    when_short: if cap {
                        WhenShort::Cap
                    } else {
                        WhenShort::Refuse
                    },
                    allow_self_approval: allow,
                    ..Policy::default()
                },
                ops,
            },
        )
}

/// What must hold whatever the answers: the four-eyes invariant and its companions.
fn check(a: &Approval, parties: &Parties) -> Result<(), TestCaseError> {
    for (s, plan) in a.plan.iter().enumerate() {
        for (g, group) in plan.groups.iter().enumerate() {
            if a.stages[s].groups[g] == GroupStatus::Approved {
                let approvers: BTreeSet<&str> = a
                    .tasks
                    .iter()
                    .filter(|t| t.stage == s && group.members.contains(&t.approver_id))
                    .filter(|t| t.verdict == Some(Approve))
                    .map(|t| t.actor())
                    .collect();
                prop_assert!(
                    approvers.len() >= group.required(),
                    "group {} of stage {} approved by {:?}, needs {}",
                    group.name,
                    s,
                    approvers,
                    group.required()
                );
            }
            if !a.policy.allow_self_approval {
                for m in &group.members {
                    prop_assert!(parties.excludes(m, a.policy).is_none(), "{} seated", m);
                }
            }
        }
        // Nobody answers twice in a stage.
        let answered: Vec<&str> = a
            .tasks
            .iter()
            .filter(|t| t.stage == s && t.verdict.is_some())
            .map(|t| t.actor())
            .collect();
        let distinct: BTreeSet<&str> = answered.iter().copied().collect();
        prop_assert_eq!(
            answered.len(),
            distinct.len(),
            "stage {} answers {:?}",
            s,
            answered
        );
    }
    for t in &a.tasks {
        if let Some(actor) = &t.actor_id
            && !a.policy.allow_self_approval
            && t.state != TaskState::Reused
        {
            prop_assert!(
                parties.excludes(actor, a.policy).is_none(),
                "{} answered",
                actor
            );
        }
        if t.state == TaskState::Reused {
            prop_assert_eq!(t.actor(), t.approver_id.as_str());
            let own = a.tasks.iter().any(|e| {
                e.stage < t.stage
                    && e.approver_id == t.approver_id
                    && e.actor() == t.approver_id
                    && e.on_behalf_of.is_none()
                    && e.verdict == t.verdict
            });
            prop_assert!(
                own,
                "{} reused an answer that was not their own",
                t.approver_id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn no_approved_group_has_fewer_people_than_it_requires(c in case()) {
        let plan: Vec<StagePlan> = c
            .stages
            .iter()
            .enumerate()
            .map(|(s, groups)| {
                stage(
                    &format!("S{s}"),
                    Combine::All,
                    groups
                        .iter()
                        .enumerate()
                        .map(|(g, (r, _))| group(&format!("g{g}"), r.clone(), &[]))
                        .collect(),
                )
            })
            .collect();
        let mut dir = Dir::default();
        for (s, groups) in c.stages.iter().enumerate() {
            for (g, (_, members)) in groups.iter().enumerate() {
                dir.members.insert((s, g), members.iter().map(|&m| person(m)).collect());
            }
        }
        for &(from, to) in &c.delegations {
            dir.delegates.insert(person(from), person(to));
        }
        let parties = Parties {
            requester: c.requester.map(person),
            requested_by: c.requested_by.map(person),
        };
        let Ok((mut a, _)) = Approval::start(plan, c.policy, parties.clone(), t0(), &mut dir) else {
            return Ok(());
        };
        check(&a, &parties)?;
        for &(approver, actor, verdict) in &c.ops {
            let actor = if actor == POOL { "outsider".to_string() } else { person(actor) };
            let before = a.clone();
            if a.decide(&person(approver), &actor, verdict, Some("c".into()), t0(), &mut dir).is_err() {
                prop_assert_eq!(&a, &before);
            }
            check(&a, &parties)?;
        }
    }
}
