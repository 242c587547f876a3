//! A hostile daemon, played in-process: it drives our session services the
//! way BuildKit would, but asks for what it should not get and sends what it
//! should not write.
//!
//! * The context sender (`moby.filesync.v1.FileSync/DiffCopy`) is served
//!   over real gRPC on loopback and called with the generated client: the
//!   "daemon" asks for directories that were not offered, for files the
//!   filters exclude, for IDs outside the listing, for symlinks, and for
//!   files swapped for symlinks to outside after the listing. Nothing from
//!   outside the context, and nothing excluded, may ever come back.
//! * The local export receiver is fed scripted packet streams with `../`
//!   paths, absolute paths, a symlink followed by a file through it, hard
//!   links to outside and to pre-existing files, device nodes and FIFOs, and
//!   a destination that already holds links pointing outside. Nothing
//!   outside the destination may change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cicd_agents_buildkit::fsutil::go_mode;
use cicd_agents_buildkit::fsutil::{receive_local_export, LocalExportError, LocalExportSummary};
use cicd_agents_buildkit::session::context_sync::LocalDirs;
use cicd_agents_proto::fsutil::types::{packet::PacketType, Packet, Stat};
use cicd_agents_proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use cicd_agents_proto::moby::filesync::v1::file_sync_server::FileSyncServer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Channel, Server};

const OUTSIDE_MARKER: &str = "OUTSIDE-THE-CONTEXT-3f9a1c";
const EXCLUDED_MARKER: &str = "EXCLUDED-BY-FILTERS-77d2e0";

// ---------------------------------------------------------------------------
// The context sender
// ---------------------------------------------------------------------------

/// A context next to a directory it must never leak.
struct Fixture {
    _top: tempfile::TempDir,
    ctx: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let top = tempfile::tempdir().unwrap();
    let ctx = top.path().join("ctx");
    let outside = top.path().join("outside");
    fs::create_dir_all(ctx.join("dir")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), OUTSIDE_MARKER).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    fs::write(ctx.join("app.txt"), "application").unwrap();
    fs::write(ctx.join("dir/inner.txt"), "inner").unwrap();
    fs::write(ctx.join(".env"), EXCLUDED_MARKER).unwrap();
    fs::create_dir_all(ctx.join("private")).unwrap();
    fs::write(ctx.join("private/key"), EXCLUDED_MARKER).unwrap();
    symlink("../outside/secret", ctx.join("relative-link")).unwrap();
    symlink(outside.join("secret"), ctx.join("absolute-link")).unwrap();
    symlink(&outside, ctx.join("dir-link")).unwrap();
    Fixture {
        _top: top,
        ctx,
        outside,
    }
}

/// Serves `dirs` over gRPC on loopback, as the session does for the daemon.
async fn serve(dirs: LocalDirs) -> FileSyncClient<Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .add_service(FileSyncServer::new(dirs))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    FileSyncClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn dirs(fixture: &Fixture) -> LocalDirs {
    let mut dirs = LocalDirs::default();
    dirs.insert("context", &fixture.ctx);
    dirs
}

/// What one hostile DiffCopy call got back.
#[derive(Debug, Default)]
struct Transfer {
    stats: Vec<Stat>,
    /// Every DATA byte received, by ID.
    data: BTreeMap<u32, Vec<u8>>,
    /// The sender's ERR message or the call's status, if any.
    error: Option<String>,
}

impl Transfer {
    fn all_bytes(&self) -> Vec<u8> {
        let mut all: Vec<u8> = self.data.values().flatten().copied().collect();
        for stat in &self.stats {
            all.extend_from_slice(stat.path.as_bytes());
            all.extend_from_slice(stat.linkname.as_bytes());
        }
        all.extend_from_slice(self.error.as_deref().unwrap_or_default().as_bytes());
        all
    }

    fn leaks(&self, marker: &str) -> bool {
        contains(&self.all_bytes(), marker.as_bytes())
    }

    fn id_of(&self, path: &str) -> u32 {
        self.stats
            .iter()
            .position(|s| s.path == path)
            .unwrap_or_else(|| panic!("{path} not listed")) as u32
    }
}

