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
    let mut stream = TcpStream::connect(registry).map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\nAccept: {MANIFEST_TYPES}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|err| Error::Command(format!("{registry}: {err}")))?;
    let status = response.lines().next().unwrap_or_default();
    if status.contains(" 404 ") {
        return Ok(None);
    }
    if !status.contains(" 200 ") {
        return Err(Error::Command(format!("{registry}: HEAD manifest {repo}:{tag} answered {status:?}")));
    }
    Ok(response.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("docker-content-digest").then(|| value.trim().to_string())
    }))
}
