//! A small framework for Terraform resources over the plugin protocol: schemas,
//! values, planning rules, diagnostics and the gRPC service that ties them to
//! Terraform. Resources implement [`Resource`] (or, for one object of an API
//! collection, [`RestResource`]) and stay short.

pub mod api;
pub mod diag;
pub mod object;
pub mod operation;
pub mod plan;
pub mod resource;
pub mod rest;
pub mod schema;
pub mod service;
pub mod timeouts;

pub use diag::{AttrPath, Diagnostics, Error};
pub use object::Obj;
pub use resource::{Api, DataSource, Resource};
pub use rest::{Context, Rest, RestResource};
pub use schema::{Attribute, Mode, PlanModifier, Schema};
pub use service::{ProviderService, Registry};
