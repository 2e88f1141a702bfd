//! Plans right from the first request: on a new database, before Postgres has gathered any
//! statistics, and as the generic plan it caches for a pool's prepared statement, the queries
//! asked on every request use the index made for them instead of scanning the tenant.

use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

use crate::helpers::{fresh_database, url_for};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The generic plan of `sql` (with its `$n` parameters) for `args`.
fn generic_plan(conn: &mut PgConnection, sql: &str, args: &str) -> String {
    conn.batch_execute(&format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE q AS {sql}"
    ))
    .unwrap();
    let lines: Vec<Line> = diesel::sql_query(format!("EXPLAIN EXECUTE q({args})"))
        .load(conn)
        .unwrap();
    conn.batch_execute("DEALLOCATE q").unwrap();
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pending_on_a_ticket_uses_its_partial_index_without_statistics() {
    let db = fresh_database();
    let mut conn = PgConnection::establish(&url_for(&db)).unwrap();
    // 20,000 pending approvals of one tenant, as in the first minutes of a busy deployment:
    // no ANALYZE, and autovacuum has not come by.
    conn.batch_execute(
        "INSERT INTO approvals (tenant_id, id, ticket_id, ticket, definition, state, engine,
                                exclusive, last_sequence, created_at, updated_at)
         SELECT 'acme', gen_random_uuid(), 'T-' || n, '{}', '{}', 'pending', '{}', false, 0,
                now(), now()
         FROM generate_series(1, 20000) AS n",
    )
    .unwrap();
    let analyzed: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_stat_user_tables
           WHERE relname = 'approvals' AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL))",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(
        analyzed, 0,
        "the table must be without statistics for this test"
    );

    let query = signoff::db::approvals::pending_on_ticket_query("acme", "T-5");
    let sql = diesel::debug_query::<Pg, _>(&query).to_string();
    let sql = sql.split(" -- binds:").next().unwrap();
    let plan = generic_plan(&mut conn, sql, "'acme', 'T-5'");
    assert!(
        plan.contains("approvals_pending_ticket_idx"),
        "the generic plan does not use the partial index:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "{plan}");
    // The shape the query had before: a bound state and ORDER BY id. Its generic plan walks
    // every pending approval of the tenant, which is what the test guards against.
    let before = generic_plan(
        &mut conn,
        "SELECT id FROM approvals WHERE tenant_id = $1 AND ticket_id = $2 AND state = $3
         ORDER BY id FOR UPDATE",
        "'acme', 'T-5', 'pending'",
    );
    assert!(before.contains("approvals_state_idx"), "{before}");
}

/// Rows and index entries of `table` read so far in the open transaction, by any scan.
fn rows_read(conn: &mut PgConnection, table: &str) -> i64 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT sum(pg_stat_get_xact_tuples_returned(c.oid))::int8 FROM pg_class c
           WHERE c.oid = '{table}'::regclass
              OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = '{table}'::regclass))"
    )))
    .get_result(conn)
    .unwrap()
}

/// Claims one endpoint's share as worker 7 and records it, answering the rows of the outbox
/// each read.
fn claim_and_record(conn: &mut PgConnection) -> (i64, i64) {
    conn.batch_execute("BEGIN").unwrap();
    let before = rows_read(conn, "webhook_deliveries");
    let claimed: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM signoff_claim_deliveries(
            7, 60, 16, now(), 1, '{}'::uuid[], '{}'::uuid[], '{}'::int4[], 16))",
    ))
    .get_result(conn)
    .unwrap();
    assert_eq!(claimed, 16, "one endpoint's share");
    let claim_read = rows_read(conn, "webhook_deliveries") - before;
    conn.batch_execute(
        "CREATE TEMP TABLE got ON COMMIT DROP AS
           SELECT id FROM webhook_deliveries WHERE leased_by = 7",
    )
    .unwrap();
    let before = rows_read(conn, "webhook_deliveries");
    conn.batch_execute(
        "SELECT signoff_record_attempts(7, array_agg(id), array_agg('succeeded'::text),
                array_agg(now()), array_agg(200), array_agg(NULL::text), array_agg(now()),
                array_agg(1), array_agg(NULL::text))
         FROM got",
    )
    .unwrap();
    let record_read = rows_read(conn, "webhook_deliveries") - before;
    conn.batch_execute("COMMIT").unwrap();
    (claim_read, record_read)
}

