//! `basalt-server`: Basalt's control plane as a library (the binary in `main.rs`
//! is a thin CLI over it, and the tests drive it in-process).
//!
//! Where things live:
//! * [`api`]: the HTTP routes, one module per resource, and the route table every
//!   request passes through ([`api::routes`]).
//! * [`authz`]: the permission catalog and the one authorization check.
//! * [`auth`]: credentials (user JWTs, API tokens, passwords) → [`auth::Principal`].
//! * [`db`]: the Postgres pools, migrations, and the per-transaction tenant context
//!   that row-level security enforces.
//! * [`audit`], [`idempotency`], [`validate`]: cross-cutting rules every resource uses.
//! * [`jobs`]: periodic work (the tenant purge) under an advisory lock.
//! * [`dev`] and [`embedded_pg`]: `basalt-server dev`, a self-contained instance.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod compute;
pub mod config;
pub mod db;
pub mod dev;
pub mod embedded_pg;
pub mod error;
pub mod federation;
pub mod idempotency;
pub mod instances;
pub mod jobs;
pub mod metrics;
pub mod testing;
pub mod validate;
pub mod webhooks;
