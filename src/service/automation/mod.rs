//! Tickets and rules: the host reports its tickets, and when one enters a status the tenant's
//! rules for it are tried in order; the first whose condition holds starts an approval. All of
//! it runs in the report's transaction under the ticket's lock, so racing reports of one
//! ticket give one outcome.

mod rules;
mod tickets;

pub use rules::*;
pub use tickets::*;
