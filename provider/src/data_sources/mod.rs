//! Data sources, one module each.

pub mod current_user;
pub mod permissions;
pub mod role;
pub mod tenant;
