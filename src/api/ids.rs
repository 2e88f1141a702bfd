//! Every path id passes through here: a path segment holding a control, zero-width or
//! bidirectional character is refused with 422 before any handler sees it. Such an id could
//! name a principal, ticket or calendar that looks like another ("u-1" and "u-1\u{200b}").
//! Ids in bodies and query filters are checked by their parsers (`is_external_id`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::domain::validate::has_hidden_characters;
use crate::error::AppError;

/// Decodes `%XX` escapes of one path segment (other bytes as they are); invalid UTF-8 is
/// replaced, which the handlers' own parsers then refuse.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Does any segment of this (percent-encoded) path hold a hidden character?
pub fn path_has_hidden_characters(path: &str) -> bool {
    path.split('/')
        .any(|segment| has_hidden_characters(&percent_decode(segment)))
}

/// Middleware: 422 on `path` for a path with a hidden character in any segment.
pub async fn refuse_hidden_characters(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if path_has_hidden_characters(req.path()) {
        let e = AppError::invalid_field(
            "path",
            "ids must not contain control, zero-width or bidirectional characters",
        );
        return Ok(req.into_response(e.error_response()).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_hidden_characters_are_found_in_any_segment() {
        assert!(path_has_hidden_characters("/v1/principals/u-1%E2%80%8B"));
        assert!(path_has_hidden_characters(
            "/v1/principals/u%E2%80%AE1/delegation"
        ));
        assert!(path_has_hidden_characters("/v1/tickets/T%00"));
        assert!(path_has_hidden_characters("/v1/tickets/T%7f"));
        assert!(!path_has_hidden_characters("/v1/principals/u-1"));
        assert!(!path_has_hidden_characters("/v1/principals/Zo%C3%AB"));
        assert!(!path_has_hidden_characters("/v1/principals/100%"));
        assert!(!path_has_hidden_characters("/v1/principals/%E2%80"));
    }
}
