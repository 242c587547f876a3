//! FileSync / FileSend diffcopy packet handling with arbitrary packet sequences, through the
//! same gRPC services a session serves (frames decoded by tonic, as from the daemon).
//!
//! * Sender (we send the build context, the daemon requests files): arbitrary filters in the
//!   request metadata and arbitrary REQ/DATA/FIN/ERR/STAT/unknown packets, plus malformed frames.
//!   Invariants: nothing panics, the call ends; the listing is in the order the daemon requires;
//!   DATA only for files that were requested; a call that ends without error ends with FIN and
//!   every requested file's DATA equals the file.
//! * Receiver (`--output type=local`: the daemon sends, we write a directory): arbitrary STAT
//!   (directories, files, symlinks, hard links, special files), DATA, FIN, ERR packets.
//!   Invariants: nothing panics, the call ends, nothing is written outside the destination.
//!   Paths and link targets come from a small alphabet and the destination sits 40 directories
//!   deep in a private temporary directory, so even an escaping write stays in the sandbox.
//!   Inputs starting with `R` are a readable receiver script (see `receiver_script`).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use cicd_agents_buildkit::fsutil::go_mode;
use cicd_agents_buildkit::fsutil::DiffCopyRequest;
use cicd_agents_buildkit::fsutil::OrderValidator;
use cicd_agents_buildkit::fuzzing;
use cicd_agents_buildkit::session::context_sync::LocalDirs;
use cicd_agents_proto::fsutil::types::packet::PacketType;
use cicd_agents_proto::fsutil::types::{Packet as WirePacket, Stat};
use cicd_agents_proto::moby::filesync::v1::file_sync_server::FileSync;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Sender {
        include: Vec<String>,
        exclude: Vec<String>,
        follow: Vec<String>,
        packets: Vec<ToSender>,
        garbage: Vec<u8>,
    },
    Receiver {
        packets: Vec<ToReceiver>,
        garbage: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum ToSender {
    Req(u8),
    ReqAny(u32),
    Data { id: u32, data: Vec<u8> },
    Stat(bool),
    Fin,
    Err(String),
    Other(i32),
}

#[derive(Arbitrary, Debug)]
enum ToReceiver {
    Stat {
        path: Vec<u8>,
        absolute: bool,
        kind: u8,
        perm: u16,
        link: Vec<u8>,
        mod_time: i64,
    },
    EndOfListing,
    Data {
        id: u8,
        data: Vec<u8>,
    },
    Fin,
    Err(String),
    Other(i32),
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the fuzz target")
    })
}

fn packet(kind: PacketType) -> WirePacket {
    WirePacket {
        r#type: kind as i32,
        ..WirePacket::default()
    }
}

fn body(packets: &[WirePacket], garbage: &[u8]) -> Bytes {
    let mut body = fuzzing::grpc_frames(packets).to_vec();
    body.extend_from_slice(garbage);
    Bytes::from(body)
}

// ---------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------

/// A fixed build context, created once per process.
fn context() -> &'static (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    static CONTEXT: OnceLock<(tempfile::TempDir, BTreeMap<String, Vec<u8>>)> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut files = BTreeMap::new();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (path, content) in [
            ("Dockerfile", b"FROM scratch\nCOPY . /\n".to_vec()),
            (".dockerignore", b"*.log\n!keep.log\n".to_vec()),
            ("a/b.txt", b"b".to_vec()),
            ("a/empty", Vec::new()),
            ("a/deep/x.log", b"log".to_vec()),
            ("keep.log", b"keep".to_vec()),
            ("big.bin", big),
        ] {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&full, &content).expect("write");
            files.insert(path.to_string(), content);
        }
        std::fs::create_dir(dir.path().join("emptydir")).expect("mkdir");
        std::os::unix::fs::symlink("a", dir.path().join("link")).expect("symlink");
        std::fs::hard_link(dir.path().join("keep.log"), dir.path().join("a/hard.log"))
            .expect("hard link");
        files.insert("a/hard.log".to_string(), b"keep".to_vec());
        (dir, files)
    })
}

