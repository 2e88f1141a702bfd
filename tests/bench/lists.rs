//! Lists flat to a million (`BENCH_ONLY=lists`, and the last phase of the full run): one
//! tenant's data is grown in SQL to `SMALL` approvals, every list is measured, then grown to
//! `LARGE` and measured again. A page of 50 must stay under `PAGE_P99_TARGET` at the 99th
//! percentile, and its p99 at `LARGE` within `FLAT_RATIO_TARGET` of its p99 at `SMALL`.
//!
//! The grown rows are copies of four approvals made through the API (pending, approved,
//! rejected, cancelled), with their own ids (UUIDv7, as the service makes them, spread over a
//! year so that growth lands between the rows already there), tickets (three approvals a
//! ticket), processes (twenty, and ad-hoc for 40 %) and approvers (a thousand, skewed: `a-0`
//! sits on one approval in ten; and `lead`, asked on every pending one), each with three tasks
//! in the template's stage and an event.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use base64::Engine;
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::json;

use super::{Api, Cpu, Stats, TENANT, Table, id_of, load_on, measure_cpu, ms, per};

/// Approvals of the tenant at the first measurement.
const SMALL: i64 = 10_000;
/// Approvals of the tenant at the second.
const LARGE: i64 = 1_000_000;
/// Concurrent readers.
const READERS: usize = 8;
/// Pages read per list and size: enough that the 99th percentile is the 20th slowest page,
/// not the 4th (with 400, one stall on the two shared cores moved it by 10 ms).
const PAGES: usize = 2000;
/// A page of 50 at the 99th percentile, at most.
const PAGE_P99_TARGET: Duration = Duration::from_millis(15);
/// p99 at `LARGE` over p99 at `SMALL`, at most.
const FLAT_RATIO_TARGET: f64 = 1.5;

/// The lists measured (paths in [`path`]): oldest first, then the approval lists and the inbox
/// newest first (`order=desc`), which walk their indexes the other way.
const LISTS: [&str; 13] = [
    "GET /v1/approvals",
    "  ?state=pending",
    "  ?ticket_id=",
    "  ?process_id=",
    "  ?approver_id=",
    "GET /v1/principals/{id}/pending-approvals",
    "GET /v1/approvals/{id}/events",
    "GET /v1/approvals?order=desc",
    "  &state=pending",
    "  &ticket_id=",
    "  &process_id=",
    "  &approver_id=",
    "GET …/pending-approvals?order=desc",
];
/// Lists from this index on are read newest first.
const NEWEST_FIRST: usize = 7;

/// What the bench reads of a page: how many items it holds (each skipped over, not built: the
/// client shares the machine with what it measures).
#[derive(serde::Deserialize)]
struct Page {
    items: Vec<serde::de::IgnoredAny>,
}

impl Api {
    /// GETs `path` and answers the number of items of the page a 2xx holds; anything else is
    /// an error.
    async fn items(&self, path: &str) -> anyhow::Result<usize> {
        let res = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{path}: no answer"))?;
        let status = res.status();
        let body = res.bytes().await?;
        ensure!(
            status.is_success(),
            "{path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(serde_json::from_slice::<Page>(&body)?.items.len())
    }
}

/// A number in [0, 1) drawn from `i` and `salt`, the same in every run.
fn draw(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(1);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) as f64 / u64::MAX as f64
}

/// A cursor at a random point of the year the ids span, for half of the pages (the other
/// half are first pages).
fn cursor(i: usize) -> String {
    if i.is_multiple_of(2) {
        return String::new();
    }
    let ms = chrono::Utc::now().timestamp_millis() - 400 * 86_400_000
        + (draw(i, 9) * 365.0 * 86_400_000.0) as i64;
    let id = format!("{ms:012x}70008000000000000000");
    let id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    format!(
        "&cursor={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
    )
}

/// The path of page `i` of list `list` when the tenant has `size` grown approvals.
fn path(list: usize, i: usize, size: i64, approvals: &[String]) -> String {
    if list >= NEWEST_FIRST {
        return format!(
            "{}&order=desc",
            path(list - NEWEST_FIRST, i, size, approvals)
        );
    }
    let c = cursor(i);
    match list {
        0 => format!("/v1/approvals?limit=50{c}"),
        1 => format!("/v1/approvals?limit=50&state=pending{c}"),
        2 => format!(
            "/v1/approvals?limit=50&ticket_id=G-{}",
            (draw(i, 1) * size as f64 / 3.0) as i64
        ),
        3 => format!(
            "/v1/approvals?limit=50&process_id={}{c}",
            process_id((draw(i, 2) * 20.0) as i64)
        ),
        // The heaviest approver (one approval in ten), whose pages are full at both sizes: a
        // flat list reads the same page whatever the history behind it. (Others' pages hold a
        // handful at 10 k and 50 at 1 M, which compares page sizes, not flatness.)
        4 => format!("/v1/approvals?limit=50&approver_id=a-0{c}"),
        // The same for the inbox: `lead`, asked on every pending approval (a-0 waits on
        // about 25 at 10 k).
        5 => format!("/v1/principals/lead/pending-approvals?limit=50{c}"),
        _ => format!(
            "/v1/approvals/{}/events?limit=50",
            approvals[i % approvals.len()]
        ),
    }
}

