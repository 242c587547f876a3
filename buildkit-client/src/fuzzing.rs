//! Entry points into crate internals for the fuzz targets in `fuzz/`.
//!
//! Compiled only with the `fuzzing` feature and hidden from the docs: this is
//! not a public API and may change with any release. Each function is a thin
//! wrapper over code the crate's own unit tests exercise, so that the fuzz
//! targets and the normal test suite run the same functions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::sync::Arc;

use bytes::Bytes;
use cicd_agents_proto::fsutil::types::Packet as WirePacket;
use prost::Message as _;
use tonic::{Status, Streaming};
use tower::Service as _;

use crate::build::{CacheEntry, Output};
use crate::error::Result;
use crate::session::exports::{ExportTarget, Shared};

/// One planned exporter: its type, its attributes and whether it writes
/// files on this side (a directory, a file or stdout).
pub type PlannedOutput = (String, BTreeMap<String, String>, bool);

/// Turns `--output`s, tags and `--push` into exporters, as a build does.
pub fn plan_outputs(
    outputs: &[Output],
    tags: &[String],
    push: bool,
    docker_daemon: bool,
) -> Result<Vec<PlannedOutput>> {
    let planned = crate::build::output::plan_exporters(outputs, tags, push, docker_daemon)?;
    Ok(planned
        .into_iter()
        .map(|e| (e.kind, e.attrs, e.target.is_some()))
        .collect())
}

/// The host (with port) a git or HTTP context URL names, for its git token secret.
pub fn url_host(url: &str) -> Option<String> {
    crate::build::plan::url_host(url)
}

/// Splits a `key=value,...` spec at commas outside double quotes.
pub fn split_fields(spec: &str) -> Vec<String> {
    crate::flags::split_fields(spec)
}

/// A cache entry as the solve request carries it: type and attributes.
pub fn cache_entry_wire(entry: &CacheEntry) -> (String, BTreeMap<String, String>) {
    let proto = entry.to_proto();
    (proto.r#type, proto.attrs.into_iter().collect())
}

/// Frames `packets` the way a gRPC peer sends them: each message prefixed
/// with an uncompressed flag and its big-endian length.
pub fn grpc_frames(packets: &[WirePacket]) -> Bytes {
    let mut body = Vec::new();
    for packet in packets {
        let message = packet.encode_to_vec();
        body.push(0u8);
        body.extend_from_slice(
            &u32::try_from(message.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        body.extend_from_slice(&message);
    }
    Bytes::from(body)
}

/// A request stream holding `body` (gRPC frames, possibly malformed), as
/// the gRPC server hands a call's messages to a service.
pub fn streaming_request<T: prost::Message + Default + Send + 'static>(
    body: Bytes,
) -> Streaming<T> {
    Streaming::new_request(
        tonic_prost::ProstDecoder::<T>::default(),
        http_body_util::Full::new(body),
        None,
        Some(crate::transport::MAX_MESSAGE_SIZE),
    )
}

/// Runs the `local` exporter's receiver (the daemon is the sender) into
/// `dest`, feeding it `body` (gRPC frames of `fsutil.types.Packet`, possibly
/// malformed) through the same gRPC service a session serves. Returns the
/// packets it sent back and the status it ended with (`None` for OK).
pub async fn receive_local_export(dest: PathBuf, body: Bytes) -> (Vec<WirePacket>, Option<Status>) {
    let mut targets = BTreeMap::new();
    targets.insert(0, ExportTarget::Directory(dest));
    let shared = Shared {
        targets: Arc::new(targets),
        done: Default::default(),
    };
    let mut service = crate::session::local_export::server(shared);
    let request = http::Request::builder()
        .method("POST")
        .uri("/moby.filesync.v1.FileSend/DiffCopy")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(body)));
    let request = match request {
        Ok(request) => request,
        Err(err) => return (Vec::new(), Some(Status::internal(err.to_string()))),
    };
    let response = match service.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    if let Some(status) = Status::from_header_map(&parts.headers) {
        if status.code() != tonic::Code::Ok {
            return (Vec::new(), Some(status));
        }
    }
    let mut stream: Streaming<WirePacket> = Streaming::new_response(
        tonic_prost::ProstDecoder::<WirePacket>::default(),
        body,
        parts.status,
        None,
        None,
    );
    let mut sent = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(packet)) => sent.push(packet),
            Ok(None) => return (sent, None),
            Err(status) => return (sent, Some(status)),
        }
    }
}
