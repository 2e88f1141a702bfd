//! Approvals over HTTP: requesting (ad-hoc and from processes), every group source,
//! requirements, stages, reuse, guards, one active approval per ticket, admin actions,
//! events, bulk decisions, inbox, lists, ticket deletion, tenants, versions and idempotency.

mod helpers;

mod admin;
mod bulk;
mod events;
mod guards;
mod idempotency;
mod inbox_and_lists;
mod inflight;
mod one_per_ticket;
mod requests;
mod requirements;
mod reuse;
mod self_approval;
mod sources;
mod tenants;
mod tickets;
mod versions;
