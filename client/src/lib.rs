//! `basalt-client`: the types of Basalt's `/v1` HTTP API and, with the default
//! `http` feature, a typed async client over it.
//!
//! The server uses the types (without `http`) so that the wire format has one
//! definition; the Terraform provider and the tests use the client.

pub mod compute;
pub mod suggest;
pub mod types;
pub use compute::*;
pub use types::*;

#[cfg(feature = "http")]
mod client;
#[cfg(feature = "http")]
pub use client::{Client, ClientError, RequestOptions};
