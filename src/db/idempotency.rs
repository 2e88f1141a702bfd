//! The `idempotency_keys` table: a key is claimed by a transaction-scoped advisory lock, and
//! the answer of the effect it guarded is stored in the same transaction (see
//! `api::idempotency`, which reads keys from requests and replays answers).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::db::schema::idempotency_keys::dsl as k;

/// A keyed transaction whose client (a replica) stays silent this long is rolled back by
/// Postgres, which frees its key.
pub const IDLE_CLAIM_TIMEOUT: &str = "5s";

/// Who a key belongs to, the key itself, and what made the request (its fingerprint).
pub struct KeyOf<'a> {
    pub tenant: &'a str,
    pub client: &'a str,
    pub key: &'a str,
}

/// An answer as kept for replays.
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: Option<i16>,
    /// JSON text, sealed when `sealed`.
    pub response: Option<String>,
    /// JSON text: the list of (name, value) headers replayed with it.
    pub headers: Option<String>,
    pub sealed: bool,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// A stored key as `find` reads it: request hash, status, response, headers, replayable.
type StoredKey = (String, Option<i16>, Option<String>, Option<String>, bool);

/// Takes the key's transaction-scoped advisory lock (`lock_key`, a hash of the key), and
/// bounds how long this transaction may sit idle. False when another transaction holds it.
pub fn claim(c: &mut PgConnection, lock_key: i64) -> QueryResult<bool> {
    diesel::sql_query(format!(
        "SET LOCAL idle_in_transaction_session_timeout = '{IDLE_CLAIM_TIMEOUT}'"
    ))
    .execute(c)?;
    let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(lock_key)
        .get_result(c)?;
    Ok(locked.locked)
}

/// The stored answer of a key, after forgetting it when it is older than `retention_start`
/// (a row without an answer is a claim an older version committed ahead of its effect).
pub fn find(
    c: &mut PgConnection,
    key: &KeyOf<'_>,
    retention_start: DateTime<Utc>,
) -> QueryResult<Option<StoredAnswer>> {
    let this = k::tenant_id
        .eq(key.tenant)
        .and(k::client_id.eq(key.client))
        .and(k::key.eq(key.key));
    diesel::delete(k::idempotency_keys)
        .filter(this)
        .filter(k::created_at.lt(retention_start).or(k::status.is_null()))
        .execute(c)?;
    let found: Option<StoredKey> = k::idempotency_keys
        .filter(this)
        .select((
            k::request_hash,
            k::status,
            k::response,
            k::headers,
            k::sealed,
        ))
        .first(c)
        .optional()?;
    Ok(found.map(
        |(request_hash, status, response, headers, sealed)| StoredAnswer {
            request_hash,
            status,
            response,
            headers,
            sealed,
        },
    ))
}

/// Stores the answer of a key's effect, in the effect's transaction.
pub fn store(c: &mut PgConnection, key: &KeyOf<'_>, answer: &StoredAnswer) -> QueryResult<()> {
    diesel::insert_into(k::idempotency_keys)
        .values((
            k::tenant_id.eq(key.tenant),
            k::client_id.eq(key.client),
            k::key.eq(key.key),
            k::request_hash.eq(&answer.request_hash),
            k::status.eq(answer.status),
            k::response.eq(&answer.response),
            k::headers.eq(&answer.headers),
            k::sealed.eq(answer.sealed),
            k::completed_at.eq(diesel::dsl::now),
        ))
        .execute(c)?;
    Ok(())
}
