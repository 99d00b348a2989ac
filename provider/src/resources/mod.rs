//! Managed resources, one module each; each only maps attributes to API calls.

pub mod cluster;
pub mod group;
pub mod region;
pub mod role;
pub mod role_binding;
pub mod template;
pub mod tenant;
pub mod tenant_quota;
pub mod user;
pub mod vm;
pub mod vm_snapshot;
