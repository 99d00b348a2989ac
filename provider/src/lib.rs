//! `terraform-provider-basalt`: a Terraform provider for Basalt speaking plugin
//! protocol 6 over tonic, talking to Basalt only through `basalt-client`.
//!
//! Layers, bottom up: [`value`] and [`codec`] (Terraform values and their wire
//! form), [`framework`] (schemas, planning, diagnostics, the `tfplugin6` service),
//! [`resources`] and [`data_sources`] (one module per type), [`provider`] (the
//! provider block and the registry), and [`plugin`] with [`tls`] and
//! [`services`] (the go-plugin process around it all). [`docs`] renders the
//! registry documentation from the same schemas.

pub mod codec;
pub mod data_sources;
pub mod docs;
pub mod framework;
pub mod plugin;
pub mod proto;
pub mod provider;
pub mod resources;
pub mod services;
pub mod tls;
pub mod value;