async fn run_sender(
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
    packets: Vec<ToSender>,
    garbage: Vec<u8>,
) {
    let (dir, files) = context();
    let request = DiffCopyRequest {
        dir_name: "context".to_string(),
        include_patterns: include,
        exclude_patterns: exclude,
        follow_paths: follow,
    };
    let pairs = request.to_metadata();
    let decoded =
        DiffCopyRequest::from_metadata(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(decoded, request, "request metadata does not round-trip");

    let mut wire = Vec::new();
    let mut requested = BTreeSet::new();
    let mut fin = false;
    for p in packets {
        wire.push(match p {
            ToSender::Req(id) => {
                requested.insert(u32::from(id % 16));
                WirePacket {
                    id: u32::from(id % 16),
                    ..packet(PacketType::PacketReq)
                }
            }
            ToSender::ReqAny(id) => {
                requested.insert(id);
                WirePacket {
                    id,
                    ..packet(PacketType::PacketReq)
                }
            }
            ToSender::Data { id, data } => WirePacket {
                id,
                data: data.into(),
                ..packet(PacketType::PacketData)
            },
            ToSender::Stat(empty) => WirePacket {
                stat: (!empty).then(|| Stat {
                    path: "x".into(),
                    ..Stat::default()
                }),
                ..packet(PacketType::PacketStat)
            },
            ToSender::Fin => {
                fin = true;
                packet(PacketType::PacketFin)
            }
            ToSender::Err(message) => WirePacket {
                data: message.into_bytes().into(),
                ..packet(PacketType::PacketErr)
            },
            ToSender::Other(code) => WirePacket {
                r#type: code,
                ..WirePacket::default()
            },
        });
    }

    let mut dirs = LocalDirs::default();
    dirs.insert("context", dir.path());
    let mut call = tonic::Request::new(fuzzing::streaming_request::<WirePacket>(body(
        &wire, &garbage,
    )));
    for (key, value) in &pairs {
        let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) else {
            return;
        };
        call.metadata_mut().append(key, value);
    }
    let mut stream = match dirs.diff_copy(call).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("the call for a known directory was refused: {status:?}"),
    };
    let mut sent = Vec::new();
    let mut failed = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(packet) => sent.push(packet),
            Err(status) => {
                failed = Some(status);
                break;
            }
        }
    }

    let mut listing: Vec<Stat> = Vec::new();
    let mut order = OrderValidator::default();
    let mut listing_done = false;
    let mut contents: BTreeMap<u32, (Vec<u8>, bool)> = BTreeMap::new();
    for p in &sent {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => {
                assert!(!listing_done, "STAT after the end of the listing");
                match &p.stat {
                    Some(stat) => {
                        if let Err(err) = order.push(&stat.path, stat.mode & go_mode::DIR != 0) {
                            panic!("the listing is out of order: {err}");
                        }
                        listing.push(stat.clone());
                    }
                    None => listing_done = true,
                }
            }
            Ok(PacketType::PacketData) => {
                assert!(
                    requested.contains(&p.id),
                    "DATA for {} which was not requested",
                    p.id
                );
                let entry = listing.get(p.id as usize);
                assert!(entry.is_some(), "DATA for {} before its STAT", p.id);
                let (content, ended) = contents.entry(p.id).or_default();
                assert!(!*ended, "DATA for {} after its end", p.id);
                if p.data.is_empty() {
                    *ended = true;
                } else {
                    content.extend_from_slice(&p.data);
                }
            }
            Ok(PacketType::PacketFin) | Ok(PacketType::PacketErr) => {}
            other => panic!("the sender sent a packet of type {other:?}"),
        }
    }
    if failed.is_none()
        && sent
            .last()
            .is_some_and(|p| p.r#type == PacketType::PacketFin as i32)
    {
        assert!(fin, "FIN without a FIN from the receiver");
        for (id, (content, ended)) in &contents {
            assert!(*ended, "file {id} was not finished");
            let path = &listing[*id as usize].path;
            assert_eq!(Some(content), files.get(path), "content of {path}");
        }
    }
}

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

const DEPTH: usize = 40;
const MAX_SYMLINKS: usize = 8;

fn component(b: u8) -> &'static str {
    ["a", "b", "c", "..", ".", "", "d"][usize::from(b) % 7]
}

fn rel_path(parts: &[u8]) -> String {
    parts
        .iter()
        .take(5)
        .map(|&b| component(b))
        .collect::<Vec<_>>()
        .join("/")
}

/// A relative link target with at most two `..`.
fn link_target(parts: &[u8]) -> String {
    let mut ups = 0;
    let mut out = Vec::new();
    for &b in parts.iter().take(5) {
        let part = ["a", "b", "..", ".", "c"][usize::from(b) % 5];
        if part == ".." {
            ups += 1;
            if ups > 2 {
                continue;
            }
        }
        out.push(part);
    }
    if out.is_empty() {
        out.push("a");
    }
    out.join("/")
}

fn sandbox_base() -> &'static tempfile::TempDir {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
}

/// Every path under `root` that is not `dest`, inside `dest`, or a directory on the way to it.
fn outside(root: &Path, dest: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.starts_with(dest) {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && dest.starts_with(&path) {
            outside(&path, dest, found);
        } else {
            found.push(path);
        }
    }
}

