//! Cursor pagination shared by every list: `?limit=` (default 50, max 200) and `?cursor=`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Paging parameters of every `GET` collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return: 1 to 200, default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; empty or left out for the first page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The limit to use, or 422 when out of range.
    pub fn limit(&self) -> AppResult<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT as i64),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n as i64),
            Some(_) => Err(AppError::invalid_field(
                "limit",
                format!("must be from 1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// The position encoded in the cursor, or 400 when it is not one of ours. An empty
    /// `cursor=` (what a form or a client filling every parameter sends) is the first page.
    pub fn after(&self) -> AppResult<Option<String>> {
        let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| AppError::bad_request("invalid_cursor", "the cursor is not valid"))
    }
}

impl PageParams {
    /// The cursor's position as the id it encodes, for lists ordered by a UUID.
    pub fn after_uuid(&self) -> AppResult<Option<uuid::Uuid>> {
        self.after_as()
    }

    /// The cursor's position read as a `T` (an id, a sequence number), or 400 when it is not
    /// one: a cursor of another list is not one of this list's.
    pub fn after_as<T: std::str::FromStr>(&self) -> AppResult<Option<T>> {
        match self.after()? {
            None => Ok(None),
            Some(c) => c
                .parse()
                .map(Some)
                .map_err(|_| AppError::bad_request("invalid_cursor", "the cursor is not valid")),
        }
    }
}

/// An opaque cursor pointing after `position`.
pub fn cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// Cuts a page fetched with `limit + 1` rows into the items and the next cursor.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| cursor(&position(r)))
    } else {
        None
    };
    (rows, next)
}
