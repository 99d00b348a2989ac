//! Data sources, one module each.

pub mod cluster;
pub mod current_user;
pub mod permissions;
pub mod regions;
pub mod role;
pub mod template;
pub mod tenant;