async fn run_receiver(packets: Vec<ToReceiver>, garbage: Vec<u8>) {
    let mut wire = Vec::new();
    let mut symlinks = 0;
    for p in packets.into_iter().take(64) {
        wire.push(match p {
            ToReceiver::Stat {
                path,
                absolute,
                kind,
                perm,
                link,
                mod_time,
            } => {
                let mut path = rel_path(&path);
                if absolute {
                    path.insert(0, '/');
                }
                let perm = u32::from(perm) & 0o7777 | 0o700;
                let (mode, linkname) = match kind % 6 {
                    0 => (go_mode::DIR | perm, String::new()),
                    1 | 2 => (perm, String::new()),
                    3 if symlinks < MAX_SYMLINKS => {
                        symlinks += 1;
                        (go_mode::SYMLINK | 0o777, link_target(&link))
                    }
                    4 => (perm, rel_path(&link)),
                    _ => (go_mode::NAMED_PIPE | perm, String::new()),
                };
                WirePacket {
                    stat: Some(Stat {
                        path,
                        mode,
                        linkname,
                        mod_time,
                        ..Stat::default()
                    }),
                    ..packet(PacketType::PacketStat)
                }
            }
            ToReceiver::EndOfListing => packet(PacketType::PacketStat),
            ToReceiver::Data { id, data } => WirePacket {
                id: u32::from(id % 32),
                data: data.into(),
                ..packet(PacketType::PacketData)
            },
            ToReceiver::Fin => packet(PacketType::PacketFin),
            ToReceiver::Err(message) => WirePacket {
                data: message.into_bytes().into(),
                ..packet(PacketType::PacketErr)
            },
            ToReceiver::Other(code) => WirePacket {
                r#type: code,
                ..WirePacket::default()
            },
        });
    }
    run_receiver_wire(wire, garbage).await;
}

async fn run_receiver_wire(wire: Vec<WirePacket>, garbage: Vec<u8>) {
    let sandbox = tempfile::tempdir_in(sandbox_base().path()).expect("a sandbox");
    let mut dest = sandbox.path().to_path_buf();
    for _ in 0..DEPTH {
        dest.push("d");
    }
    dest.push("dest");
    std::fs::create_dir_all(&dest).expect("the destination");
    let (_sent, _status) = fuzzing::receive_local_export(dest.clone(), body(&wire, &garbage)).await;

    let mut escaped = Vec::new();
    outside(sandbox.path(), &dest, &mut escaped);
    assert!(
        escaped.is_empty(),
        "written outside the export directory: {escaped:?}"
    );
}

/// A readable receiver script (inputs starting with `R`), one packet a line:
/// `dir PATH`, `file PATH`, `link PATH TARGET`, `hard PATH TARGET`, `pipe PATH`, `end` (the
/// empty STAT), `data ID TEXT`, `eof ID`, `fin`, `err TEXT`. Symlink targets are kept relative,
/// with at most two `..` each and at most eight symlinks, like the structured input.
fn receiver_script(text: &str) -> Vec<WirePacket> {
    let mut wire = Vec::new();
    let mut symlinks = 0;
    for line in text.lines().take(64) {
        let mut words = line.splitn(3, ' ');
        let command = words.next().unwrap_or_default();
        let first = words
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        let rest = words
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        let stat = |mode: u32, path: &str, linkname: &str| WirePacket {
            stat: Some(Stat {
                path: path.to_string(),
                mode,
                linkname: linkname.to_string(),
                ..Stat::default()
            }),
            ..packet(PacketType::PacketStat)
        };
        wire.push(match command {
            "dir" => stat(go_mode::DIR | 0o755, &first, ""),
            "file" => stat(0o644, &first, ""),
            "pipe" => stat(go_mode::NAMED_PIPE | 0o644, &first, ""),
            "hard" => stat(0o644, &first, &rest),
            "link" => {
                let ups = rest.split('/').filter(|part| *part == "..").count();
                if rest.starts_with('/') || ups > 2 || symlinks >= MAX_SYMLINKS {
                    continue;
                }
                symlinks += 1;
                stat(go_mode::SYMLINK | 0o777, &first, &rest)
            }
            "end" => packet(PacketType::PacketStat),
            "data" | "eof" => WirePacket {
                id: first.parse().unwrap_or(0),
                data: if command == "data" {
                    rest.clone().into_bytes().into()
                } else {
                    Bytes::new()
                },
                ..packet(PacketType::PacketData)
            },
            "fin" => packet(PacketType::PacketFin),
            "err" => WirePacket {
                data: first.into_bytes().into(),
                ..packet(PacketType::PacketErr)
            },
            _ => continue,
        });
    }
    wire
}

fuzz_target!(|data: &[u8]| {
    if let Some(script) = data.strip_prefix(b"R") {
        let wire = receiver_script(&String::from_utf8_lossy(script));
        runtime().block_on(run_receiver_wire(wire, Vec::new()));
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
        return;
    };
    runtime().block_on(async move {
        match input {
            Input::Sender {
                include,
                exclude,
                follow,
                packets,
                garbage,
            } => run_sender(include, exclude, follow, packets, garbage).await,
            Input::Receiver { packets, garbage } => run_receiver(packets, garbage).await,
        }
    });
});