#[test]
fn the_workers_plans_made_on_an_empty_outbox_hold_for_a_backlog() {
    let db = fresh_database();
    let mut conn = PgConnection::establish(&url_for(&db)).unwrap();
    let claim = |conn: &mut PgConnection| -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM signoff_claim_deliveries(
                7, 60, 16, now(), 1, '{}'::uuid[], '{}'::uuid[], '{}'::int4[], 16))",
        ))
        .get_result(conn)
        .unwrap()
    };
    // The connection plans its statements while the outbox is empty and known to be (a new
    // deployment that autovacuum has analyzed, a quiet hour), and keeps those plans: generic
    // ones, the worst case.
    conn.batch_execute(
        "ANALYZE webhook_deliveries, webhook_endpoints, webhook_attempts, events;
         SET plan_cache_mode = force_generic_plan",
    )
    .unwrap();
    for _ in 0..6 {
        assert_eq!(claim(&mut conn), 0);
    }
    conn.batch_execute(
        "SELECT signoff_record_attempts(7, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
    )
    .unwrap();
    // Then a backlog arrives, faster than autovacuum gathers statistics: 6,000 deliveries to
    // one endpoint, three events per approval.
    conn.batch_execute(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, secret)
         VALUES ('acme', '00000000-0000-0000-0000-0000000000e1', 'https://example.com/h',
                 '{*}', 's');
         INSERT INTO approvals (tenant_id, id, ticket_id, ticket, definition, state, engine,
                                exclusive, last_sequence, created_at, updated_at)
         SELECT 'acme', md5('a' || n)::uuid, 'T-' || n, '{}', '{}', 'pending', '{}', false, 3,
                now(), now()
         FROM generate_series(1, 2000) AS n;
         INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload)
         SELECT 'acme', md5('e' || n || '-' || k)::uuid, md5('a' || n)::uuid, k,
                'approval.requested', '{}'
         FROM generate_series(1, 3) AS k, generate_series(1, 2000) AS n ORDER BY k, n;
         INSERT INTO webhook_deliveries
           (id, tenant_id, endpoint_id, event_id, event_position, approval_id, event_type)
         SELECT gen_random_uuid(), 'acme', '00000000-0000-0000-0000-0000000000e1', e.id,
                e.position, e.approval_id, e.type
         FROM events e;",
    )
    .unwrap();
    // Until the statistics are refreshed, the plans made for an empty outbox read it at most
    // once per claim (without the defences: 16 million rows, a scan per candidate).
    let (claim_read, record_read) = claim_and_record(&mut conn);
    assert!(
        claim_read < 2 * 6000 && record_read < 100,
        "with stale plans the claim read {claim_read} and the record {record_read} rows of 6,000"
    );
    // The worker notices the burst and analyzes the outbox: every connection plans again.
    conn.batch_execute("SELECT pg_stat_force_next_flush()")
        .unwrap();
    assert!(signoff::db::webhooks::refresh_outbox_statistics(&mut conn).unwrap());
    assert!(
        !signoff::db::webhooks::refresh_outbox_statistics(&mut conn).unwrap(),
        "analyzed once"
    );
    let (claim_read, record_read) = claim_and_record(&mut conn);
    assert!(
        claim_read < 1000 && record_read < 100,
        "the claim read {claim_read} and the record {record_read} rows of an outbox of 6,000"
    );
    let recorded: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM webhook_attempts)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(recorded, 32);
}

/// Approval and task rows (table and index entries) read by `f`, in a transaction.
fn approval_rows_read(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> usize,
) -> (usize, i64) {
    conn.batch_execute("BEGIN").unwrap();
    let before = rows_read(conn, "approvals") + rows_read(conn, "approval_tasks");
    let found = f(conn);
    let read = rows_read(conn, "approvals") + rows_read(conn, "approval_tasks") - before;
    conn.batch_execute("COMMIT").unwrap();
    (found, read)
}

