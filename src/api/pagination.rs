//! Cursor pagination shared by every list: `?limit=` (default 50, max 200), `?order=` (`asc` or
//! `desc`, each list has its default) and `?cursor=`.
//!
//! A cursor records the order it was made in: a cursor from an `asc` page sent with
//! `order=desc` (or the other way round) is 400 `invalid_cursor`, because "after this item" in
//! one order is "before it" in the other and the page would silently go backwards. Cursors made
//! before `order` existed carry no order and are read in the order asked for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::db::Order;
use crate::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The order of a list on its key (creation order for resources, sequence for events and
/// deliveries): `asc` oldest first, `desc` newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    Asc,
    Desc,
}

/// Paging parameters of every `GET` collection.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return: 1 to 200, default 50.
    pub limit: Option<u32>,
    /// `asc` (oldest first) or `desc` (newest first); the default is the list's own (oldest
    /// first, except deliveries: newest first). A cursor works only in the order it was made in.
    pub order: Option<ListOrder>,
    /// The `next_cursor` of the previous page; empty or left out for the first page.
    pub cursor: Option<String>,
}

fn invalid_cursor() -> AppError {
    AppError::bad_request("invalid_cursor", "the cursor is not valid")
}

fn invalid_for(order: Order) -> AppError {
    AppError::bad_request(
        "invalid_cursor",
        format!(
            "the cursor was made for order={}; page in that order or start again",
            prefix(other(order)).trim_end_matches(':')
        ),
    )
}

fn other(order: Order) -> Order {
    match order {
        Order::Asc => Order::Desc,
        Order::Desc => Order::Asc,
    }
}

fn prefix(order: Order) -> &'static str {
    match order {
        Order::Asc => "asc:",
        Order::Desc => "desc:",
    }
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

    /// The order asked for, or the list's default.
    pub fn order(&self, default: Order) -> Order {
        match self.order {
            None => default,
            Some(ListOrder::Asc) => Order::Asc,
            Some(ListOrder::Desc) => Order::Desc,
        }
    }

    /// The position encoded in the cursor, or 400 when it is not one of ours or was made for
    /// the other order. An empty `cursor=` (what a form or a client filling every parameter
    /// sends) is the first page.
    pub fn after(&self, order: Order) -> AppResult<Option<String>> {
        let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let raw = URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid_cursor)?;
        if let Some(position) = raw.strip_prefix(prefix(order)) {
            return Ok(Some(position.to_string()));
        }
        if raw.starts_with(prefix(other(order))) {
            return Err(invalid_for(order));
        }
        Ok(Some(raw))
    }

    /// The cursor's position as the id it encodes, for lists ordered by a UUID.
    pub fn after_uuid(&self, order: Order) -> AppResult<Option<uuid::Uuid>> {
        self.after_as(order)
    }

    /// The cursor's position as the number it encodes, for lists ordered by a sequence.
    pub fn after_number(&self, order: Order) -> AppResult<Option<i64>> {
        self.after_as(order)
    }

    /// The cursor's position read as a `T`; a position that is not one is a 400.
    fn after_as<T: std::str::FromStr>(&self, order: Order) -> AppResult<Option<T>> {
        self.after(order)?
            .map(|c| c.parse().map_err(|_| invalid_cursor()))
            .transpose()
    }
}

/// An opaque cursor pointing past `position` in `order`.
pub fn cursor(order: Order, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}{position}", prefix(order)))
}

/// Cuts a page fetched with `limit + 1` rows into the items and the next cursor.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    order: Order,
    position: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| cursor(order, &position(r)))
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(order: Option<ListOrder>, cursor: Option<String>) -> PageParams {
        PageParams {
            limit: None,
            order,
            cursor,
        }
    }

    #[test]
    fn a_cursor_works_in_its_own_order_only() {
        let asc = cursor(Order::Asc, "7");
        let p = params(Some(ListOrder::Asc), Some(asc.clone()));
        assert_eq!(p.after_number(Order::Asc).unwrap(), Some(7));
        assert!(p.after_number(Order::Desc).is_err());
        let desc = cursor(Order::Desc, "7");
        assert!(params(None, Some(desc)).after(Order::Asc).is_err());
        // A cursor from before `order` existed is read in the order asked for.
        let legacy = URL_SAFE_NO_PAD.encode("9");
        let p = params(None, Some(legacy));
        assert_eq!(p.after_number(Order::Desc).unwrap(), Some(9));
        assert!(params(None, Some("!!".into())).after(Order::Asc).is_err());
    }
}