async fn next(inbound: &mut tonic::Streaming<Packet>) -> Result<Option<Packet>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(20), inbound.message())
        .await
        .expect("the sender stalled")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Packet::default()
    }
}

fn req(id: u32) -> Packet {
    Packet {
        id,
        ..packet(PacketType::PacketReq)
    }
}

/// Opens a DiffCopy with `metadata`, reads the listing, runs `between`
/// (which may tamper with the context), sends `requests`, then FIN, and
/// collects whatever comes back.
async fn diffcopy(
    client: &mut FileSyncClient<Channel>,
    metadata: &[(&'static str, &str)],
    between: impl FnOnce(&[Stat]),
    requests: impl FnOnce(&[Stat]) -> Vec<u32>,
) -> Transfer {
    let (to_sender, outbound) = mpsc::channel::<Packet>(1024);
    let mut request = tonic::Request::new(ReceiverStream::new(outbound));
    for (key, value) in metadata {
        request.metadata_mut().append(*key, value.parse().unwrap());
    }
    let mut transfer = Transfer::default();
    let mut inbound = match client.diff_copy(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            transfer.error = Some(format!("{:?}: {}", status.code(), status.message()));
            return transfer;
        }
    };
    // The listing.
    loop {
        match next(&mut inbound).await {
            Ok(Some(p)) if p.r#type == PacketType::PacketStat as i32 => match p.stat {
                Some(stat) => transfer.stats.push(stat),
                None => break,
            },
            Ok(Some(p)) if p.r#type == PacketType::PacketErr as i32 => {
                transfer.error = Some(String::from_utf8_lossy(&p.data).into_owned());
                return transfer;
            }
            Ok(Some(p)) => panic!("unexpected packet type {} during the listing", p.r#type),
            Ok(None) => return transfer,
            Err(status) => {
                transfer.error = Some(status.message().to_string());
                return transfer;
            }
        }
    }
    between(&transfer.stats);
    for id in requests(&transfer.stats) {
        to_sender.send(req(id)).await.unwrap();
    }
    to_sender.send(packet(PacketType::PacketFin)).await.unwrap();
    loop {
        match next(&mut inbound).await {
            Ok(Some(p)) if p.r#type == PacketType::PacketData as i32 => {
                transfer
                    .data
                    .entry(p.id)
                    .or_default()
                    .extend_from_slice(&p.data);
            }
            Ok(Some(p)) if p.r#type == PacketType::PacketErr as i32 => {
                transfer.error = Some(String::from_utf8_lossy(&p.data).into_owned());
                break;
            }
            Ok(Some(p)) if p.r#type == PacketType::PacketFin as i32 => break,
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(status) => {
                transfer
                    .error
                    .get_or_insert_with(|| status.message().to_string());
                break;
            }
        }
    }
    transfer
}

#[tokio::test]
async fn directories_that_were_not_offered_are_refused() {
    let fixture = fixture();
    let mut client = serve(dirs(&fixture)).await;
    for name in ["dockerfile", "../ctx", "/", "", "context/.."] {
        let transfer = diffcopy(&mut client, &[("dir-name", name)], |_| {}, |_| vec![]).await;
        let error = transfer.error.unwrap_or_default();
        assert!(
            error.contains("NotFound") && error.contains("no access allowed"),
            "{name:?}: {error}"
        );
        assert!(transfer.stats.is_empty());
    }
}