/// The inbox and `?approver_id=` as the service runs them, in both orders. Before migration
/// 000080 and the queries' rewrite, the inbox of `a-0` here read 40 million rows (a nested
/// loop over a scan, 14 s) for its 51; newest first from a cursor, `?approver_id=a-0` read
/// all of a-0's tasks before it and sorted them.
#[test]
fn the_inbox_and_the_approver_filter_read_a_page_without_statistics() {
    use signoff::db::Order;
    use signoff::db::listing::{ListFilter, inbox, list};
    let db = fresh_database();
    let mut conn = PgConnection::establish(&url_for(&db)).unwrap();
    // 20,000 pending approvals of one tenant, three approvers each in their running stage,
    // out of a thousand; `a-0` is on one in ten, most on a few dozen. No ANALYZE, and
    // autovacuum does not come by: under a busy suite it otherwise may, between the insert and
    // the last plan, and the plans then have statistics after all.
    conn.batch_execute(
        "ALTER TABLE approvals SET (autovacuum_enabled = false);
         ALTER TABLE approval_tasks SET (autovacuum_enabled = false);
         INSERT INTO approvals (tenant_id, id, ticket_id, ticket, definition, state, engine,
                                current_stage, exclusive, last_sequence, created_at, updated_at)
         SELECT 'acme', md5('a' || n)::uuid, 'T-' || n, '{}', '{}', 'pending', '{}', 0, false, 0,
                now(), now()
         FROM generate_series(1, 20000) AS n;
         INSERT INTO approval_tasks (tenant_id, approval_id, stage, approver_id, state)
         SELECT 'acme', md5('a' || n)::uuid, 0,
                'a-' || (floor(1000 * ((hashint4(n) & 2147483647) / 2147483648.0) ^ 3)::int
                         + 337 * k) % 1000, 'pending'
         FROM generate_series(1, 20000) AS n, generate_series(0, 2) AS k;",
    )
    .unwrap();
    let one = |who: &str| vec![who.to_string()];
    // As a connection's first calls are planned (for their values), and as the read pool's
    // sessions plan them (generic plans from the first call).
    // Oldest first and newest first, from the start and from the middle.
    let middle = Some(uuid::Uuid::parse_str("80000000-0000-0000-0000-000000000000").unwrap());
    let mut cases = vec![];
    for mode in ["auto", "force_generic_plan"] {
        for who in ["a-0", "a-7"] {
            for order in [Order::Asc, Order::Desc] {
                for after in [None, middle] {
                    cases.push((mode, who, order, after));
                }
            }
        }
    }
    for (mode, who, order, after) in cases {
        conn.batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .unwrap();
        let (found, read) = approval_rows_read(&mut conn, |c| {
            inbox(c, "acme", &one(who), order, after, 51).unwrap().len()
        });
        assert!(found > 0, "{who} has an inbox");
        assert!(
            read < 500,
            "the inbox of {who} ({mode}, {order:?} from {after:?}) read {read} rows for {found}"
        );
        let filter = ListFilter {
            approver_id: Some(who.to_string()),
            ..Default::default()
        };
        let (found, read) = approval_rows_read(&mut conn, |c| {
            list(c, "acme", &filter, order, after, 51).unwrap().len()
        });
        assert!(found > 0, "{who} has approvals");
        assert!(
            read < 500,
            "?approver_id={who} ({mode}, {order:?} from {after:?}) read {read} rows for {found}"
        );
    }
    let analyzed: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_stat_user_tables
           WHERE relname IN ('approvals', 'approval_tasks')
             AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL))",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(analyzed, 0, "the tables were without statistics throughout");
}

