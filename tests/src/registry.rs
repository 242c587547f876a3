//! Asking the test registry what it holds, over plain HTTP on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::error::{Error, Result};

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The `Docker-Content-Digest` the registry at `registry` (`host:port`)
/// reports for `repo:tag`, or `None` when it has no such manifest.
pub fn manifest_digest(registry: &str, repo: &str, tag: &str) -> Result<Option<String>> {
    let mut stream =
        TcpStream::connect(registry).map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\nAccept: {MANIFEST_TYPES}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let status = response.lines().next().unwrap_or_default();
    if status.contains(" 404 ") {
        return Ok(None);
    }
    if !status.contains(" 200 ") {
        return Err(Error::Command(format!(
            "{registry}: HEAD manifest {repo}:{tag} answered {status:?}"
        )));
    }
    Ok(response.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("docker-content-digest")
            .then(|| value.trim().to_string())
    }))
}

/// Reads what a pushed image consists of from a registry over plain HTTP on
/// loopback: manifests (following indexes), configs and blobs (layers,
/// attestations), with basic authentication when given.
#[derive(Clone)]
pub struct RegistryReader {
    registry: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for RegistryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryReader")
            .field("registry", &self.registry)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Every document and blob of one image, as fetched.
#[derive(Debug, Default, Clone)]
pub struct ImageContents {
    /// Manifests and indexes, raw JSON, in the order fetched.
    pub manifests: Vec<Vec<u8>>,
    /// Every blob the manifests name (configs, layers, attestations), by digest.
    pub blobs: Vec<(String, String, Vec<u8>)>,
}

impl ImageContents {
    /// Whether `needle` occurs in any manifest or blob; names where.
    pub fn find(&self, needle: &[u8]) -> Option<String> {
        let has =
            |bytes: &[u8]| !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle);
        if let Some(i) = self.manifests.iter().position(|m| has(m)) {
            return Some(format!("manifest #{i}"));
        }
        self.blobs
            .iter()
            .find(|(_, _, b)| has(b))
            .map(|(digest, media, _)| format!("blob {digest} ({media})"))
    }
}

impl RegistryReader {
    /// A reader for `registry` (`host:port`), anonymous.
    pub fn new(registry: impl Into<String>) -> RegistryReader {
        RegistryReader {
            registry: registry.into(),
            authorization: None,
        }
    }

    /// Sends basic authentication with every request.
    pub fn basic_auth(mut self, user: &str, password: &str) -> RegistryReader {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {token}"));
        self
    }

    fn get(&self, path: &str, accept: &str) -> Result<Vec<u8>> {
        let registry = &self.registry;
        let fail = |what: String| Error::Command(format!("{registry}: GET {path}: {what}"));
        let mut stream = TcpStream::connect(registry).map_err(|err| fail(err.to_string()))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut request =
            format!("GET {path} HTTP/1.0\r\nHost: {registry}\r\nAccept: {accept}\r\n");
        if let Some(auth) = &self.authorization {
            request.push_str(&format!("Authorization: {auth}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .map_err(|err| fail(err.to_string()))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|err| fail(err.to_string()))?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| fail("no HTTP header".into()))?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 200 ") {
            return Err(fail(format!("answered {status:?}")));
        }
        Ok(response[split + 4..].to_vec())
    }

    /// Fetches the manifest `reference` (tag or digest) of `repo` and
    /// everything it names, recursively through indexes.
    pub fn image(&self, repo: &str, reference: &str) -> Result<ImageContents> {
        let mut contents = ImageContents::default();
        self.collect(repo, reference, &mut contents, 0)?;
        Ok(contents)
    }

    fn collect(
        &self,
        repo: &str,
        reference: &str,
        contents: &mut ImageContents,
        depth: usize,
    ) -> Result<()> {
        if depth > 4 {
            return Err(Error::Command(format!(
                "{repo}@{reference}: indexes nested too deep"
            )));
        }
        let body = self.get(&format!("/v2/{repo}/manifests/{reference}"), MANIFEST_TYPES)?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|err| {
            Error::Command(format!("{repo}@{reference}: manifest is not JSON: {err}"))
        })?;
        contents.manifests.push(body);
        if let Some(manifests) = doc.get("manifests").and_then(|m| m.as_array()) {
            for entry in manifests {
                if let Some(digest) = entry.get("digest").and_then(|d| d.as_str()) {
                    self.collect(repo, digest, contents, depth + 1)?;
                }
            }
        }
        let mut blobs: Vec<&serde_json::Value> = doc
            .get("layers")
            .and_then(|l| l.as_array())
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        blobs.extend(doc.get("config"));
        for blob in blobs {
            let digest = blob
                .get("digest")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            let media = blob
                .get("mediaType")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            if digest.is_empty() || contents.blobs.iter().any(|(d, _, _)| *d == digest) {
                continue;
            }
            let bytes = self.get(&format!("/v2/{repo}/blobs/{digest}"), "*/*")?;
            contents.blobs.push((digest, media, bytes));
        }
        Ok(())
    }
}
