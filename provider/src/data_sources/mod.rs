//! Data sources, one module each.

pub mod tenant;
