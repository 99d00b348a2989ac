//! A small framework for Terraform resources over the plugin protocol: schemas,
//! values, planning rules, diagnostics and the gRPC service that ties them to
//! Terraform. Resources implement [`Resource`] and stay short.

pub mod api;
pub mod diag;
pub mod object;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod service;

pub use diag::{AttrPath, Diagnostics, Error};
pub use object::Obj;
pub use resource::{Api, DataSource, Resource};
pub use schema::{Attribute, Mode, PlanModifier, Schema};
pub use service::{ProviderService, Registry};