fn process_id(k: i64) -> String {
    format!("00000000-0000-7000-8000-{k:012}")
}

/// Four approvals through the API, one in each state, that the grown rows copy.
async fn templates(api: &Api) -> anyhow::Result<()> {
    let mut ids = vec![];
    for state in ["pending", "approved", "rejected", "cancelled"] {
        let view = api
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": format!("LT-{state}"), "title": "New laptop",
                                  "requester_id": "req"},
                       "approvers": ["u-1", "u-2", "u-3"], "require": {"type": "all"},
                       "on_approved_status": "approved", "on_rejected_status": "rejected",
                       "description": "A laptop for the new starter"}),
            )
            .await?;
        ids.push(id_of(&view)?);
    }
    for who in ["u-1", "u-2", "u-3"] {
        api.approve(&ids[1], who).await?;
    }
    api.post(
        &format!("/v1/approvals/{}/decisions", ids[2]),
        json!({"approver_id": "u-1", "decision": "reject", "comment": "Not this quarter"}),
    )
    .await?;
    api.post(
        &format!("/v1/approvals/{}/cancel", ids[3]),
        json!({"reason": "The ticket was withdrawn"}),
    )
    .await?;
    Ok(())
}

/// Grows the tenant's approvals numbered `from + 1 ..= to`, with their tasks and events, in
/// one statement. Each stores its template's view with its own id and ticket (the rest of the
/// view is the template's: a page of them costs what a page of real views costs).
fn grow(db_url: &str, from: i64, to: i64) -> anyhow::Result<()> {
    // `h(k)`: a number in [0, 1) drawn from the row number, the same in every run.
    let h = |k: u32| format!("((hashint8(n * 8 + {k}) & 2147483647) / 2147483648.0)");
    let g = |k: u32| format!("((hashtext(ins.id::text || '{k}') & 2147483647) / 2147483648.0)");
    let sql = format!(
        "WITH t AS (
           SELECT a.*, (SELECT min(stage) FROM approval_tasks k
                        WHERE k.tenant_id = a.tenant_id AND k.approval_id = a.id) AS stage,
                  (SELECT payload FROM events e WHERE e.tenant_id = a.tenant_id
                     AND e.approval_id = a.id ORDER BY sequence LIMIT 1) AS payload
           FROM approvals a WHERE a.tenant_id = '{TENANT}' AND a.ticket_id LIKE 'LT-%'),
         g AS (
           SELECT n, 'G-' || n / 3 AS ticket_id,
                  CASE WHEN n % 20 = 0 THEN 'pending' WHEN n % 20 < 15 THEN 'approved'
                       WHEN n % 20 < 18 THEN 'rejected' ELSE 'cancelled' END AS state,
                  CASE WHEN {p} < 0.4 THEN NULL
                       ELSE ('00000000-0000-7000-8000-' || lpad((floor(({p} - 0.4) / 0.6 * 20))::text, 12, '0'))::uuid
                  END AS process_id,
                  (extract(epoch FROM now() - interval '400 days') * 1000)::int8
                    + floor({at} * 365 * 86400000)::int8 AS ms
           FROM generate_series({from} + 1, {to}) AS n),
         gi AS (
           SELECT g.*, (lpad(to_hex(g.ms), 12, '0') || '7' || substr(md5(g.n::text), 1, 3) || '8'
                        || substr(md5(g.n::text), 4, 15))::uuid AS id
           FROM g),
         ins AS (
           INSERT INTO approvals (tenant_id, id, ticket_id, ticket, process_id, process_version,
                                  process_name, definition, state, engine, current_stage,
                                  exclusive, description, requested_by, status_to_set,
                                  decided_at, last_sequence, created_at, updated_at, view)
           SELECT t.tenant_id, g.id, g.ticket_id, jsonb_set(t.ticket, '{{id}}', to_jsonb(g.ticket_id)),
                  g.process_id, CASE WHEN g.process_id IS NOT NULL THEN 1 END,
                  CASE WHEN g.process_id IS NOT NULL THEN 'Purchase ' || right(g.process_id::text, 2) END,
                  t.definition, t.state, t.engine, t.current_stage, false, t.description,
                  t.requested_by, t.status_to_set,
                  CASE WHEN t.decided_at IS NOT NULL
                       THEN to_timestamp(g.ms / 1000.0) + interval '1 day' END,
                  t.last_sequence, to_timestamp(g.ms / 1000.0), to_timestamp(g.ms / 1000.0),
                  replace(replace(t.view::text, t.id::text, g.id::text),
                          chr(34) || t.ticket_id || chr(34), chr(34) || g.ticket_id || chr(34))::json
           FROM gi AS g JOIN t ON t.state = g.state
           RETURNING id, state, created_at),
         tasks AS (
           INSERT INTO approval_tasks (tenant_id, approval_id, stage, approver_id, state,
                                       verdict, decided_at, actor_id)
           SELECT '{TENANT}', ins.id, t.stage, x.approver_id, x.state,
                  CASE x.state WHEN 'approved' THEN 'approve' WHEN 'rejected' THEN 'reject' END,
                  CASE WHEN x.state IN ('approved', 'rejected')
                       THEN ins.created_at + interval '1 hour' END,
                  CASE WHEN x.state IN ('approved', 'rejected') THEN x.approver_id END
           FROM ins JOIN t ON t.state = ins.state, generate_series(0, 2) AS k,
                LATERAL (SELECT CASE WHEN ins.state = 'pending' AND k = 2 THEN 'lead'
                                     ELSE 'a-' || ((floor(1000 * {b} ^ 3))::int + 337 * k) % 1000
                                END AS approver_id,
                                CASE ins.state
                                  WHEN 'approved' THEN 'approved'
                                  WHEN 'rejected' THEN CASE k WHEN 0 THEN 'rejected' ELSE 'superseded' END
                                  WHEN 'cancelled' THEN 'superseded'
                                  ELSE CASE WHEN k = 0 AND {d} < 0.5 THEN 'approved' ELSE 'pending' END
                                END AS state) x
           RETURNING 1)
         INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload, created_at)
         SELECT '{TENANT}', md5(ins.id::text)::uuid, ins.id, 1, 'approval.requested',
                t.payload, ins.created_at
         FROM ins JOIN t ON t.state = ins.state",
        p = h(1),
        at = h(2),
        b = g(3),
        d = g(4),
    );
    // The load's own session: nothing waits on its commit, and the foreign keys (which hold
    // by construction) are not checked row by row, as pg_restore --disable-triggers does.
    let mut conn = PgConnection::establish(db_url)?;
    diesel::sql_query("SET synchronous_commit = off").execute(&mut conn)?;
    diesel::sql_query("SET session_replication_role = replica").execute(&mut conn)?;
    diesel::sql_query(sql).execute(&mut conn)?;
    Ok(())
}

