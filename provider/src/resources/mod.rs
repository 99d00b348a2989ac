//! Managed resources, one module each; each only maps attributes to API calls.

pub mod role;
pub mod role_binding;
pub mod tenant;
pub mod user;