#[tokio::test]
async fn excluded_files_are_neither_listed_nor_sent_whatever_id_is_asked() {
    let fixture = fixture();
    let mut client = serve(dirs(&fixture)).await;
    let metadata = [
        ("dir-name", "context"),
        ("exclude-patterns", ".env"),
        ("exclude-patterns", "private"),
    ];
    // Ask for every listed file.
    let transfer = diffcopy(
        &mut client,
        &metadata,
        |_| {},
        |stats| {
            (0..stats.len() as u32)
                .filter(|&i| stats[i as usize].mode & go_mode::TYPE == 0)
                .collect()
        },
    )
    .await;
    assert_eq!(transfer.error, None);
    assert!(
        transfer.data.values().any(|d| d == b"application"),
        "the listed files were sent"
    );
    assert!(
        !transfer
            .stats
            .iter()
            .any(|s| s.path == ".env" || s.path.starts_with("private")),
        "{:?}",
        transfer.stats
    );
    assert!(!transfer.leaks(EXCLUDED_MARKER));
    assert!(!transfer.leaks(OUTSIDE_MARKER));

    // IDs past the listing, where excluded files would have been.
    let transfer = diffcopy(
        &mut client,
        &metadata,
        |_| {},
        |stats| vec![stats.len() as u32, stats.len() as u32 + 1, u32::MAX],
    )
    .await;
    assert!(
        !transfer
            .stats
            .iter()
            .any(|s| s.path == ".env" || s.path.starts_with("private")),
        "{:?}",
        transfer.stats
    );
    assert!(!transfer.leaks(EXCLUDED_MARKER));
    assert!(!transfer.leaks(OUTSIDE_MARKER));
    let error = transfer.error.as_deref().unwrap_or_default();
    assert!(error.contains("invalid file id"), "{error}");

    // Only the out-of-range request: refused by number.
    let transfer = diffcopy(
        &mut client,
        &metadata,
        |_| {},
        |stats| vec![stats.len() as u32],
    )
    .await;
    assert!(
        transfer
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("invalid file id"),
        "{:?}",
        transfer.error
    );
    assert!(transfer.data.is_empty());

    // An include pattern that points outside the context lists nothing from there.
    let transfer = diffcopy(
        &mut client,
        &[
            ("dir-name", "context"),
            ("include-patterns", "../outside/secret"),
            ("include-patterns", "/etc/passwd"),
        ],
        |_| {},
        |stats| (0..stats.len() as u32).collect(),
    )
    .await;
    assert!(!transfer.leaks(OUTSIDE_MARKER));
    assert!(
        transfer
            .stats
            .iter()
            .all(|s| !s.path.starts_with("..") && !s.path.starts_with('/')),
        "{:?}",
        transfer.stats
    );
}

#[tokio::test]
async fn symlinks_are_sent_as_links_and_never_followed() {
    let fixture = fixture();
    let mut client = serve(dirs(&fixture)).await;
    let transfer = diffcopy(&mut client, &[("dir-name", "context")], |_| {}, |_| vec![]).await;
    assert_eq!(transfer.error, None);
    let by_path: BTreeMap<&str, &Stat> = transfer
        .stats
        .iter()
        .map(|s| (s.path.as_str(), s))
        .collect();
    let relative = by_path["relative-link"];
    assert_ne!(relative.mode & go_mode::SYMLINK, 0);
    assert_eq!(relative.linkname, "../outside/secret");
    assert_ne!(by_path["dir-link"].mode & go_mode::SYMLINK, 0);
    assert!(
        !by_path.keys().any(|p| p.starts_with("dir-link/")),
        "a symlinked directory was entered"
    );

    // Asking for a link's content is refused; nothing from outside comes back.
    for link in ["relative-link", "absolute-link", "dir-link"] {
        let id = transfer.id_of(link);
        let asked = diffcopy(
            &mut client,
            &[("dir-name", "context")],
            |_| {},
            |_| vec![id],
        )
        .await;
        let error = asked.error.as_deref().unwrap_or_default();
        assert!(error.contains("not a regular file"), "{link}: {error}");
        assert!(!asked.leaks(OUTSIDE_MARKER), "{link}");
    }

    // Follow paths through links: the targets are taken inside the context.
    let transfer = diffcopy(
        &mut client,
        &[
            ("dir-name", "context"),
            ("followpaths", "relative-link"),
            ("followpaths", "absolute-link"),
            ("followpaths", "dir-link/secret"),
        ],
        |_| {},
        |stats| {
            (0..stats.len() as u32)
                .filter(|&i| stats[i as usize].mode & go_mode::TYPE == 0)
                .collect()
        },
    )
    .await;
    assert!(!transfer.leaks(OUTSIDE_MARKER), "{transfer:?}");
    assert!(
        transfer.stats.iter().all(|s| !s.path.starts_with("..")),
        "{:?}",
        transfer.stats
    );
}

