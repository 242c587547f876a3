//! One module per command.

pub mod build;
pub mod chart;
pub mod debug;
pub mod du;
pub mod k8s;
pub mod pipeline;
pub mod prune;
