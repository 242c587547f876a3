//! Serving gRPC *inside* a byte stream to the daemon.
//!
//! In a BuildKit session the roles are inverted: the daemon is the HTTP/2
//! client and we are the server. The transport opens the stream
//! ([`Transport::open_session`](crate::transport::Transport::open_session):
//! Docker's `/session` door or a `Control.Session` call); an HTTP/2 server
//! serves exactly one connection on it, with tonic's generated services
//! routed by [`Routes`].

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tonic::service::Routes;

use crate::transport::io::BoxedStream;

/// How the session's HTTP/2 server is tuned: BuildKit's own values (large
/// windows for context uploads, keepalive pings so a vanished daemon is noticed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerTuning {
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
}

/// Serves `routes` on the one connection `stream` until the peer hangs up
/// or the future is dropped.
///
/// The connection is driven by this future itself, not by a task of its own
/// (which is what `tonic::transport::Server` would spawn): dropping it (the
/// session being torn down) closes the socket at once, so the daemon sees
/// the session end and nothing is left running on our side.
pub(crate) async fn serve(
    routes: Routes,
    stream: BoxedStream,
    tuning: ServerTuning,
) -> Result<(), hyper::Error> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(tuning.stream_window)
        .initial_connection_window_size(tuning.connection_window)
        .max_frame_size(tuning.max_frame_size)
        .keep_alive_interval(tuning.keepalive_interval)
        .keep_alive_timeout(tuning.keepalive_timeout);
    builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(routes))
        .await
}
