//! Receiving the `local` exporter's files into a directory: an fsutil diffcopy
//! with the daemon as the sender.
//!
//! The daemon is not trusted with the client's file system: entries must
//! arrive in fsutil's order (checked with the [`OrderValidator`]), and every
//! write goes through [`ExportDir`], which keeps it inside the destination
//! whatever paths, symlinks and hard links the daemon sends.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cicd_agents_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tonic::Status;

use crate::fsutil::export_dir::{ExportDir, ExportPathError};
use crate::fsutil::go_mode;
use crate::fsutil::validator::OrderValidator;

/// Why a local export failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalExportError {
    /// A path or link from the daemon was refused, or writing it failed.
    #[error(transparent)]
    Path(#[from] ExportPathError),
    /// The daemon broke the protocol (entries out of order, data for a file
    /// that was not requested, ...).
    #[error("the daemon broke the export protocol: {0}")]
    Protocol(String),
    /// The daemon reported an error with an ERR packet.
    #[error("the daemon reported: {0}")]
    Daemon(String),
    /// The stream failed or ended before the export was complete.
    #[error("the export stream ended: {0}")]
    Stream(String),
}

/// What a completed local export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalExportSummary {
    /// Regular files whose content was received.
    pub files: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Device nodes, FIFOs and sockets that were skipped.
    pub skipped: u64,
}

/// Receives one diffcopy from the daemon into `dest`, confined to it (no
/// path, symlink or hard link the daemon sends leads outside `dest`; see
/// [`ExportPathError`]): requests every regular file, writes entries as they arrive, then finishes with FIN.
///
/// `inbound` is the daemon's packet stream, `outbound` where our REQ and
/// FIN packets go. The gRPC service calls this; it is public so that the
/// receiver can be driven without a daemon.
pub async fn receive_local_export<S>(
    dest: &Path,
    mut inbound: S,
    outbound: mpsc::Sender<Result<Packet, Status>>,
) -> Result<LocalExportSummary, LocalExportError>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin + Send,
{
    let mut dir = {
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || ExportDir::open(&dest))
            .await
            .map_err(|err| LocalExportError::Stream(err.to_string()))??
    };
    let mut validator = OrderValidator::default();
    let mut entries: Vec<Stat> = Vec::new();
    let mut open: HashMap<u32, (tokio::io::BufWriter<tokio::fs::File>, String)> = HashMap::new();
    let mut pending: usize = 0;
    let mut listing_done = false;
    let mut summary = LocalExportSummary::default();
    let send = |packet: Packet| {
        let outbound = outbound.clone();
        async move {
            outbound
                .send(Ok(packet))
                .await
                .map_err(|_| LocalExportError::Stream("the daemon closed the stream".into()))
        }
    };
    loop {
        if listing_done && pending == 0 {
            break;
        }
        let packet = match inbound.next().await {
            Some(Ok(packet)) => packet,
            Some(Err(status)) => {
                return Err(LocalExportError::Stream(status.message().to_string()))
            }
            None => {
                return Err(LocalExportError::Stream(
                    "the daemon ended the export early".into(),
                ))
            }
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketStat) => match packet.stat {
                None => {
                    if listing_done {
                        return Err(LocalExportError::Protocol(
                            "a second end of the listing".into(),
                        ));
                    }
                    listing_done = true;
                    // Nothing is written before the whole listing is known
                    // and every entry of it can be written.
                    check_listing(&dir, &entries)?;
                    for (index, stat) in entries.iter().enumerate() {
                        let Some(file) = apply_entry(&mut dir, stat)? else {
                            if is_special(stat.mode) {
                                summary.skipped += 1;
                            }
                            continue;
                        };
                        let id = u32::try_from(index)
                            .map_err(|_| LocalExportError::Protocol("too many entries".into()))?;
                        let file = tokio::fs::File::from_std(file);
                        open.insert(
                            id,
                            (
                                tokio::io::BufWriter::with_capacity(256 * 1024, file),
                                stat.path.clone(),
                            ),
                        );
                        pending += 1;
                        send(Packet {
                            r#type: PacketType::PacketReq as i32,
                            id,
                            ..Packet::default()
                        })
                        .await?;
                    }
                }
                Some(stat) => {
                    if listing_done {
                        return Err(LocalExportError::Protocol(format!(
                            "entry {:?} after the end of the listing",
                            stat.path
                        )));
                    }
                    u32::try_from(entries.len())
                        .map_err(|_| LocalExportError::Protocol("too many entries".into()))?;
                    validator
                        .push(&stat.path, stat.mode & go_mode::DIR != 0)
                        .map_err(|err| LocalExportError::Protocol(err.to_string()))?;
                    entries.push(stat);
                }
            },
            Ok(PacketType::PacketData) => {
                let id = packet.id;
                let unknown = || {
                    LocalExportError::Protocol(format!(
                        "data for entry {id}, which was not requested"
                    ))
                };
                if packet.data.is_empty() {
                    let (mut writer, path) = open.remove(&id).ok_or_else(unknown)?;
                    writer.flush().await.map_err(|source| ExportPathError::Io {
                        path: dest.join(&path),
                        source,
                    })?;
                    pending = pending.saturating_sub(1);
                    summary.files += 1;
                } else {
                    let (writer, path) = open.get_mut(&id).ok_or_else(unknown)?;
                    writer
                        .write_all(&packet.data)
                        .await
                        .map_err(|source| ExportPathError::Io {
                            path: dest.join(&*path),
                            source,
                        })?;
                    summary.bytes += packet.data.len() as u64;
                }
            }
            Ok(PacketType::PacketErr) => {
                return Err(LocalExportError::Daemon(
                    String::from_utf8_lossy(&packet.data).into_owned(),
                ));
            }
            Ok(PacketType::PacketFin) => break,
            _ => {}
        }
    }
    drop(open);
    // Modes and times last, deepest first, so writing children does not
    // disturb a directory's time and a read-only directory is filled first.
    let entries = tokio::task::spawn_blocking(move || {
        for stat in entries.iter().rev() {
            if stat.mode & go_mode::SYMLINK != 0 || stat.mode & go_mode::TYPE & !go_mode::DIR != 0 {
                continue;
            }
            dir.finish(&stat.path, unix_mode(stat.mode), stat.mod_time)?;
        }
        Ok::<_, ExportPathError>(())
    });
    entries
        .await
        .map_err(|err| LocalExportError::Stream(err.to_string()))??;
    send(Packet {
        r#type: PacketType::PacketFin as i32,
        ..Packet::default()
    })
    .await?;
    // The sender answers FIN with FIN; read until it does or hangs up.
    while let Some(Ok(packet)) = inbound.next().await {
        if packet.r#type == PacketType::PacketFin as i32 {
            break;
        }
    }
    Ok(summary)
}