#[tokio::test]
async fn files_swapped_for_links_to_outside_after_the_listing_are_refused() {
    for (victim, swap_dir) in [("app.txt", false), ("dir/inner.txt", true)] {
        let fixture = fixture();
        let mut client = serve(dirs(&fixture)).await;
        let ctx = fixture.ctx.clone();
        let outside = fixture.outside.clone();
        let transfer = diffcopy(
            &mut client,
            &[("dir-name", "context")],
            |_| {
                if swap_dir {
                    // The directory above the file becomes a link to outside,
                    // where a file of the same name waits.
                    fs::write(outside.join("inner.txt"), OUTSIDE_MARKER).unwrap();
                    fs::rename(ctx.join("dir"), ctx.join("dir.moved")).unwrap();
                    symlink(&outside, ctx.join("dir")).unwrap();
                } else {
                    fs::remove_file(ctx.join(victim)).unwrap();
                    symlink(outside.join("secret"), ctx.join(victim)).unwrap();
                }
            },
            |stats| vec![stats.iter().position(|s| s.path == victim).unwrap() as u32],
        )
        .await;
        let error = transfer.error.as_deref().unwrap_or_default();
        assert!(error.contains("refusing to send"), "{victim}: {error}");
        assert!(!transfer.leaks(OUTSIDE_MARKER), "{victim}");
    }
}

#[tokio::test]
async fn a_file_replaced_by_another_after_the_listing_is_refused() {
    let fixture = fixture();
    let mut client = serve(dirs(&fixture)).await;
    let ctx = fixture.ctx.clone();
    let transfer = diffcopy(
        &mut client,
        &[("dir-name", "context"), ("exclude-patterns", ".env")],
        // The excluded file is renamed over a listed one.
        |_| fs::rename(ctx.join(".env"), ctx.join("app.txt")).unwrap(),
        |stats| vec![stats.iter().position(|s| s.path == "app.txt").unwrap() as u32],
    )
    .await;
    assert!(
        transfer
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("replaced"),
        "{:?}",
        transfer.error
    );
    assert!(!transfer.leaks(EXCLUDED_MARKER));
}

// ---------------------------------------------------------------------------
// The local export receiver
// ---------------------------------------------------------------------------

fn stat(path: &str, mode: u32) -> Stat {
    Stat {
        path: path.into(),
        mode,
        mod_time: 1_700_000_000_000_000_000,
        ..Stat::default()
    }
}

fn dir(path: &str) -> Packet {
    Packet {
        stat: Some(stat(path, go_mode::DIR | 0o755)),
        ..packet(PacketType::PacketStat)
    }
}

fn file(path: &str, mode: u32) -> Packet {
    Packet {
        stat: Some(stat(path, mode)),
        ..packet(PacketType::PacketStat)
    }
}

fn link(path: &str, target: &str) -> Packet {
    Packet {
        stat: Some(Stat {
            linkname: target.into(),
            ..stat(path, go_mode::SYMLINK | 0o777)
        }),
        ..packet(PacketType::PacketStat)
    }
}

fn hard_link(path: &str, original: &str) -> Packet {
    Packet {
        stat: Some(Stat {
            linkname: original.into(),
            ..stat(path, 0o644)
        }),
        ..packet(PacketType::PacketStat)
    }
}

fn device(path: &str, mode: u32) -> Packet {
    Packet {
        stat: Some(Stat {
            devmajor: 1,
            devminor: 3,
            ..stat(path, mode)
        }),
        ..packet(PacketType::PacketStat)
    }
}

fn end_of_listing() -> Packet {
    packet(PacketType::PacketStat)
}

fn data(id: u32, bytes: &str) -> Vec<Packet> {
    let mut out = Vec::new();
    if !bytes.is_empty() {
        out.push(Packet {
            id,
            data: bytes.as_bytes().to_vec().into(),
            ..packet(PacketType::PacketData)
        });
    }
    out.push(Packet {
        id,
        ..packet(PacketType::PacketData)
    });
    out
}

