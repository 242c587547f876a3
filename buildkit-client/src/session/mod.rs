//! The build session: gRPC services the *client* serves back to the daemon
//! while a build runs.
//!
//! The transport opens the session's byte stream (Docker's `/session` door
//! or a `Control.Session` call; see `transport/session.rs`) and `tunnel.rs`
//! serves HTTP/2 on it, the daemon being the client. The daemon calls:
//! health checks (`health.rs`), the local context and Dockerfile
//! ([`context_sync`], over [`fsutil`](crate::fsutil)), exported files
//! (`filesend.rs` for tarballs, `local_export.rs` for directories, their
//! targets in `exports.rs`), registry credentials ([`auth`]), build secrets
//! ([`secrets`]), SSH agents ([`ssh`]) and data held in memory
//! (`upload.rs`). Each file here is one gRPC service; the file transfer
//! protocol itself lives in [`fsutil`](crate::fsutil).
//!
//! A session must be up before the solve that names it (the daemon waits
//! about five seconds for it) and must keep answering health checks: two
//! missed probes and the daemon drops it, failing the build later with
//! "no active session".

pub mod auth;
pub mod context_sync;
pub(crate) mod exports;
pub(crate) mod filesend;
pub(crate) mod health;
pub(crate) mod local_export;
pub mod secrets;
pub mod ssh;
pub(crate) mod tunnel;
pub(crate) mod upload;

use std::time::Duration;

use tokio::task::JoinHandle;
use tonic::service::RoutesBuilder;

use crate::client::Client;
use crate::error::Result;
use crate::transport::{CONNECTION_WINDOW, MAX_MESSAGE_SIZE, STREAM_WINDOW};

/// The session server's HTTP/2 settings: the same windows as our client
/// connections and frames up to 1 MiB; the keepalive is replaced by the
/// client's own ([`crate::transport::Keepalive`]).
const SERVER_TUNING: tunnel::ServerTuning = tunnel::ServerTuning {
    stream_window: STREAM_WINDOW,
    connection_window: CONNECTION_WINDOW,
    max_frame_size: 1024 * 1024 - 1,
    keepalive_interval: Duration::from_secs(60),
    keepalive_timeout: Duration::from_secs(20),
};

/// Header (or, over `Control.Session`, lowercase metadata) names of the session handshake.
pub(crate) mod header {
    pub const UUID: &str = "X-Docker-Expose-Session-Uuid";
    pub const NAME: &str = "X-Docker-Expose-Session-Name";
    pub const SHARED_KEY: &str = "X-Docker-Expose-Session-Sharedkey";
    pub const METHOD: &str = "X-Docker-Expose-Session-Grpc-Method";
}

/// A 25-character random ID, the shape BuildKit's own IDs have.
pub(crate) fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..25)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What one session serves.
#[derive(Debug, Default)]
pub(crate) struct SessionConfig {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) shared_key: String,
    pub(crate) local_dirs: context_sync::LocalDirs,
    pub(crate) secrets: Vec<secrets::Secret>,
    pub(crate) auth: auth::RegistryAuth,
    pub(crate) ssh: Vec<ssh::SshAgent>,
    pub(crate) exports: exports::Exports,
    pub(crate) uploads: upload::Uploads,
}

/// A session being served; dropping it tears it down.
pub(crate) struct RunningSession {
    pub(crate) local_dirs: context_sync::LocalDirs,
    tasks: Vec<JoinHandle<()>>,
    pub(crate) exports: exports::ExportsDone,
}

impl Drop for RunningSession {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RunningSession {
    /// Ends the session.
    pub(crate) fn close(self) {
        drop(self);
    }
}

impl SessionConfig {
    fn methods(&self) -> Vec<&'static str> {
        let mut methods: Vec<&'static str> = Vec::new();
        methods.extend(health::METHODS);
        methods.extend(auth::METHODS);
        if !self.local_dirs.is_empty() {
            methods.extend(context_sync::METHODS);
        }
        if !self.secrets.is_empty() {
            methods.extend(secrets::METHODS);
        }
        if !self.ssh.is_empty() {
            methods.extend(ssh::METHODS);
        }
        if !self.exports.is_empty() {
            methods.extend(filesend::METHODS);
        }
        if !self.uploads.is_empty() {
            methods.extend(upload::METHODS);
        }
        methods
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            (header::UUID.to_string(), self.id.clone()),
            (header::NAME.to_string(), self.name.clone()),
            (header::SHARED_KEY.to_string(), self.shared_key.clone()),
        ];
        headers.extend(
            self.methods()
                .into_iter()
                .map(|m| (header::METHOD.to_string(), m.to_string())),
        );
        headers
    }

    /// Starts serving on `client`'s daemon and returns once the tunnel is open.
    pub(crate) async fn start(self, client: &Client) -> Result<RunningSession> {
        let headers = self.headers();
        let (exports_done, exports_service) = filesend::server(self.exports);
        let mut routes = RoutesBuilder::default();
        routes.add_service(health::server()).add_service(
            auth::AuthService::server(self.auth)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        );
        if !self.local_dirs.is_empty() {
            routes.add_service(self.local_dirs.server());
        }
        let store = secrets::SecretStore::new(&self.secrets);
        if !store.is_empty() {
            routes.add_service(store.server());
        }
        if !self.ssh.is_empty() {
            routes.add_service(ssh::SshService::server(self.ssh));
        }
        if let Some(exports_service) = exports_service {
            routes.add_service(exports_service);
        }
        if !self.uploads.is_empty() {
            routes.add_service(self.uploads.server());
        }
        let routes = routes.routes();
        let id = self.id.clone();
        let local_dirs = self.local_dirs.clone();
        let keepalive = client.transport.keepalive();
        let tuning = tunnel::ServerTuning {
            keepalive_interval: keepalive.interval(),
            keepalive_timeout: keepalive.timeout(),
            ..SERVER_TUNING
        };
        let opened = client.open_session(&headers).await?;
        let mut tasks = opened.tasks;
        let stream = opened.stream;
        tasks.push(tokio::spawn(async move {
            if let Err(err) = tunnel::serve(routes, stream, tuning).await {
                tracing::warn!(error = %err, "session server stopped");
            }
        }));
        tracing::debug!(session = %id, "session started");
        Ok(RunningSession {
            local_dirs,
            tasks,
            exports: exports_done,
        })
    }
}
