//! Outputs (`-o/--output type=…,key=value` or a bare directory or `-`), as
//! buildx's `util/buildflags/export.go` reads them. `build::output` turns them
//! into the solve request's exporters.

use std::path::PathBuf;

use super::{OptionField, TypedSpec};
use crate::error::Result;

/// One requested output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub(crate) spec: TypedSpec,
}

impl Output {
    /// Parses an `--output` value.
    pub fn parse(spec: &str) -> Result<Output> {
        let parsed = TypedSpec::parse(OptionField::Output, spec, |short| {
            if short == "-" {
                Some(TypedSpec::from_parts(
                    "tar",
                    [("dest".to_string(), "-".to_string())],
                ))
            } else {
                Some(TypedSpec::from_parts(
                    "local",
                    [("dest".to_string(), short.to_string())],
                ))
            }
        })?;
        Ok(Output { spec: parsed })
    }

    /// An output from a type and attributes.
    pub fn new(kind: &str, attrs: impl IntoIterator<Item = (String, String)>) -> Output {
        Output {
            spec: TypedSpec::from_parts(kind, attrs),
        }
    }

    /// An image pushed to a registry under `name`.
    pub fn registry(name: impl Into<String>) -> Output {
        Output::new("registry", [("name".to_string(), name.into())])
    }

    /// The `local` exporter into `dir`.
    pub fn local(dir: impl Into<PathBuf>) -> Output {
        Output::new(
            "local",
            [(
                "dest".to_string(),
                dir.into().to_string_lossy().into_owned(),
            )],
        )
    }

    /// An OCI image layout tarball written to `file`.
    pub fn oci_tar(file: impl Into<PathBuf>) -> Output {
        Output::new(
            "oci",
            [(
                "dest".to_string(),
                file.into().to_string_lossy().into_owned(),
            )],
        )
    }

    /// The output's type.
    pub fn kind(&self) -> &str {
        &self.spec.kind
    }
}

impl std::fmt::Display for Output {
    /// `type=KIND,key=value,…`, which [`Output::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.spec.fmt(f)
    }
}
