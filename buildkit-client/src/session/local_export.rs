//! Receiving the `local` exporter's files into a directory: an fsutil diffcopy
//! with the daemon as the sender.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cicd_agents_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use cicd_agents_proto::moby::filesync::v1::packets::file_send_server::{FileSend, FileSendServer};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::session::filesend::{ExportTarget, Shared};
use crate::session::filesync::walk::go_mode;

/// The packet-typed FileSend server.
#[derive(Clone)]
pub(crate) struct LocalExportServer {
    server: FileSendServer<LocalReceiver>,
    shared: Shared,
}

impl LocalExportServer {
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for LocalExportServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::poll_ready(&mut self.server, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::call(&mut self.server, request)
    }
}

pub(crate) fn server(shared: Shared) -> LocalExportServer {
    LocalExportServer {
        server: FileSendServer::new(LocalReceiver(shared.clone()))
            .max_decoding_message_size(crate::transport::MAX_MESSAGE_SIZE),
        shared,
    }
}

#[derive(Clone)]
pub(crate) struct LocalReceiver(Shared);

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FileSend for LocalReceiver {
    type DiffCopyStream = PacketStream;

    async fn diff_copy(&self, request: Request<Streaming<Packet>>) -> Result<Response<PacketStream>, Status> {
        let (index, target) = self.0.target(request.metadata())?;
        let ExportTarget::Directory(dest) = target else {
            return Err(self.0.fail(format!("exporter {index} does not write to a directory")));
        };
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(64);
        let shared = self.0.clone();
        tokio::spawn(async move {
            let outcome = receive(&dest, inbound, sender.clone()).await;
            match outcome {
                Ok(stats) => tracing::debug!(dir = %dest.display(), files = stats.0, bytes = stats.1, "local export written"),
                Err(message) => {
                    let status = shared.fail(format!("{}: {message}", dest.display()));
                    let _ = sender.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Turns a relative, `/`-separated path from the daemon into a path under
/// `dest`, refusing anything that would leave it.
fn safe_join(dest: &Path, relative: &str) -> Result<PathBuf, String> {
    let mut path = dest.to_path_buf();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("refusing the path {relative:?}: it leaves the export directory")),
            other => path.push(other),
        }
    }
    if path == dest {
        return Err(format!("refusing the empty path {relative:?}"));
    }
    Ok(path)
}

fn mtime_of(stat: &Stat) -> Option<SystemTime> {
    let nanos = u64::try_from(stat.mod_time).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}

fn set_mtime(path: &Path, time: Option<SystemTime>, is_symlink: bool) {
    let Some(time) = time else { return };
    if is_symlink {
        return;
    }
    if let Ok(file) = std::fs::File::options().write(false).read(true).open(path) {
        let _ = file.set_modified(time);
    }
}

/// Receives one diffcopy into `dest`: request every regular file, write
/// entries as they arrive, then finish with FIN. Returns files and bytes written.
async fn receive(
    dest: &Path,
    mut inbound: Streaming<Packet>,
    outbound: mpsc::Sender<Result<Packet, Status>>,
) -> Result<(u64, u64), String> {
    tokio::fs::create_dir_all(dest).await.map_err(|err| err.to_string())?;
    let mut entries: Vec<Stat> = Vec::new();
    let mut open: HashMap<u32, (tokio::io::BufWriter<tokio::fs::File>, PathBuf)> = HashMap::new();
    let mut pending: usize = 0;
    let mut listing_done = false;
    let mut files = 0u64;
    let mut bytes = 0u64;
    let send = |packet: Packet| {
        let outbound = outbound.clone();
        async move { outbound.send(Ok(packet)).await.map_err(|_| "the daemon closed the stream".to_string()) }
    };
    loop {
        if listing_done && pending == 0 {
            break;
        }
        let Some(packet) = inbound.message().await.map_err(|status| status.message().to_string())? else {
            return Err("the daemon ended the export early".into());
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketStat) => match packet.stat {
                None => listing_done = true,
                Some(stat) => {
                    let id = entries.len() as u32;
                    let path = safe_join(dest, &stat.path)?;
                    let mode = stat.mode;
                    if mode & go_mode::DIR != 0 {
                        tokio::fs::create_dir_all(&path).await.map_err(|err| format!("{}: {err}", stat.path))?;
                    } else if mode & go_mode::SYMLINK != 0 {
                        let _ = tokio::fs::remove_file(&path).await;
                        tokio::fs::symlink(&stat.linkname, &path).await.map_err(|err| format!("{}: {err}", stat.path))?;
                    } else if mode & go_mode::TYPE == 0 {
                        if !stat.linkname.is_empty() {
                            let original = safe_join(dest, &stat.linkname)?;
                            let _ = tokio::fs::remove_file(&path).await;
                            tokio::fs::hard_link(&original, &path).await.map_err(|err| format!("{}: {err}", stat.path))?;
                        } else {
                            let file = tokio::fs::File::create(&path).await.map_err(|err| format!("{}: {err}", stat.path))?;
                            open.insert(id, (tokio::io::BufWriter::with_capacity(256 * 1024, file), path));
                            pending += 1;
                            send(Packet { r#type: PacketType::PacketReq as i32, id, ..Packet::default() }).await?;
                        }
                    } else {
                        tracing::debug!(path = %stat.path, "skipping a special file in a local export");
                    }
                    entries.push(stat);
                }
            },
            Ok(PacketType::PacketData) => {
                let id = packet.id;
                if packet.data.is_empty() {
                    let Some((mut writer, path)) = open.remove(&id) else {
                        return Err(format!("data for unknown entry {id}"));
                    };
                    writer.flush().await.map_err(|err| format!("{}: {err}", path.display()))?;
                    pending = pending.saturating_sub(1);
                    files += 1;
                } else {
                    let Some((writer, path)) = open.get_mut(&id) else {
                        return Err(format!("data for unknown entry {id}"));
                    };
                    writer.write_all(&packet.data).await.map_err(|err| format!("{}: {err}", path.display()))?;
                    bytes += packet.data.len() as u64;
                }
            }
            Ok(PacketType::PacketErr) => {
                return Err(format!("the daemon reported: {}", String::from_utf8_lossy(&packet.data)));
            }
            Ok(PacketType::PacketFin) => break,
            _ => {}
        }
    }
    // Modes and times last, deepest first, so writing children does not
    // disturb a directory's time and a read-only directory is filled first.
    for stat in entries.iter().rev() {
        let Ok(path) = safe_join(dest, &stat.path) else { continue };
        let is_symlink = stat.mode & go_mode::SYMLINK != 0;
        if !is_symlink {
            let permissions = std::fs::Permissions::from_mode(unix_mode(stat.mode));
            let _ = tokio::fs::set_permissions(&path, permissions).await;
        }
        set_mtime(&path, mtime_of(stat), is_symlink);
    }
    send(Packet { r#type: PacketType::PacketFin as i32, ..Packet::default() }).await?;
    // The sender answers FIN with FIN; read until it does or hangs up.
    while let Ok(Some(packet)) = inbound.message().await {
        if packet.r#type == PacketType::PacketFin as i32 {
            break;
        }
    }
    Ok((files, bytes))
}

/// Go `os.FileMode` to the permission bits `chmod` takes (no file type).
fn unix_mode(mode: u32) -> u32 {
    go_mode::to_unix(mode) & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_export() {
        let dest = Path::new("/out");
        assert_eq!(safe_join(dest, "a/b").unwrap(), Path::new("/out/a/b"));
        assert!(safe_join(dest, "../etc/passwd").is_err());
        assert!(safe_join(dest, "a/../../x").is_err());
        assert!(safe_join(dest, "").is_err());
        assert_eq!(safe_join(dest, "/abs").unwrap(), Path::new("/out/abs"));
    }

    #[test]
    fn go_modes_become_unix_modes() {
        assert_eq!(unix_mode(0o755 | go_mode::DIR), 0o755);
        assert_eq!(unix_mode(0o755 | go_mode::SETUID), 0o4755);
    }
}