/// Every list page is a prepared statement that each pooled connection keeps: after five
/// calls Postgres may switch it to a generic plan, made once without the parameters' values. Whatever it switches to must still read a page, for every
/// filter, in both orders, from the start and from a cursor, a heavy approver and a light one.
#[test]
fn every_list_page_reads_a_page_when_its_plan_is_cached() {
    use signoff::db::Order;
    use signoff::db::listing::{ListFilter, inbox, list};
    let db = fresh_database();
    let mut conn = PgConnection::establish(&url_for(&db)).unwrap();
    // 20,000 approvals of one tenant, a twentieth pending, on 6,000 tickets and 20 processes,
    // three approvers each out of a thousand, `a-0` on one in ten; analyzed, as autovacuum
    // leaves them (plans without statistics are the test above's).
    conn.batch_execute(
        "INSERT INTO approvals (tenant_id, id, ticket_id, ticket, process_id, definition, state,
                                engine, current_stage, exclusive, last_sequence, created_at,
                                updated_at)
         SELECT 'acme', md5('a' || n)::uuid, 'T-' || n % 6000, '{}',
                ('00000000-0000-0000-0000-0000000000' || lpad((n % 20)::text, 2, '0'))::uuid, '{}',
                CASE WHEN n % 20 = 0 THEN 'pending' ELSE 'approved' END, '{}',
                CASE WHEN n % 20 = 0 THEN 0 END, false, 0, now(), now()
         FROM generate_series(1, 20000) AS n;
         INSERT INTO approval_tasks (tenant_id, approval_id, stage, approver_id, state)
         SELECT 'acme', md5('a' || n)::uuid, 0,
                'a-' || (floor(1000 * ((hashint4(n) & 2147483647) / 2147483648.0) ^ 3)::int
                         + 337 * k) % 1000,
                CASE WHEN n % 20 = 0 THEN 'pending' ELSE 'approved' END
         FROM generate_series(1, 20000) AS n, generate_series(0, 2) AS k;
         ANALYZE approvals, approval_tasks;",
    )
    .unwrap();
    let middle = Some(uuid::Uuid::parse_str("80000000-0000-0000-0000-000000000000").unwrap());
    let filters = [
        ListFilter::default(),
        ListFilter {
            state: Some("pending".into()),
            ..Default::default()
        },
        ListFilter {
            state: Some("approved".into()),
            ..Default::default()
        },
        ListFilter {
            ticket_id: Some("T-5".into()),
            ..Default::default()
        },
        ListFilter {
            process_id: Some(
                uuid::Uuid::parse_str("00000000-0000-0000-0000-000000000005").unwrap(),
            ),
            ..Default::default()
        },
        ListFilter {
            approver_id: Some("a-0".into()),
            ..Default::default()
        },
        ListFilter {
            approver_id: Some("a-7".into()),
            ..Default::default()
        },
    ];
    for order in [Order::Asc, Order::Desc] {
        for after in [None, middle] {
            for f in &filters {
                let mut first = None;
                for call in 0..8 {
                    let (found, read) = approval_rows_read(&mut conn, |c| {
                        list(c, "acme", f, order, after, 51).unwrap().len()
                    });
                    let bound = *first.get_or_insert(read.max(500) * 2);
                    assert!(
                        read <= bound,
                        "{f:?} {order:?} from {after:?}, call {call}: read {read} rows for {found}"
                    );
                }
            }
            for who in [
                vec!["a-0".to_string()],
                vec!["a-7".into()],
                vec!["a-0".into(), "a-7".into()],
            ] {
                let mut first = None;
                for call in 0..8 {
                    let (found, read) = approval_rows_read(&mut conn, |c| {
                        inbox(c, "acme", &who, order, after, 51).unwrap().len()
                    });
                    assert!(found > 0 || after.is_some(), "{who:?} has an inbox");
                    let bound = *first.get_or_insert(read.max(500) * 2);
                    assert!(
                        read <= bound,
                        "inbox of {who:?} {order:?} from {after:?}, call {call}: read {read} rows for {found}"
                    );
                }
            }
        }
    }
}

/// What every request runs on its ticket (the lock, the upsert, the pending approvals on it,
/// and the rules' pending approvals of a report) is prepared once per connection and run
/// from then on, not parsed and planned again on each call: written with a fixed condition
/// (`Condition`) or as a `Statement`, never `diesel::dsl::sql` or `sql_query`.
#[test]
fn the_statements_on_a_ticket_are_prepared_once_per_connection() {
    use signoff::db::{approvals, automation};
    let db = fresh_database();
    let mut conn = PgConnection::establish(&url_for(&db)).unwrap();
    let ticket: signoff::domain::ticket::Ticket =
        serde_json::from_value(serde_json::json!({"id": "T-1", "title": "New laptop"})).unwrap();
    for _ in 0..2 {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            approvals::lock_ticket(c, "acme", "T-1")?;
            automation::merge(c, "acme", &ticket, chrono::Utc::now())?;
            approvals::pending_on_ticket(c, "acme", "T-1")?;
            automation::pending_on_ticket(c, "acme", "T-1")?;
            automation::pending_rule_approvals(c, "acme", "T-1")?;
            Ok(())
        })
        .unwrap();
    }
    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
    }
    let prepared: Vec<String> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Prepared>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|p| p.statement)
        .collect();
    for what in [
        "pg_advisory_xact_lock",
        "INSERT INTO tickets",
        "state = 'pending') FOR UPDATE",
        "state = 'pending' AND requested_by LIKE 'rule:%') FOR UPDATE",
    ] {
        assert!(
            prepared.iter().any(|s| s.contains(what)),
            "no prepared statement holds {what:?}: {prepared:#?}"
        );
    }
    let unlocked = prepared
        .iter()
        .filter(|s| s.contains("state = 'pending')") && !s.contains("FOR UPDATE"))
        .count();
    assert_eq!(unlocked, 1, "{prepared:#?}");
}
