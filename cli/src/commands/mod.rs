//! One module per command.

pub mod debug;
pub mod du;
pub mod prune;
