//! Acceptance-test harness: a real Basalt server on a fresh Postgres database, the
//! freshly built provider binary, and the real `terraform` CLI pointed at it
//! through `dev_overrides`. The tests live in `tests/`; see `README.md`.

pub mod db;
pub mod server;
pub mod terraform;
