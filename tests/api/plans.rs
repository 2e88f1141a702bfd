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