/// A destination next to an `outside` directory holding a file that must
/// survive, and a record of `outside`'s state.
struct ExportFixture {
    _top: tempfile::TempDir,
    dest: PathBuf,
    outside: PathBuf,
}

fn export_fixture() -> ExportFixture {
    let top = tempfile::tempdir().unwrap();
    let dest = top.path().join("dest");
    let outside = top.path().join("outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), "original").unwrap();
    fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o640)).unwrap();
    ExportFixture {
        _top: top,
        dest,
        outside,
    }
}

impl ExportFixture {
    /// Every path under `outside` (and the directory above `dest`) with its
    /// content, mode and mtime.
    fn outside_state(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64)> {
        fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32, i64)>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path == skip {
                    continue;
                }
                let meta = fs::symlink_metadata(&path).unwrap();
                let content = if meta.is_file() {
                    fs::read(&path).unwrap()
                } else {
                    Vec::new()
                };
                out.insert(path.clone(), (content, meta.mode(), meta.mtime()));
                if meta.is_dir() {
                    walk(&path, skip, out);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dest.parent().unwrap(), &self.dest, &mut out);
        out
    }

    /// Plays `script` as the daemon and returns the receiver's outcome and
    /// the packets it sent back.
    async fn export(
        &self,
        script: Vec<Packet>,
    ) -> (Result<LocalExportSummary, LocalExportError>, Vec<Packet>) {
        let (daemon, inbound) = mpsc::channel(script.len() + 1);
        for p in script {
            daemon.send(Ok(p)).await.unwrap();
        }
        drop(daemon);
        let (outbound, mut replies) = mpsc::channel(1024);
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            receive_local_export(&self.dest, ReceiverStream::new(inbound), outbound),
        )
        .await
        .expect("the receiver stalled");
        let mut sent = Vec::new();
        while let Ok(Some(Ok(p))) =
            tokio::time::timeout(Duration::from_millis(10), replies.recv()).await
        {
            sent.push(p);
        }
        (result, sent)
    }

    async fn refused(&self, what: &str, script: Vec<Packet>) -> LocalExportError {
        let before = self.outside_state();
        let (result, _) = self.export(script).await;
        let err = match result {
            Err(err) => err,
            Ok(summary) => panic!("{what}: accepted ({summary:?})"),
        };
        assert_eq!(
            self.outside_state(),
            before,
            "{what}: something outside the destination changed"
        );
        assert_eq!(
            fs::read(self.outside.join("victim")).unwrap(),
            b"original",
            "{what}"
        );
        err
    }
}

fn fin() -> Packet {
    packet(PacketType::PacketFin)
}

