// The README flow through the two TypeScript clients integrators generate, unedited:
// @hey-api/openapi-ts (an SDK of typed functions) and openapi-typescript (types) with its
// openapi-fetch runtime.
//
// scripts/contract.sh generates both into .tools/out/ts (hey-api/, openapi-typescript/),
// copies this file beside them, type-checks it with tsc and runs it with node against a live
// signoff: SIGNOFF_URL and SIGNOFF_TOKEN say where and as whom. Every answer is read through
// the generated types, so a spec that drifts from the server fails the type check or here.

import createFetchClient from 'openapi-fetch';

import { createClient } from './hey-api/client';
import * as sdk from './hey-api/sdk.gen';
import type { Event, Problem } from './hey-api/types.gen';
import type { components, paths } from './openapi-typescript/schema';

// Node's globals, without depending on @types/node.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

const baseUrl = process.env.SIGNOFF_URL ?? 'http://127.0.0.1:8080';
const token = process.env.SIGNOFF_TOKEN ?? '';

function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`flow.ts: FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`flow.ts: ok: ${what}`);
}

const principals: Array<[string, string, { manager_id?: string; roles?: string[] }]> = [
  ['u-7', 'Ada Lovelace', { manager_id: 'u-42' }],
  ['u-42', 'Grace Hopper', {}],
  ['u-1', 'Katherine Johnson', { roles: ['finance'] }],
];

function twoStages(name: string) {
  return {
    name,
    on_approved_status: 'approved',
    on_rejected_status: 'rejected',
    settings: { reject_requires_comment: true },
    stages: [
      {
        name: 'Manager',
        groups: [{ name: 'manager', source: { type: 'requester_manager' as const },
                   require: { type: 'count' as const, count: 1 } }],
      },
      {
        name: 'Finance',
        groups: [{ name: 'finance', source: { type: 'role' as const, role: 'finance' },
                   require: { type: 'majority' as const, reject_at: 1 } }],
      },
    ],
  };
}

const broken = (name: string) => ({
  name,
  expires_at: '2000-01-01T00:00:00Z',
  stages: [{ name: 'S', groups: [{ name: 'g', source: { type: 'principals' as const, ids: ['u-1'] },
                                   require: { type: 'count' as const, count: 3 } }] }],
});

function eventsAreTyped(tag: string, items: Event[] | components['schemas']['Event'][]): void {
  const types = items.map((e) => e.type);
  check(types[0] === 'approval.requested' && types.includes('approval.approved'),
    `${tag}: events run from approval.requested to approval.approved`);
  for (const e of items) {
    // Narrowing on `type` gives each event its own `data`: no casts.
    if (e.type === 'approval.requested') {
      check(e.data.recipients[0]?.approve_url.startsWith('http') === true,
        `${tag}: approval.requested carries recipients with their approve_url`);
    } else if (e.type === 'approval.approved') {
      check(e.data.ticket.status_to_set === 'approved' && e.data.detail.reason === 'decisions',
        `${tag}: approval.approved says which status to set`);
    }
  }
}

/** The flow through the SDK @hey-api/openapi-ts generates. */
async function heyApi(run: string): Promise<void> {
  const client = createClient({ baseUrl, auth: () => token });
  for (const [id, display_name, extra] of principals) {
    const r = await sdk.putPrincipal({ client, path: { id },
      body: { kind: 'user', display_name, email: `${id}@example.com`, ...extra } });
    check(r.data?.id === id && r.response?.headers.get('etag') !== null, `hey-api: principal ${id} upserted, with its ETag`);
  }
  const p = await sdk.createProcess({ client, body: twoStages(`Laptop purchase ${run} (hey-api)`) });
  check(p.response?.status === 201 && p.data !== undefined, 'hey-api: two-stage process created');
  const proc = p.data!;
  check(p.response?.headers.get('etag') === `"${proc.version}"`, 'hey-api: the process answer carries its ETag');
  const fresh = await sdk.getProcess({ client, path: { id: proc.id },
    headers: { 'If-None-Match': `"${proc.version}"` } });
  check(fresh.response?.status === 304, 'hey-api: If-None-Match with the current ETag is 304');

  const ticket = { id: `T-${run}-hey`, title: 'New laptop', requester_id: 'u-7' };
  const body = { ticket, process_id: proc.id, requested_by: 'u-7' };
  const a = await sdk.requestApproval({ client, body, headers: { 'Idempotency-Key': `req-${run}-hey` } });
  check(a.response?.status === 201 && a.data?.state === 'pending' && a.data.current_stage === 0,
    'hey-api: approval requested, waiting for stage 1');
  const approval = a.data!;
  const again = await sdk.requestApproval({ client, body });
  const conflict: Problem | undefined = again.error;
  check(again.response?.status === 409 && conflict?.code === 'approval_pending'
    && conflict.pending_approval_id === approval.id, 'hey-api: a second request is a typed 409 naming the pending one');

  let d = await sdk.decide({ client, path: { id: approval.id }, body: { approver_id: 'u-42', decision: 'approve' } });
  check(d.data?.current_stage === 1, 'hey-api: the manager approves: stage 2');
  d = await sdk.decide({ client, path: { id: approval.id }, body: { approver_id: 'u-1', decision: 'approve' } });
  check(d.data?.state === 'approved' && d.data.outcome?.decision === 'approved'
    && d.data.outcome.status_to_set === 'approved', 'hey-api: finance approves; the outcome says what status to set');

  const ev = await sdk.listEvents({ client, path: { id: approval.id } });
  check(ev.data !== undefined, 'hey-api: events listed');
  eventsAreTyped('hey-api', ev.data!.items);

  const ep = await sdk.createEndpoint({ client,
    body: { url: 'http://127.0.0.1:9/signoff', events: ['approval.approved'], description: 'contract flow (hey-api)' } });
  check(ep.response?.status === 201 && ep.data?.secret?.startsWith('whsec_') === true, 'hey-api: webhook endpoint created');

  const second = await sdk.requestApproval({ client, body: { ticket: { id: `T-${run}-hey-2` }, approvers: ['u-1'] } });
  check(second.response?.status === 201, 'hey-api: an ad-hoc approval requested');
  for (const order of ['asc', 'desc'] as const) {
    const seen: string[] = [];
    let cursor: string | null | undefined;
    do {
      const page = await sdk.listApprovals({ client, query: { limit: 1, order, cursor: cursor ?? undefined } });
      check(page.data !== undefined && page.data.items.length <= 1, `hey-api: ${order} page ${seen.length + 1}`);
      seen.push(...page.data!.items.map((x) => x.id));
      cursor = page.data!.next_cursor;
    } while (cursor);
    check(seen.includes(approval.id) && new Set(seen).size === seen.length && seen.length >= 2,
      `hey-api: ${order} pages cover every approval once`);
  }

  const bad = await sdk.createProcess({ client, body: broken(`Broken ${run} (hey-api)`) });
  const invalid: Problem | undefined = bad.error;
  const fields = (invalid?.errors ?? []).map((e) => e.field).sort();
  check(bad.response?.status === 422 && invalid?.code === 'validation_failed'
    && fields.join() === 'expires_at,stages[0].groups[0].require.count', 'hey-api: an invalid process is a typed 422 listing every fault');
}

/** The flow through openapi-typescript's types and openapi-fetch. */
async function openapiFetch(run: string): Promise<void> {
  const api = createFetchClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  for (const [id, display_name, extra] of principals) {
    const r = await api.PUT('/v1/principals/{id}', { params: { path: { id } },
      body: { kind: 'user', display_name, email: `${id}@example.com`, ...extra } });
    check(r.data?.id === id, `openapi-fetch: principal ${id} upserted`);
  }
  const p = await api.POST('/v1/processes', { body: twoStages(`Laptop purchase ${run} (openapi-fetch)`) });
  check(p.response?.status === 201 && p.data !== undefined, 'openapi-fetch: two-stage process created');
  const proc = p.data!;
  const tag = p.response?.headers.get('etag') ?? '';
  const stale = await api.PUT('/v1/processes/{id}', { params: { path: { id: proc.id }, header: { 'If-Match': `W/${tag}` } },
    body: twoStages(`Laptop purchase ${run} (openapi-fetch)`) });
  check(stale.response.status === 412 && stale.error?.code === 'version_mismatch', 'openapi-fetch: a weak If-Match is a typed 412');

  const ticket = { id: `T-${run}-fetch`, title: 'New laptop', requester_id: 'u-7' };
  const body = { ticket, process_id: proc.id, requested_by: 'u-7' };
  const a = await api.POST('/v1/approvals', { body });
  check(a.response?.status === 201 && a.data?.state === 'pending', 'openapi-fetch: approval requested');
  const approval = a.data!;
  const again = await api.POST('/v1/approvals', { body });
  check(again.response?.status === 409 && again.error?.code === 'approval_pending'
    && again.error.pending_approval_id === approval.id, 'openapi-fetch: a second request is a typed 409');

  for (const who of ['u-42', 'u-1']) {
    const d = await api.POST('/v1/approvals/{id}/decisions', { params: { path: { id: approval.id } },
      body: { approver_id: who, decision: 'approve' } });
    check(d.data !== undefined, `openapi-fetch: ${who} approves`);
  }
  const done = await api.GET('/v1/approvals/{id}', { params: { path: { id: approval.id } } });
  check(done.data?.outcome?.status_to_set === 'approved', 'openapi-fetch: approved, with the status to set');

  const ev = await api.GET('/v1/approvals/{id}/events', { params: { path: { id: approval.id }, query: { order: 'asc' } } });
  check(ev.data !== undefined, 'openapi-fetch: events listed');
  eventsAreTyped('openapi-fetch', ev.data!.items);

  const ep = await api.POST('/v1/webhook-endpoints', {
    body: { url: 'http://127.0.0.1:9/signoff', events: ['approval.approved'], description: 'contract flow (openapi-fetch)' } });
  check(ep.response?.status === 201 && ep.data?.secret?.startsWith('whsec_') === true, 'openapi-fetch: webhook endpoint created');

  const seen: string[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await api.GET('/v1/approvals', { params: { query: { limit: 1, order: 'desc', cursor: cursor ?? undefined } } });
    check(page.data !== undefined, `openapi-fetch: page ${seen.length + 1}`);
    seen.push(...page.data!.items.map((x) => x.id));
    cursor = page.data!.next_cursor;
  } while (cursor);
  check(seen.includes(approval.id) && new Set(seen).size === seen.length, 'openapi-fetch: pages cover every approval once');

  const bad = await api.POST('/v1/processes', { body: broken(`Broken ${run} (openapi-fetch)`) });
  check(bad.response?.status === 422 && bad.error?.code === 'validation_failed' && (bad.error.errors ?? []).length === 2,
    'openapi-fetch: an invalid process is a typed 422 listing every fault');
}

async function main(): Promise<void> {
  const run = Math.random().toString(16).slice(2, 10);
  await heyApi(run);
  await openapiFetch(run);
}

main().catch((e: unknown) => {
  console.error('flow.ts: FAILED:', e);
  process.exit(1);
});
