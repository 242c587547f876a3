//! Where a build's result goes: `-o/--output`, `-t/--tag` and `--push`,
//! resolved into BuildKit exporters the way buildx does it.
//!
//! | written as | exporter |
//! |---|---|
//! | `type=image,name=…[,push=true]` | `image` |
//! | `type=registry,name=…` | `image` with `push=true` |
//! | `type=local,dest=DIR` or `DIR` | `local`, received into `DIR` |
//! | `type=tar,dest=FILE`, `type=oci,dest=FILE`, `type=docker,dest=FILE`, `-` | tarball to a file or stdout |
//! | `type=moby` / `type=docker` without `dest` on a Docker daemon | loaded into the Docker daemon |
//! | `type=cacheonly` | no export; the build only fills the cache |

use crate::error::{Error, Result};
use crate::flags::{OptionField, Output};
use crate::session::exports::ExportTarget;
use std::collections::BTreeMap;

/// One exporter of the solve request, with where its files go (if anywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedExporter {
    pub(crate) kind: String,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) target: Option<ExportTarget>,
}

/// Turns outputs, tags and `--push` into exporters.
pub(crate) fn plan_exporters(
    outputs: &[Output],
    tags: &[String],
    push: bool,
    docker_daemon: bool,
) -> Result<Vec<PlannedExporter>> {
    let mut planned = Vec::new();
    let mut outputs = outputs.to_vec();
    if outputs.is_empty() {
        if push {
            if tags.is_empty() {
                return Err(Error::option(
                    OptionField::Push,
                    "pushing needs at least one image name (tag)",
                ));
            }
            outputs.push(Output::new("image", []));
        } else if !tags.is_empty() && docker_daemon {
            outputs.push(Output::new("moby", []));
        }
    }
    for output in outputs {
        let mut spec = output.spec;
        let kind = spec.kind.clone();
        let dest = spec.take("dest");
        let exporter = match kind.as_str() {
            "cacheonly" => continue,
            "image" | "registry" => {
                let push_attr = spec.flag(OptionField::Output, "push")?;
                let mut attrs = spec.attrs;
                if !attrs.contains_key("name") && !tags.is_empty() {
                    attrs.insert("name".into(), tags.join(","));
                }
                if !attrs.contains_key("name") {
                    return Err(Error::option(OptionField::Output,
                        format!("type={kind} needs name=… or an image name (tag)"),
                    ));
                }
                if kind == "registry" || push || push_attr == Some(true) {
                    attrs.insert("push".into(), "true".into());
                }
                PlannedExporter { kind: "image".into(), attrs, target: None }
            }
            "local" => {
                let dest = dest.ok_or_else(|| Error::option(OptionField::Output, "type=local needs dest=DIR"))?;
                if dest == "-" {
                    return Err(Error::option(OptionField::Output, "type=local cannot write to stdout; use type=tar,dest=-"));
                }
                PlannedExporter { kind: "local".into(), attrs: spec.attrs, target: Some(ExportTarget::Directory(dest.into())) }
            }
            "tar" | "oci" | "docker" => {
                let mut attrs = spec.attrs;
                if kind != "tar" && !attrs.contains_key("name") && !tags.is_empty() {
                    attrs.insert("name".into(), tags.join(","));
                }
                match dest {
                    Some(dest) if dest == "-" => PlannedExporter { kind, attrs, target: Some(ExportTarget::Stdout) },
                    Some(dest) => {
                        PlannedExporter { kind, attrs, target: Some(ExportTarget::File(dest.into())) }
                    }
                    None if kind == "docker" && docker_daemon => {
                        PlannedExporter { kind: "moby".into(), attrs, target: None }
                    }
                    None => {
                        return Err(Error::option(OptionField::Output, format!("type={kind} needs dest=FILE (or dest=- for stdout)")))
                    }
                }
            }
            "moby" => {
                if !docker_daemon {
                    return Err(Error::option(OptionField::Output, "type=moby only works against a Docker daemon (docker://)"));
                }
                let mut attrs = spec.attrs;
                if !attrs.contains_key("name") && !tags.is_empty() {
                    attrs.insert("name".into(), tags.join(","));
                }
                PlannedExporter { kind: "moby".into(), attrs, target: None }
            }
            other => {
                return Err(Error::option(OptionField::Output,
                    format!("unknown type {other:?}; expected image, registry, local, tar, oci, docker, moby or cacheonly"),
                ))
            }
        };
        planned.push(exporter);
    }
    let stdout_count = planned
        .iter()
        .filter(|e| e.target == Some(ExportTarget::Stdout))
        .count();
    if stdout_count > 1 {
        return Err(Error::option(
            OptionField::Output,
            "only one output can write to stdout",
        ));
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(outputs: &[&str], tags: &[&str], push: bool) -> Result<Vec<PlannedExporter>> {
        let outputs: Vec<Output> = outputs.iter().map(|o| Output::parse(o).unwrap()).collect();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        plan_exporters(&outputs, &tags, push, true)
    }

    #[test]
    fn push_with_tags_means_image_push() {
        let planned = plan(&[], &["r/a:1", "r/a:latest"], true).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].kind, "image");
        assert_eq!(planned[0].attrs["name"], "r/a:1,r/a:latest");
        assert_eq!(planned[0].attrs["push"], "true");
        assert!(plan(&[], &[], true).is_err());
    }

    #[test]
    fn registry_is_image_with_push() {
        let planned = plan(
            &["type=registry,name=r/a:1,oci-mediatypes=true"],
            &[],
            false,
        )
        .unwrap();
        assert_eq!(planned[0].kind, "image");
        assert_eq!(planned[0].attrs["push"], "true");
        assert_eq!(planned[0].attrs["oci-mediatypes"], "true");
    }

    #[test]
    fn file_outputs() {
        let planned = plan(
            &["type=oci,dest=/tmp/x.tar", "out-dir", "-"],
            &["r/a:1"],
            false,
        )
        .unwrap();
        assert_eq!(
            planned[0].target,
            Some(ExportTarget::File("/tmp/x.tar".into()))
        );
        assert_eq!(planned[0].attrs["name"], "r/a:1");
        assert_eq!(planned[1].kind, "local");
        assert_eq!(planned[2].target, Some(ExportTarget::Stdout));
        assert!(plan(&["-", "type=tar,dest=-"], &[], false).is_err());
        assert!(plan(&["type=tar"], &[], false).is_err());
        assert!(plan(&["type=nonsense"], &[], false)
            .unwrap_err()
            .to_string()
            .contains("nonsense"));
        assert!(plan(&["type=cacheonly"], &[], false).unwrap().is_empty());
    }

    #[test]
    fn tags_without_output_load_into_docker() {
        let planned = plan(&[], &["app:dev"], false).unwrap();
        assert_eq!(planned[0].kind, "moby");
        assert!(plan_exporters(&[], &["app:dev".into()], false, false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn destinations_that_cannot_be_written_are_refused_before_the_build() {
        use crate::build::BuildOptions;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let under_file = format!("{}/sub/out", file.display());
        let missing = format!("{}/new/dirs/out", dir.path().display());
        let dir_text = dir.path().display().to_string();
        let validate = |spec: &str| {
            let output = Output::parse(spec).unwrap();
            BuildOptions::local(dir.path()).output(output).validate()
        };
        for (spec, needle) in [
            (format!("type=tar,dest={dir_text}"), "is a directory"),
            (
                format!("type=local,dest={}", file.display()),
                "is not a directory",
            ),
            (format!("type=tar,dest={under_file}"), "not a directory"),
            (format!("type=local,dest={under_file}"), "not a directory"),
        ] {
            let err = validate(&spec).unwrap_err().to_string();
            assert!(err.to_lowercase().contains(needle), "{spec}: {err}");
        }
        // Missing directories are created by the export.
        assert!(validate(&format!("type=tar,dest={missing}")).is_ok());
        assert!(validate(&format!("type=local,dest={missing}")).is_ok());
    }
}
