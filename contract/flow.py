"""The README flow through the Python client that openapi-python-client generates, unedited.

scripts/contract.sh generates the client into .tools/out/python (package `signoff_client`)
and runs this against a live signoff: SIGNOFF_URL and SIGNOFF_TOKEN say where and as whom.
Every answer is read through the generated models, so a spec that drifts from the server
fails here.
"""

import os
import sys
import uuid

from signoff_client import AuthenticatedClient
from signoff_client.api.approvals import decide, list_approvals, list_events, request_approval
from signoff_client.api.directory import put_principal
from signoff_client.api.processes import create_process, get_process
from signoff_client.api.webhooks import create_endpoint
from signoff_client.models import (
    ApprovalApprovedEvent,
    ApprovalList,
    ApprovalRequestedEvent,
    ApprovalStatus,
    ApprovalView,
    CreateEndpoint,
    DecisionInput,
    EndpointView,
    EventList,
    OutcomeViewDecision,
    Principal,
    PrincipalInput,
    Problem,
    ProblemCode,
    ProcessDefinition,
    ProcessView,
    RequestApproval,
)


def check(cond, what):
    if not cond:
        print(f"flow: FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"flow: ok: {what}")


def main():
    client = AuthenticatedClient(base_url=os.environ["SIGNOFF_URL"], token=os.environ["SIGNOFF_TOKEN"])
    run = uuid.uuid4().hex[:8]

    # Principals: a requester, their manager, and someone in finance.
    for pid, name, extra in [
        ("u-7", "Ada Lovelace", {"manager_id": "u-42"}),
        ("u-42", "Grace Hopper", {}),
        ("u-1", "Katherine Johnson", {"roles": ["finance"]}),
    ]:
        body = PrincipalInput.from_dict({"kind": "user", "display_name": name, "email": f"{pid}@example.com", **extra})
        r = put_principal.sync_detailed(pid, client=client, body=body)
        check(r.status_code in (200, 201) and isinstance(r.parsed, Principal), f"principal {pid} upserted")

    # A two-stage process: the requester's manager, then finance.
    definition = ProcessDefinition.from_dict({
        "name": f"Laptop purchase {run}",
        "on_approved_status": "approved",
        "on_rejected_status": "rejected",
        "settings": {"reject_requires_comment": True},
        "stages": [
            {"name": "Manager", "groups": [{"name": "manager", "source": {"type": "requester_manager"},
                                            "require": {"type": "count", "count": 1}}]},
            {"name": "Finance", "groups": [{"name": "finance", "source": {"type": "role", "role": "finance"},
                                            "require": {"type": "majority", "reject_at": 1}}]},
        ],
    })
    r = create_process.sync_detailed(client=client, body=definition)
    check(r.status_code == 201 and isinstance(r.parsed, ProcessView), "two-stage process created")
    process = r.parsed
    check(r.headers.get("etag") == f'"{process.version}"', "the process answer carries its ETag")
    got = get_process.sync_detailed(process.id, client=client)
    check(isinstance(got.parsed, ProcessView) and got.parsed.stages[1].groups[0].require.reject_at == 1,
          "the requirement reads back with reject_at beside its rule")

    # An approval, to its outcome.
    req = RequestApproval.from_dict({
        "ticket": {"id": f"T-{run}", "title": "New laptop", "requester_id": "u-7"},
        "process_id": process.id,
        "requested_by": "u-7",
    })
    r = request_approval.sync_detailed(client=client, body=req, idempotency_key=f"req-{run}")
    check(r.status_code == 201 and isinstance(r.parsed, ApprovalView), "approval requested")
    approval = r.parsed
    check(approval.state == ApprovalStatus.PENDING and approval.current_stage == 0, "it waits for stage 1")

    # Asking again on the same ticket is a 409 the client reads as a typed problem.
    r = request_approval.sync_detailed(client=client, body=req)
    check(r.status_code == 409 and isinstance(r.parsed, Problem)
          and r.parsed.code == ProblemCode.APPROVAL_PENDING
          and r.parsed.pending_approval_id == approval.id, "a second request is a typed 409 naming the pending one")

    r = decide.sync_detailed(approval.id, client=client,
                             body=DecisionInput.from_dict({"approver_id": "u-42", "decision": "approve"}))
    check(isinstance(r.parsed, ApprovalView) and r.parsed.current_stage == 1, "the manager approves: stage 2")
    r = decide.sync_detailed(approval.id, client=client,
                             body=DecisionInput.from_dict({"approver_id": "u-1", "decision": "approve"}))
    check(isinstance(r.parsed, ApprovalView) and r.parsed.state == ApprovalStatus.APPROVED, "finance approves")
    outcome = r.parsed.outcome
    check(outcome is not None and outcome.decision == OutcomeViewDecision.APPROVED
          and outcome.status_to_set == "approved", "the outcome says what status to set")

    # Events: the audit trail, typed.
    r = list_events.sync_detailed(approval.id, client=client)
    check(isinstance(r.parsed, EventList), "events listed")
    items = r.parsed.items
    types = [e.type_.value for e in items]
    check(types[0] == "approval.requested" and "approval.approved" in types,
          "events run from approval.requested to approval.approved")
    requested = items[0]
    check(isinstance(requested, ApprovalRequestedEvent)
          and requested.data.recipients[0].approve_url.startswith("http")
          and requested.data.recipients[0].principal.id == "u-42",
          "the requested event is typed: its recipients carry their links")
    approved = [e for e in items if isinstance(e, ApprovalApprovedEvent)]
    check(len(approved) == 1 and approved[0].data.ticket.status_to_set == "approved",
          "the approved event is typed: data.ticket.status_to_set without a cast")

    # A webhook endpoint: its secret is shown on create.
    r = create_endpoint.sync_detailed(client=client, body=CreateEndpoint.from_dict(
        {"url": "http://127.0.0.1:9/signoff", "events": ["approval.approved"], "description": "contract flow"}))
    check(r.status_code == 201 and isinstance(r.parsed, EndpointView)
          and isinstance(r.parsed.secret, str) and r.parsed.secret.startswith("whsec_"), "webhook endpoint created")

    # Pagination: a second approval, then pages of one.
    second = RequestApproval.from_dict({"ticket": {"id": f"T-{run}-2"}, "approvers": ["u-1"]})
    r = request_approval.sync_detailed(client=client, body=second)
    check(r.status_code == 201, "an ad-hoc approval requested")
    seen, cursor = [], None
    while True:
        kwargs = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        r = list_approvals.sync_detailed(client=client, **kwargs)
        check(isinstance(r.parsed, ApprovalList) and len(r.parsed.items) <= 1, f"page {len(seen) + 1}")
        seen += [a.id for a in r.parsed.items]
        cursor = r.parsed.next_cursor
        if cursor is None:
            break
    check(approval.id in seen and len(seen) == len(set(seen)) and len(seen) >= 2, "pages cover every approval once")

    # A 422 read as a typed problem with every field at fault.
    bad = ProcessDefinition.from_dict({
        "name": f"Broken {run}",
        "stages": [{"name": "S", "groups": [{"name": "g", "source": {"type": "principals", "ids": ["u-1"]},
                                             "require": {"type": "count", "count": 3}}]}],
        "expires_at": "2000-01-01T00:00:00Z",
    })
    r = create_process.sync_detailed(client=client, body=bad)
    check(r.status_code == 422 and isinstance(r.parsed, Problem)
          and r.parsed.code == ProblemCode.VALIDATION_FAILED, "an invalid process is a typed 422")
    fields = sorted(e.field for e in r.parsed.errors)
    check(fields == ["expires_at", "stages[0].groups[0].require.count"], f"every fault is listed: {fields}")


if __name__ == "__main__":
    main()
