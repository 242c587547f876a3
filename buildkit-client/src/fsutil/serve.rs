//! One `FileSync/DiffCopy` call, end to end, minus gRPC: walk the requested
//! directory with the request's filters, then run the sender.

use std::path::Path;
use std::sync::Arc;

use super::metadata::DiffCopyRequest;
use super::sender::{
    send, Packet, PacketSink, PacketSource, SendError, SendSummary, SenderOptions,
};
use super::walk::{walk_context_async, ContextSnapshot, WalkError, WalkOptions};

/// Options for [`serve_diffcopy`].
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Send real uid/gid (the Go client zeroes them).
    pub keep_ownership: bool,
    /// Directory-reading threads (0 = default).
    pub walk_threads: usize,
    /// Sender tuning.
    pub sender: SenderOptions,
}

/// What one [`serve_diffcopy`] call did, and how long each part took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// What was sent.
    pub sent: SendSummary,
    /// Listing the directory.
    pub walk: std::time::Duration,
    /// Sending, from the end of the listing to the end of the exchange.
    pub transfer: std::time::Duration,
}

/// Errors from [`serve_diffcopy`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Walking the directory failed (the receiver was sent an ERR).
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// The transfer failed.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Serves one `DiffCopy` stream for the directory `root`, which the caller
/// looked up by `request.dir_name` (an unknown name should be answered with
/// gRPC `NotFound`, "no access allowed to dir", as upstream does).
///
/// A walk failure is reported to the receiver with an ERR packet, like
/// fsutil's sender does, before the error is returned.
pub async fn serve_diffcopy<S, R>(
    root: &Path,
    request: &DiffCopyRequest,
    sink: S,
    source: R,
    options: &ServeOptions,
) -> Result<ServeSummary, ServeError>
where
    S: PacketSink,
    R: PacketSource,
{
    let started = std::time::Instant::now();
    let walked = walk_context_async(root.to_path_buf(), walk_options(request, options)).await;
    serve_walked(request, walked, started.elapsed(), sink, source, options).await
}

/// The walk options a `DiffCopy` call asks for, with `options`' tuning.
pub(crate) fn walk_options(request: &DiffCopyRequest, options: &ServeOptions) -> WalkOptions {
    let mut walk = request.walk_options();
    walk.keep_ownership = options.keep_ownership;
    walk.threads = options.walk_threads;
    walk
}

/// Serves one `DiffCopy` stream from a walk already made (see
/// [`serve_diffcopy`]), which took `walk_time`: a walk error is reported to
/// the receiver with an ERR packet and returned.
pub(crate) async fn serve_walked<S, R>(
    request: &DiffCopyRequest,
    walked: Result<ContextSnapshot, WalkError>,
    walk_time: std::time::Duration,
    mut sink: S,
    source: R,
    options: &ServeOptions,
) -> Result<ServeSummary, ServeError>
where
    S: PacketSink,
    R: PacketSource,
{
    let snapshot = match walked {
        Ok(snapshot) => snapshot,
        Err(err) => {
            if let Err(send_err) = sink.send(Packet::Err(err.to_string())).await {
                tracing::debug!(error = %send_err, "could not report the walk error to the receiver");
            }
            return Err(err.into());
        }
    };
    tracing::debug!(
        dir = %request.dir_name,
        entries = snapshot.len(),
        elapsed_ms = walk_time.as_millis() as u64,
        "walked local directory"
    );
    let started = std::time::Instant::now();
    let summary = send(Arc::new(snapshot), sink, source, options.sender.clone()).await?;
    let transfer = started.elapsed();
    tracing::debug!(
        dir = %request.dir_name,
        files = summary.files,
        bytes = summary.bytes,
        elapsed_ms = transfer.as_millis() as u64,
        "sent local directory"
    );
    Ok(ServeSummary {
        sent: summary,
        walk: walk_time,
        transfer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn walks_filters_and_sends() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch").unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        let request = DiffCopyRequest::from_metadata([
            ("dir-name", "dockerfile"),
            ("followpaths", "Dockerfile"),
        ]);
        let (to_sender, from_receiver) = mpsc::channel(8);
        let (to_receiver, mut from_sender) = mpsc::channel(8);
        let root = dir.path().to_path_buf();
        let task = tokio::spawn(async move {
            serve_diffcopy(
                &root,
                &request,
                to_receiver,
                from_receiver,
                &ServeOptions::default(),
            )
            .await
        });
        let Some(Packet::Stat(Some(entry))) = from_sender.recv().await else {
            panic!("expected a STAT")
        };
        assert_eq!(entry.path, "Dockerfile");
        assert_eq!(from_sender.recv().await, Some(Packet::Stat(None)));
        to_sender.send(Packet::Req(0)).await.unwrap();
        assert_eq!(
            from_sender.recv().await,
            Some(Packet::Data {
                id: 0,
                data: "FROM scratch".into()
            })
        );
        assert_eq!(
            from_sender.recv().await,
            Some(Packet::Data {
                id: 0,
                data: bytes::Bytes::new()
            })
        );
        to_sender.send(Packet::Fin).await.unwrap();
        assert_eq!(from_sender.recv().await, Some(Packet::Fin));
        let summary = task.await.unwrap().unwrap().sent;
        assert_eq!((summary.stats, summary.files, summary.bytes), (1, 1, 12));
    }

    #[tokio::test]
    async fn walk_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let request = DiffCopyRequest {
            exclude_patterns: vec!["[".into()],
            ..DiffCopyRequest::default()
        };
        let (_to_sender, from_receiver) = mpsc::channel(8);
        let (to_receiver, mut from_sender) = mpsc::channel(8);
        let err = serve_diffcopy(
            dir.path(),
            &request,
            to_receiver,
            from_receiver,
            &ServeOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ServeError::Walk(WalkError::Patterns { .. })));
        assert!(matches!(from_sender.recv().await, Some(Packet::Err(_))));
    }
}
