//! GitOps for cicd-agents: the step after an image build, with no BuildKit in sight.
//!
//! * [`values`]: format-preserving edits of Helm `values.yaml` files. Only the bytes of the
//!   target scalar change; comments, blank lines, key order, indentation, anchors, flow
//!   collections, document markers and CRLF line endings survive. Values that YAML would read
//!   as numbers, booleans or null (`1.10`, `20240101`, `yes`, `on`, `null`, `1e3`) are quoted,
//!   and every edit is verified by re-parsing the result.
//! * [`git`]: the write-back. Shallow clone over HTTPS with the token only in the transport,
//!   apply the edit, commit with the configured author and message, push; if the push is
//!   rejected because the branch moved, fetch the new tip, re-apply the edit and retry a
//!   bounded number of times. Never force-pushes.
//! * [`chart`]: [`ChartUpdate`](chart::ChartUpdate), the one chart-update path (edit values
//!   files in a chart repository and write them back, or preview the diff) that the pipeline
//!   runner, `cicd-agents chart set-image` and Python's `update_values` share.
//! * [`error`]: typed errors ([`ValuesError`](error::ValuesError),
//!   [`GitError`](error::GitError), [`TagError`](error::TagError)).
//!
//! # Editing a values file
//!
//! ```
//! use cicd_agents_gitops::values::ValuesDocument;
//!
//! let text = r#"# Default values for app.
//! image:
//!   repository: registry.local:5000/app   # where it lives
//!   tag: "1.0.0"                          # set by CI
//!
//! sidecars:
//!   - name: proxy
//!     image: {repository: envoy, tag: v1.28.0}
//! "#;
//! let mut doc = ValuesDocument::parse(text)?;
//! let change = doc.set("image.tag", "1.10")?;
//! assert_eq!(change.old_value, "1.0.0");
//! doc.set("sidecars[0].image.tag", "20240101")?;   // would be a number: quoted
//!
//! assert_eq!(doc.to_string(), r#"# Default values for app.
//! image:
//!   repository: registry.local:5000/app   # where it lives
//!   tag: "1.10"                          # set by CI
//!
//! sidecars:
//!   - name: proxy
//!     image: {repository: envoy, tag: '20240101'}
//! "#);
//!
//! // Setting the same value again changes nothing.
//! assert!(!doc.set("image.tag", "1.10")?.changed);
//!
//! // Errors say which key is missing, in which mapping, at which line.
//! let err = doc.set("image.digest", "sha256:…").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "<input>: key path `image.digest`: key `digest` not found in the mapping at line 3 (after `image`)"
//! );
//! # Ok::<(), cicd_agents_gitops::error::ValuesError>(())
//! ```
//!
//! # Writing back to a chart repository
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use cicd_agents_gitops::git::{Author, CommitVars, GitAuth, MessageTemplate, WriteBackConfig};
//! use cicd_agents_gitops::chart::{ChartUpdate, ValuesUpdate};
//! use cicd_agents_gitops::values::KeyPath;
//!
//! let mut config = WriteBackConfig::new(
//!     "https://git.example.com/org/charts.git",
//!     "main",
//!     Author { name: "cicd-agents".into(), email: "cicd-agents@example.com".into() },
//! )
//! // Keep re-applying the edit on the moved branch for up to 5 minutes (default 2).
//! .retry_timeout(Duration::from_secs(300));
//! config.auth = Some(GitAuth::from_env("CHART_REPO_TOKEN")?);
//! config.message = MessageTemplate::parse("deploy {image} {new_tag} (was {old_tag})\n\nSource: {source_commit}")?;
//! let update = ChartUpdate {
//!     config,
//!     updates: vec![ValuesUpdate {
//!         file: "charts/app/values.yaml".into(),
//!         edits: vec![(KeyPath::parse("image.tag")?, "1.4.2".into())],
//!     }],
//!     vars: CommitVars { image: "registry.local:5000/app".into(), ..CommitVars::default() },
//! };
//! let outcome = update.apply(&mut |_| {})?;
//! match &outcome.commit {
//!     Some(commit) => println!("pushed {commit} after {} attempt(s) in {:?}", outcome.attempts, outcome.elapsed),
//!     None => println!("already up to date"),
//! }
//! # Ok::<(), cicd_agents_gitops::Error>(())
//! ```
#![deny(missing_docs)]

pub mod chart;
pub mod error;
pub mod git;
pub mod values;

pub use error::{Error, Result};
