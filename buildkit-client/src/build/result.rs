//! [`BuildResult`]: what the exporters reported, decoded.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;

use crate::build::timings::BuildTimings;
use crate::session::context_sync::ContextTransfer;

/// A finished build.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildResult {
    /// The build's reference (the solve request's ref).
    pub build_ref: String,
    /// The image manifest (or index) digest: `containerimage.digest`.
    pub digest: Option<String>,
    /// The image config digest: `containerimage.config.digest`.
    pub config_digest: Option<String>,
    /// The image names exported: `image.name`, split at commas.
    pub image_names: Vec<String>,
    /// The full exporter response, as the daemon sent it.
    pub exporter_response: BTreeMap<String, String>,
    /// What was sent of local directories (the context, the Dockerfile).
    pub context_transfer: ContextTransfer,
    /// Where the build's time went, measured by the client.
    pub timings: BuildTimings,
}

impl BuildResult {
    pub(crate) fn new(build_ref: String, response: BTreeMap<String, String>) -> Self {
        let get = |key: &str| response.get(key).filter(|v| !v.is_empty()).cloned();
        BuildResult {
            build_ref,
            digest: get("containerimage.digest"),
            config_digest: get("containerimage.config.digest"),
            image_names: get("image.name")
                .map(|names| {
                    names
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            exporter_response: response,
            context_transfer: ContextTransfer::default(),
            timings: BuildTimings::default(),
        }
    }

    /// The image ID, as buildx reports it (`--quiet`, `--iidfile`): the config
    /// digest where the daemon gave one (a single-platform image), else the
    /// manifest or index digest (several platforms). None without an image.
    pub fn image_id(&self) -> Option<&str> {
        self.config_digest.as_deref().or(self.digest.as_deref())
    }

    /// The metadata `docker buildx build --metadata-file` writes: every
    /// exporter response key, with base64-encoded JSON values
    /// (`containerimage.descriptor`, …) decoded, plus `buildx.build.ref`.
    pub fn metadata(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (key, value) in &self.exporter_response {
            map.insert(key.clone(), decode_value(value));
        }
        map.insert(
            "buildx.build.ref".into(),
            serde_json::Value::String(format!("cicd-agents/default/{}", self.build_ref)),
        );
        serde_json::Value::Object(map)
    }
}

impl BuildResult {
    /// Writes [`metadata`](Self::metadata) as pretty JSON to `path`, the file
    /// `docker buildx build --metadata-file` writes. Missing directories above
    /// it are created (as for a `type=tar` output).
    pub fn write_metadata_file(&self, path: &std::path::Path) -> crate::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| crate::Error::io(parent, err))?;
        }
        let mut text = serde_json::to_string_pretty(&self.metadata())
            .map_err(|err| crate::Error::io(path, std::io::Error::other(err)))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|err| crate::Error::io(path, err))
    }
}

/// A response value that is base64 of a JSON object or array becomes that
/// JSON; anything else stays a string.
fn decode_value(value: &str) -> serde_json::Value {
    if value.starts_with('{') || value.starts_with('[') {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(value) {
            return json;
        }
    }
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value) {
        if let Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
            serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            return json;
        }
    }
    serde_json::Value::String(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_exporter_response() {
        let descriptor = base64::engine::general_purpose::STANDARD
            .encode(br#"{"mediaType":"m","digest":"sha256:1","size":3}"#);
        let response: BTreeMap<String, String> = [
            (
                "containerimage.digest".to_string(),
                "sha256:abc".to_string(),
            ),
            (
                "containerimage.config.digest".to_string(),
                "sha256:def".to_string(),
            ),
            ("image.name".to_string(), "r/a:1,r/a:latest".to_string()),
            ("containerimage.descriptor".to_string(), descriptor),
        ]
        .into();
        let result = BuildResult::new("ref1".into(), response);
        assert_eq!(result.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(result.image_id(), Some("sha256:def"));
        assert_eq!(result.image_names, ["r/a:1", "r/a:latest"]);
        let metadata = result.metadata();
        assert_eq!(metadata["containerimage.descriptor"]["size"], 3);
        assert_eq!(metadata["containerimage.digest"], "sha256:abc");
        assert_eq!(metadata["buildx.build.ref"], "cicd-agents/default/ref1");
    }

    #[test]
    fn the_image_id_is_the_config_digest_else_the_index_digest() {
        let index: BTreeMap<String, String> = [(
            "containerimage.digest".to_string(),
            "sha256:idx".to_string(),
        )]
        .into();
        let result = BuildResult::new("r".into(), index);
        assert_eq!(result.image_id(), Some("sha256:idx"));
        let local = BuildResult::new("r".into(), BTreeMap::new());
        assert_eq!(local.image_id(), None);
    }
}
