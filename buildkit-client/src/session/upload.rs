//! `moby.upload.v1.Upload`: bytes held in memory that the daemon pulls as an
//! HTTP source at `http://buildkit-session/<id>` (how buildx sends a context
//! archive read from standard input).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cicd_agents_proto::moby::upload::v1::upload_server::{Upload, UploadServer};
use cicd_agents_proto::moby::upload::v1::BytesMessage;
use futures::Stream;
use tonic::{Request, Response, Status};

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &["/moby.upload.v1.Upload/Pull"];

/// The URL host the daemon resolves through the session.
const SESSION_HOST: &str = "buildkit-session";

/// Size of each message sent.
const CHUNK: usize = 32 * 1024;

/// Uploads served by one session, by ID; each is served once.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uploads {
    items: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl Uploads {
    /// Adds `data` and returns the URL the daemon fetches it from.
    pub(crate) fn add(&self, id: &str, data: Bytes) -> String {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), data);
        upload_url(id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub(crate) fn server(self) -> UploadServer<Uploads> {
        UploadServer::new(self)
    }

    fn take(&self, path: &str) -> Option<Bytes> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path.trim_start_matches('/'))
    }
}

/// The URL of upload `id`.
pub(crate) fn upload_url(id: &str) -> String {
    format!("http://{SESSION_HOST}/{id}")
}

/// `data` cut into messages of at most [`CHUNK`] bytes.
fn chunks(data: Bytes) -> Vec<BytesMessage> {
    let mut messages = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + CHUNK).min(data.len());
        messages.push(BytesMessage {
            data: data.slice(offset..end).to_vec(),
        });
        offset = end;
    }
    messages
}

#[tonic::async_trait]
impl Upload for Uploads {
    type PullStream = Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send + 'static>>;

    async fn pull(
        &self,
        request: Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let path = request
            .metadata()
            .get("urlpath")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some(data) = self.take(&path) else {
            return Err(Status::not_found(format!("no upload at {path:?}")));
        };
        tracing::debug!(path = %path, bytes = data.len(), "serving an upload");
        let stream = futures::stream::iter(chunks(data).into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_cut_into_chunks_and_served_once() {
        let data = Bytes::from(vec![7u8; CHUNK * 2 + 5]);
        let sizes: Vec<usize> = chunks(data.clone()).iter().map(|m| m.data.len()).collect();
        assert_eq!(sizes, [CHUNK, CHUNK, 5]);
        assert!(chunks(Bytes::new()).is_empty());
        let uploads = Uploads::default();
        assert_eq!(uploads.add("abc", data), "http://buildkit-session/abc");
        assert!(uploads.take("/abc").is_some());
        assert!(uploads.take("/abc").is_none());
    }
}