/// Each list's latencies at one size, and the items its pages held on average.
async fn measure(
    api: &Arc<Api>,
    pid: u32,
    size: i64,
    approvals: Arc<Vec<String>>,
) -> anyhow::Result<Vec<(Stats, f64, Cpu)>> {
    let mut out = vec![];
    for list in 0..LISTS.len() {
        // A round unmeasured first: every pooled connection opens, and prepares each shape of
        // the list's statement (with and without a cursor) past the executions after which
        // Postgres weighs a generic plan against the custom ones (the sixth): steady state.
        for (count, measured) in [(20 * READERS, false), (PAGES, true)] {
            let (a, ids) = (api.clone(), approvals.clone());
            let items = Arc::new(AtomicUsize::new(0));
            let seen = items.clone();
            let (result, cpu) = measure_cpu(
                pid,
                load_on(READERS, count, move |i| {
                    let (a, ids, seen) = (a.clone(), ids.clone(), seen.clone());
                    async move {
                        let n = a.items(&path(list, i, size, &ids)).await?;
                        seen.fetch_add(n, Ordering::Relaxed);
                        Ok(())
                    }
                }),
            )
            .await;
            let (took, _) = result?;
            if measured {
                let mean = items.load(Ordering::Relaxed) as f64 / count as f64;
                let cpu = Cpu {
                    signoff: per(cpu.signoff, count),
                    postgres: per(cpu.postgres, count),
                };
                if std::env::var_os("BENCH_SLOWEST").is_some() {
                    slowest(api, list, size, &approvals, &took).await?;
                }
                out.push((Stats::of(&took), mean, cpu));
            }
        }
    }
    Ok(out)
}