/// Whether a Go mode is a device node, FIFO or socket (never created).
fn is_special(mode: u32) -> bool {
    mode & go_mode::DIR == 0 && mode & go_mode::SYMLINK == 0 && mode & go_mode::TYPE != 0
}

/// Checks the whole listing before anything is written: every path is a
/// plain relative path whose parents are (or become) directories inside the
/// destination, symlinks have a target, and hard links point at regular
/// files listed before them. The first entry that cannot be written is
/// named in the error.
fn check_listing(dir: &ExportDir, entries: &[Stat]) -> Result<(), LocalExportError> {
    let listed: HashMap<&str, bool> = entries
        .iter()
        .map(|stat| (stat.path.as_str(), stat.mode & go_mode::DIR != 0))
        .collect();
    let listed_as = |prefix: &str| listed.get(prefix).copied();
    let mut files: HashSet<&str> = HashSet::new();
    for stat in entries {
        dir.check_path(&stat.path, &listed_as)?;
        let refused = |reason: String| {
            LocalExportError::Path(ExportPathError::Refused {
                path: stat.path.clone(),
                reason,
            })
        };
        if stat.mode & go_mode::DIR != 0 {
            continue;
        }
        if stat.mode & go_mode::SYMLINK != 0 {
            if stat.linkname.is_empty() || stat.linkname.contains('\0') {
                return Err(refused(
                    "the symlink target is empty or contains a NUL byte".into(),
                ));
            }
        } else if stat.mode & go_mode::TYPE == 0 {
            if !stat.linkname.is_empty() && !files.contains(stat.linkname.as_str()) {
                return Err(refused(format!(
                    "its hard link target {:?} is not a file of this export",
                    stat.linkname
                )));
            }
            files.insert(&stat.path);
        }
    }
    Ok(())
}

/// Writes one checked entry; for a regular file with content to come,
/// returns it created (empty, with its final permission bits) and open.
fn apply_entry(
    dir: &mut ExportDir,
    stat: &Stat,
) -> Result<Option<std::fs::File>, LocalExportError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = stat.mode;
    if mode & go_mode::DIR != 0 {
        dir.create_dir(&stat.path)?;
    } else if mode & go_mode::SYMLINK != 0 {
        dir.symlink(&stat.path, &stat.linkname)?;
    } else if mode & go_mode::TYPE == 0 {
        if !stat.linkname.is_empty() {
            dir.hard_link(&stat.path, &stat.linkname)?;
        } else {
            let file = dir.create_file(&stat.path)?;
            // The final mode at once: a file is never left with another
            // one, even if the export fails before its end.
            let bits = unix_mode(mode) & crate::fsutil::export_dir::KEPT_MODE_BITS;
            file.set_permissions(std::fs::Permissions::from_mode(bits))
                .map_err(|source| ExportPathError::Io {
                    path: dir.dest().join(&stat.path),
                    source,
                })?;
            return Ok(Some(file));
        }
    } else {
        tracing::debug!(path = %stat.path, mode, "not creating a device, FIFO or socket from a local export");
    }
    Ok(None)
}

/// Go `os.FileMode` to the permission bits `chmod` takes (no file type).
fn unix_mode(mode: u32) -> u32 {
    go_mode::to_unix(mode) & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_become_unix_modes() {
        assert_eq!(unix_mode(0o755 | go_mode::DIR), 0o755);
        assert_eq!(unix_mode(0o755 | go_mode::SETUID), 0o4755);
    }
}
