//! A fresh Postgres database per test: `basalt_server::testing`, the same helper
//! (template, lock and sweep) the server's own tests use.

pub use basalt_server::testing::TestDb;
