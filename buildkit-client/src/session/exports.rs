//! Where a build's exporters write on the client ([`ExportTarget`]), keyed
//! by exporter index, and the state the `FileSend` servers
//! ([`filesend`](super::filesend) for tarballs,
//! [`local_export`](super::local_export) for directories) share: the
//! targets and the failures they record.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tonic::Status;

/// Where an exporter's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// A tarball (tar, OCI layout tar or Docker image tar) written to this file.
    File(PathBuf),
    /// A tarball written to standard output.
    Stdout,
    /// A directory the `local` exporter fills.
    Directory(PathBuf),
}

const EXPORTER_ID_KEY: &str = "buildkit-attachable-exporter-id";

/// The export targets of one build, keyed by exporter index.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    targets: BTreeMap<usize, ExportTarget>,
}

/// Failures seen while writing exports, read after the solve.
#[derive(Debug, Default, Clone)]
pub(crate) struct ExportsDone {
    errors: Arc<Mutex<Vec<String>>>,
}

impl ExportsDone {
    pub(crate) fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn record(&self, message: String) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(message);
        }
    }
}

impl Exports {
    pub(crate) fn insert(&mut self, exporter_index: usize, target: ExportTarget) {
        self.targets.insert(exporter_index, target);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The state the `FileSend` servers share, `None` without targets, and
    /// the handle that reads the failures after the solve.
    pub(crate) fn into_shared(self) -> (ExportsDone, Option<Shared>) {
        let done = ExportsDone::default();
        if self.targets.is_empty() {
            return (done, None);
        }
        let shared = Shared {
            targets: Arc::new(self.targets),
            done: done.clone(),
        };
        (done, Some(shared))
    }
}

/// What the `FileSend` servers of one session share: the targets and where
/// failures are recorded.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) targets: Arc<BTreeMap<usize, ExportTarget>>,
    pub(crate) done: ExportsDone,
}

impl Shared {
    /// The target of the exporter named in the request metadata, or the only
    /// one when the daemon names none.
    pub(crate) fn target(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(usize, ExportTarget), Status> {
        let named = metadata
            .get(EXPORTER_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match named {
            Some(index) => self
                .targets
                .get(&index)
                .map(|target| (index, target.clone()))
                .ok_or_else(|| Status::not_found(format!("no file export for exporter {index}"))),
            None => self
                .targets
                .iter()
                .next()
                .map(|(index, target)| (*index, target.clone()))
                .ok_or_else(|| Status::not_found("no file export was requested")),
        }
    }

    pub(crate) fn fail(&self, message: String) -> Status {
        self.done.record(message.clone());
        Status::internal(message)
    }
}
