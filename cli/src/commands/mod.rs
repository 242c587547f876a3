//! One module per command.

pub mod build;
pub mod debug;
pub mod du;
pub mod prune;
