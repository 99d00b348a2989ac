//! Managed resources, one module each; each only maps attributes to API calls.

pub mod tenant;