/// With `BENCH_SLOWEST` set: the five slowest pages of a list, each read again alone (the
/// best of three), to tell a page that costs that much from a page that waited for the CPU.
async fn slowest(
    api: &Api,
    list: usize,
    size: i64,
    approvals: &[String],
    took: &[Duration],
) -> anyhow::Result<()> {
    let mut order: Vec<usize> = (0..took.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(took[i]));
    for &i in order.iter().take(5) {
        let path = path(list, i, size, approvals);
        let mut alone = Duration::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            api.items(&path).await?;
            alone = alone.min(t.elapsed());
        }
        println!(
            "  slow page {i}: {} ms under load, {} ms alone: {path}",
            ms(took[i]),
            ms(alone)
        );
    }
    Ok(())
}

/// Ids of grown approvals, about `n`, spread over the `size` there are.
fn sample(conn: &mut PgConnection, n: usize, size: i64) -> anyhow::Result<Arc<Vec<String>>> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let ids: Vec<Id> = diesel::sql_query(format!(
        "SELECT id::text AS id FROM approvals
         WHERE tenant_id = '{TENANT}'
           AND ticket_id IN (SELECT 'G-' || k * ({size} / 3 / {n}) FROM generate_series(1, {n}) k)"
    ))
    .load(conn)?;
    Ok(Arc::new(ids.into_iter().map(|i| i.id).collect()))
}

/// Gathers statistics after growing, as autovacuum would once it came by (its insert
/// threshold is crossed many times over); the visibility map it would set too.
fn settle(conn: &mut PgConnection) -> anyhow::Result<()> {
    diesel::sql_query("VACUUM (ANALYZE) approvals, approval_tasks, events").execute(conn)?;
    // And written out, so that the checkpoint after a load this size does not land in the
    // measurement.
    diesel::sql_query("CHECKPOINT").execute(conn)?;
    Ok(())
}

/// The phase: grow, measure, grow, measure, print the table, note every missed target.
pub async fn lists(
    api: &Arc<Api>,
    pid: u32,
    db_url: &str,
    table: &mut Table,
) -> anyhow::Result<()> {
    templates(api).await?;
    let mut conn = PgConnection::establish(db_url)?;
    let mut results = vec![];
    let mut grown = 0;
    for size in [SMALL, LARGE] {
        let started = Instant::now();
        grow(db_url, grown, size)?;
        let inserted = started.elapsed();
        settle(&mut conn)?;
        println!(
            "lists: grew to {size} approvals in {:.1} s, vacuumed and analyzed in {:.1} s",
            inserted.as_secs_f64(),
            (started.elapsed() - inserted).as_secs_f64()
        );
        grown = size;
        let ids = sample(&mut conn, PAGES, size)?;
        results.push(measure(api, pid, size, ids).await?);
    }
    println!();
    println!(
        "lists, a page of 50 at {READERS} connections: p99 at {SMALL} and at {LARGE} approvals"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>6} {:>11} {:>15}  targets",
        "list", "p50 10k", "p99 10k", "p50 1M", "p99 1M", "ratio", "items/page", "CPU/page 1M"
    );
    for (i, what) in LISTS.iter().enumerate() {
        let ((small, small_items, _), (large, large_items, cpu)) = (&results[0][i], &results[1][i]);
        let ratio = large.p99.as_secs_f64() / small.p99.as_secs_f64().max(1e-6);
        let worst = small.p99.max(large.p99);
        let flat = ratio <= FLAT_RATIO_TARGET;
        let fast = worst <= PAGE_P99_TARGET;
        if !flat {
            table.missed.push(format!(
                "{}: p99 {} ms at 1 M over {} ms at 10 k = {ratio:.2} > {FLAT_RATIO_TARGET}",
                what.trim(),
                ms(large.p99),
                ms(small.p99)
            ));
        }
        if !fast {
            table.missed.push(format!(
                "{}: page p99 {} ms > {} ms",
                what.trim(),
                ms(worst),
                ms(PAGE_P99_TARGET)
            ));
        }
        println!(
            "{what:<44} {:>9} {:>9} {:>9} {:>9} {ratio:>6.2} {:>11} {:>15}  ≤ {FLAT_RATIO_TARGET} {}, ≤ {} ms {}",
            ms(small.p50),
            ms(small.p99),
            ms(large.p50),
            ms(large.p99),
            format!("{small_items:.0} / {large_items:.0}"),
            format!("{} + {} ms", ms(cpu.signoff), ms(cpu.postgres)),
            if flat { "ok" } else { "MISSED" },
            PAGE_P99_TARGET.as_millis(),
            if fast { "ok" } else { "MISSED" },
        );
    }
    println!();
    Ok(())
}
