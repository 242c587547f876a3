//! cicd-agents pipelines: one definition file, a BuildKit build, then the GitOps write-back.
//!
//! * [`definition`]: the pipeline definition (YAML), read with file and line for every key and
//!   checked before anything runs.
//! * [`run`]: runs a definition: resolve the source commit, build and push with BuildKit
//!   (`cicd-agents-buildkit`), then update the chart repository, with events and a report.
//!
//! This crate is also the facade over the parts that do not need BuildKit:
//!
//! | path | crate | what |
//! |---|---|---|
//! | [`values`], [`git`], [`chart`], [`error`] | `cicd-agents-gitops` | values edits, git write-back, chart updates |
//! | `k8s` (feature `k8s`, launcher `k8s-launch`) | `cicd-agents-k8s` | Kubernetes manifests and the Job launcher |
//! | [`duration`] | `cicd-agents-types` | durations as people write them |
//!
//! # Reading a definition
//!
//! ```
//! use cicd_agents_pipeline::definition::PipelineDefinition;
//!
//! let definition = PipelineDefinition::parse(
//!     r#"
//! parameters:
//!   tag: latest
//! source:
//!   git: https://git.example.com/org/app.git
//! build:
//!   images:
//!     - registry.example.com/org/app:${tag}
//!   push: true
//! chart:
//!   repo: https://git.example.com/org/deploy.git
//!   values:
//!     - file: charts/app/values.yaml
//!       images:
//!         - repository: image.repository
//!           tag: image.tag
//! "#,
//!     "pipeline.yaml",
//! )?;
//! let pipeline = definition.resolve([("tag", "1.4.2")])?;
//! assert_eq!(pipeline.build.images[0].to_string(), "registry.example.com/org/app:1.4.2");
//!
//! // Errors name the file, the line and the key.
//! let err = PipelineDefinition::parse("source:\n  git: https://h/a.git\nbuild:\n  pussh: true\n", "p.yaml")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("p.yaml:4"), "{err}");
//! # Ok::<(), cicd_agents_pipeline::definition::DefinitionError>(())
//! ```
//!
//! Running it needs a BuildKit daemon: see [`run`].
#![deny(missing_docs)]

pub mod definition;
pub mod run;

pub use cicd_agents_gitops::{chart, error, git, values};
#[cfg(feature = "k8s")]
pub use cicd_agents_k8s as k8s;
pub use cicd_agents_types::duration;

pub use error::{Error, Result};