#[tokio::test]
async fn a_well_behaved_export_is_written() {
    let f = export_fixture();
    let mut script = vec![
        dir("d"),
        file("d/a", 0o4755),
        hard_link("d/b", "d/a"),
        link("d/l", "/etc/passwd"),
        end_of_listing(),
    ];
    script.extend(data(1, "content"));
    script.push(fin());
    let (result, sent) = f.export(script).await;
    let summary = result.unwrap();
    assert_eq!((summary.files, summary.bytes), (1, 7));
    assert_eq!(fs::read(f.dest.join("d/a")).unwrap(), b"content");
    assert_eq!(
        fs::metadata(f.dest.join("d/a")).unwrap().ino(),
        fs::metadata(f.dest.join("d/b")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(f.dest.join("d/a")).unwrap().mode() & 0o7777,
        0o755,
        "set-user-ID bit dropped"
    );
    assert_eq!(
        fs::read_link(f.dest.join("d/l")).unwrap(),
        Path::new("/etc/passwd")
    );
    // We asked only for the regular file, and finished with FIN.
    let reqs: Vec<u32> = sent
        .iter()
        .filter(|p| p.r#type == PacketType::PacketReq as i32)
        .map(|p| p.id)
        .collect();
    assert_eq!(reqs, vec![1]);
    assert_eq!(
        sent.last().map(|p| p.r#type),
        Some(PacketType::PacketFin as i32)
    );
}

#[tokio::test]
async fn paths_leaving_the_destination_are_refused() {
    let f = export_fixture();
    for (what, path) in [
        ("parent", "../outside/victim"),
        ("nested parent", "a/../../outside/victim"),
        ("absolute", f.outside.join("victim").to_str().unwrap()),
        ("dot-dot alone", ".."),
    ] {
        let mut script = vec![file(path, 0o644), end_of_listing()];
        script.extend(data(0, "pwned"));
        script.push(fin());
        let err = f.refused(what, script).await;
        assert!(
            err.to_string().contains(path) || err.to_string().contains("path"),
            "{what}: {err}"
        );
    }
}

#[tokio::test]
async fn a_file_through_a_symlink_is_refused() {
    let f = export_fixture();
    let outside = f.outside.to_str().unwrap().to_string();
    // The link as a plain entry, then a file below it.
    let mut script = vec![
        link("l", &outside),
        file("l/victim", 0o644),
        end_of_listing(),
    ];
    script.extend(data(1, "pwned"));
    f.refused("file below a symlink", script).await;
    // A relative link to the destination's parent (found by the session_packets fuzz target).
    let mut script = vec![link("a", ".."), file("a/b", 0o644), end_of_listing()];
    script.extend(data(1, "escaped"));
    f.refused("file below a link to ..", script).await;
    assert!(
        !f.dest.parent().unwrap().join("b").exists(),
        "a/b was written through a -> .."
    );
    // The link disguised with both the directory and the symlink bits.
    let script = vec![
        Packet {
            stat: Some(Stat {
                linkname: outside.clone(),
                ..stat("m", go_mode::DIR | go_mode::SYMLINK | 0o777)
            }),
            ..packet(PacketType::PacketStat)
        },
        file("m/victim", 0o644),
        end_of_listing(),
    ];
    let (_, _) = f.export(script).await;
    assert_eq!(fs::read(f.outside.join("victim")).unwrap(), b"original");
    assert!(!fs::symlink_metadata(f.dest.join("m"))
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false));
}

#[tokio::test]
async fn links_already_in_the_destination_are_replaced_not_followed() {
    let f = export_fixture();
    symlink(&f.outside, f.dest.join("pre-dir")).unwrap();
    symlink(f.outside.join("victim"), f.dest.join("pre-file")).unwrap();
    fs::hard_link(f.outside.join("victim"), f.dest.join("pre-hard")).unwrap();
    let before = f.outside_state();
    let mut script = vec![
        file("pre-file", 0o777),
        file("pre-hard", 0o777),
        end_of_listing(),
    ];
    script.extend(data(0, "new"));
    script.extend(data(1, "new"));
    script.push(fin());
    f.export(script).await.0.unwrap();
    assert_eq!(fs::read(f.dest.join("pre-file")).unwrap(), b"new");
    assert_eq!(fs::read(f.dest.join("pre-hard")).unwrap(), b"new");
    // A directory entry where a link to outside was: a real directory now.
    let mut script = vec![
        dir("pre-dir"),
        file("pre-dir/victim", 0o777),
        end_of_listing(),
    ];
    script.extend(data(1, "new"));
    script.push(fin());
    f.export(script).await.0.unwrap();
    assert!(fs::symlink_metadata(f.dest.join("pre-dir"))
        .unwrap()
        .is_dir());
    // The outside file's hard link count went down by one (the link in dest
    // was replaced); nothing else changed.
    let mut after = f.outside_state();
    let mut before = before;
    for state in [&mut after, &mut before] {
        state.retain(|path, _| !path.starts_with(&f.dest));
    }
    assert_eq!(after, before);
    // A file through a pre-existing link to outside, with no directory entry first.
    symlink(&f.outside, f.dest.join("pre-dir2")).unwrap();
    let mut script = vec![file("pre-dir2/victim", 0o644), end_of_listing()];
    script.extend(data(0, "pwned"));
    f.refused("through a pre-existing link", script).await;
}

#[tokio::test]
async fn hard_links_must_point_at_files_of_the_same_export() {
    let f = export_fixture();
    fs::hard_link(f.outside.join("victim"), f.dest.join("pre-hard")).unwrap();
    let outside_victim = f.outside.join("victim");
    for (what, original) in [
        ("outside by ..", "../outside/victim"),
        ("outside by absolute path", outside_victim.to_str().unwrap()),
        ("a pre-existing file", "pre-hard"),
        ("a file not sent", "missing"),
    ] {
        let err = f
            .refused(
                what,
                vec![hard_link("x", original), end_of_listing(), fin()],
            )
            .await;
        assert!(matches!(err, LocalExportError::Path(_)), "{what}: {err}");
        assert!(!f.dest.join("x").exists(), "{what}");
    }
    // To a symlink of the export that points outside: refused too.
    let outside = f.outside.join("victim");
    let err = f
        .refused(
            "a symlink of the export",
            vec![
                link("l", outside.to_str().unwrap()),
                hard_link("x", "l"),
                end_of_listing(),
                fin(),
            ],
        )
        .await;
    assert!(matches!(err, LocalExportError::Path(_)), "{err}");
}

#[tokio::test]
async fn devices_fifos_and_sockets_are_not_created() {
    let f = export_fixture();
    let script = vec![
        device("block", go_mode::DEVICE | 0o666),
        device("char", go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666),
        device("fifo", go_mode::NAMED_PIPE | 0o666),
        device("sock", go_mode::SOCKET | 0o666),
        end_of_listing(),
        fin(),
    ];
    let (result, sent) = f.export(script).await;
    assert_eq!(result.unwrap().skipped, 4);
    for name in ["block", "char", "fifo", "sock"] {
        assert!(
            fs::symlink_metadata(f.dest.join(name)).is_err(),
            "{name} was created"
        );
    }
    assert!(
        sent.iter()
            .all(|p| p.r#type != PacketType::PacketReq as i32),
        "special files are never requested"
    );
}

#[tokio::test]
async fn protocol_violations_end_the_export() {
    let f = export_fixture();
    // Data for an ID we never asked for.
    let mut script = vec![dir("d")];
    script.extend(data(0, "x"));
    script.push(end_of_listing());
    let err = f.refused("data for a directory", script).await;
    assert!(matches!(err, LocalExportError::Protocol(_)), "{err}");
    // Entries out of order, or twice.
    let err = f
        .refused(
            "out of order",
            vec![file("b", 0o644), file("a", 0o644), end_of_listing()],
        )
        .await;
    assert!(matches!(err, LocalExportError::Protocol(_)), "{err}");
    let err = f
        .refused(
            "twice",
            vec![file("a", 0o644), file("a", 0o644), end_of_listing()],
        )
        .await;
    assert!(matches!(err, LocalExportError::Protocol(_)), "{err}");
    // The daemon's error, and an early end.
    let err = f
        .refused(
            "daemon error",
            vec![Packet {
                data: b"boom".to_vec().into(),
                ..packet(PacketType::PacketErr)
            }],
        )
        .await;
    assert!(err.to_string().contains("boom"), "{err}");
    let err = f.refused("early end", vec![file("a", 0o644)]).await;
    assert!(matches!(err, LocalExportError::Stream(_)), "{err}");
}

/// Every path under `dir` (relative), with a `/` after directories and
/// `-> target` after symlinks.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// fsutil's `TestCopySwitchDirToFile` and
/// `TestCopyWithAlwaysReplaceExistingDestPaths`: an export over a tree that
/// is already there replaces a directory by a file and a file (or a link)
/// by a directory, merges directories, and keeps unrelated entries; no file
/// is left without its mode.
#[tokio::test]
async fn an_export_over_an_existing_tree_replaces_and_merges() {
    let f = export_fixture();
    fs::create_dir_all(f.dest.join("foo/deep")).unwrap();
    fs::write(f.dest.join("foo/deep/old"), "old").unwrap();
    fs::write(f.dest.join("bar"), "was a file").unwrap();
    symlink(&f.outside, f.dest.join("baz")).unwrap();
    fs::create_dir_all(f.dest.join("keep/inner")).unwrap();
    fs::write(f.dest.join("keep/inner/x"), "x").unwrap();
    fs::write(f.dest.join("keep/mine"), "mine").unwrap();
    fs::write(f.dest.join("unrelated"), "unrelated").unwrap();
    let mut script = vec![
        dir("bar"),
        file("bar/new", 0o755),
        dir("baz"),
        file("baz/victim", 0o600),
        file("foo", 0o755),
        dir("keep"),
        file("keep/mine", 0o640),
        file("keep/theirs", 0o644),
        end_of_listing(),
    ];
    for (id, text) in [
        (1, "bar-new"),
        (3, "baz-victim"),
        (4, "foo"),
        (6, "k-mine"),
        (7, "k-theirs"),
    ] {
        script.extend(data(id, text));
    }
    script.push(fin());
    let before = f.outside_state();
    let (result, _) = f.export(script).await;
    result.unwrap();
    assert_eq!(
        tree(&f.dest),
        [
            "bar/",
            "bar/new",
            "baz/",
            "baz/victim",
            "foo",
            "keep/",
            "keep/inner/",
            "keep/inner/x",
            "keep/mine",
            "keep/theirs",
            "unrelated",
        ]
    );
    assert_eq!(fs::read(f.dest.join("foo")).unwrap(), b"foo");
    assert_eq!(fs::read(f.dest.join("keep/mine")).unwrap(), b"k-mine");
    for (path, mode) in [
        ("foo", 0o755),
        ("bar/new", 0o755),
        ("keep/mine", 0o640),
        ("baz/victim", 0o600),
    ] {
        assert_eq!(
            fs::metadata(f.dest.join(path)).unwrap().mode() & 0o7777,
            mode,
            "{path}"
        );
    }
    let mut after = f.outside_state();
    let mut before = before;
    for state in [&mut after, &mut before] {
        state.retain(|path, _| !path.starts_with(&f.dest));
    }
    assert_eq!(after, before, "nothing outside changed");
}

/// Something that must be refused is refused before anything is written,
/// and the error names it.
#[tokio::test]
async fn a_refused_entry_late_in_the_listing_writes_nothing() {
    let f = export_fixture();
    fs::write(f.dest.join("existing"), "existing").unwrap();
    symlink(&f.outside, f.dest.join("pre-link")).unwrap();
    for (what, bad) in [
        ("a parent path", file("z/../../outside/victim", 0o644)),
        (
            "through a link already there",
            file("pre-link/victim", 0o644),
        ),
        ("a hard link to a file not sent", hard_link("zz", "missing")),
    ] {
        let mut script = vec![
            dir("a"),
            file("a/file", 0o755),
            file("existing", 0o644),
            bad,
            end_of_listing(),
        ];
        script.extend(data(1, "new"));
        script.extend(data(2, "new"));
        let err = f.refused(what, script).await;
        assert!(
            err.to_string().contains("victim") || err.to_string().contains("missing"),
            "{what}: the error names the path: {err}"
        );
        assert_eq!(
            tree(&f.dest),
            ["existing", &format!("pre-link -> {}", f.outside.display())],
            "{what}: {err}"
        );
        assert_eq!(fs::read(f.dest.join("existing")).unwrap(), b"existing");
    }
}

/// A destination that does not exist yet is created with mode 0700, as
/// BuildKit's client creates it (before the umask).
#[tokio::test]
async fn a_new_destination_is_created_0700() {
    let f = export_fixture();
    let fresh = ExportFixture {
        dest: f.dest.join("new/out"),
        ..export_fixture()
    };
    let mut script = vec![file("a", 0o644), end_of_listing()];
    script.extend(data(0, "a"));
    script.push(fin());
    fresh.export(script).await.0.unwrap();
    assert_eq!(fs::read(fresh.dest.join("a")).unwrap(), b"a");
    let mode = fs::metadata(&fresh.dest).unwrap().mode() & 0o777;
    assert_eq!(mode & !0o700, 0, "mode {mode:o}");
    assert_eq!(mode & 0o700, 0o700, "mode {mode:o}");
}
