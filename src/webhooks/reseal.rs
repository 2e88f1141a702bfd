//! Sealing endpoint secrets with the current `SIGNOFF_SECRET_KEY`: at each rotation, and by a
//! housekeeping pass that re-seals whatever is in the clear or under a previous key, so a key
//! rotation completes by itself and the previous key can then be dropped.

use diesel::PgConnection;

use crate::db::webhooks::{self as q, PreviousSecret};
use crate::secrets::{SecretError, SecretKeys};

/// `stored` sealed with the current key (opened and sealed again when it is not).
pub fn reseal_one(keys: &SecretKeys, context: &str, stored: &str) -> Result<String, SecretError> {
    if keys.is_current(stored) {
        return Ok(stored.to_string());
    }
    Ok(keys.seal(context, &keys.open(context, stored)?))
}

/// Re-seals every endpoint's secrets that need it and drops expired previous secrets.
/// Returns how many endpoints were rewritten.
pub fn reseal_all(conn: &mut PgConnection, keys: &SecretKeys) -> diesel::QueryResult<usize> {
    let now = chrono::Utc::now();
    let mut after = None;
    let mut rewritten = 0;
    loop {
        let page = q::secrets_to_reseal(conn, keys.current_id(), after, 200)?;
        let Some(last) = page.last() else {
            return Ok(rewritten);
        };
        after = Some(last.id);
        for row in &page {
            let context = q::secret_context(row.id);
            let before = q::previous_secrets(&row.previous_secrets);
            let sealed = reseal_one(keys, &context, &row.secret).and_then(|secret| {
                let previous = before
                    .iter()
                    .filter(|p| p.expires_at > now)
                    .map(|p| {
                        Ok(PreviousSecret {
                            secret: reseal_one(keys, &context, &p.secret)?,
                            expires_at: p.expires_at,
                        })
                    })
                    .collect::<Result<Vec<_>, SecretError>>()?;
                Ok((secret, previous))
            });
            match sealed {
                Ok((secret, previous)) if secret != row.secret || previous != before => {
                    let previous = serde_json::to_value(&previous).unwrap_or_default();
                    rewritten += q::write_resealed(conn, row, &secret, &previous)?;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(endpoint = %row.id, error = %e, "cannot re-seal a webhook secret");
                }
            }
        }
    }
}
