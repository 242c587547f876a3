//! Tests of the sender: the exchange, requests, refusals, confinement.

use super::read::{is_escape, open_confined, INLINE_READ_MAX};
use super::*;
use crate::fsutil::validator::OrderValidator;
use crate::fsutil::walk::{walk_context, WalkOptions};
use crate::fsutil::walk::{ContextEntry, EntryKind};
use bytes::Bytes;
use std::collections::HashMap;
use std::fs;
use std::time::Duration;

struct Harness {
    _dir: tempfile::TempDir,
    snapshot: Arc<ContextSnapshot>,
}

fn harness(files: &[(&str, Vec<u8>)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    let snapshot = Arc::new(walk_context(dir.path(), &WalkOptions::default()).unwrap());
    Harness {
        _dir: dir,
        snapshot,
    }
}

/// Starts the sender; returns (to_sender, from_sender, task).
fn start(
    snapshot: Arc<ContextSnapshot>,
    options: SenderOptions,
) -> (
    mpsc::Sender<Packet>,
    mpsc::Receiver<Packet>,
    tokio::task::JoinHandle<Result<SendSummary, SendError>>,
) {
    let (to_sender, from_receiver) = mpsc::channel(16);
    let (to_receiver, from_sender) = mpsc::channel(16);
    let task = tokio::spawn(send(snapshot, to_receiver, from_receiver, options));
    (to_sender, from_sender, task)
}

async fn next(rx: &mut mpsc::Receiver<Packet>) -> Packet {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

/// A fake fsutil receiver: validates the STATs, requests `want(entry)`
/// files as soon as their STAT arrives, collects DATA, then does the
/// FIN handshake. Returns the contents by path and the chunk sizes.
async fn receive(
    to_sender: mpsc::Sender<Packet>,
    mut from_sender: mpsc::Receiver<Packet>,
    want: impl Fn(&ContextEntry) -> bool,
) -> (HashMap<String, Vec<u8>>, Vec<usize>, Vec<ContextEntry>) {
    // Like fsutil's receiver, send from a separate task so reading never
    // waits on writing.
    let (out, mut queued) = mpsc::unbounded_channel::<Packet>();
    let forwarder = tokio::spawn(async move {
        while let Some(packet) = queued.recv().await {
            if to_sender.send(packet).await.is_err() {
                break;
            }
        }
    });
    let mut validator = OrderValidator::default();
    let mut stats = Vec::new();
    let mut pending: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut done: HashMap<String, Vec<u8>> = HashMap::new();
    let mut chunks = Vec::new();
    let mut listing_done = false;
    loop {
        if listing_done && pending.is_empty() {
            break;
        }
        match next(&mut from_sender).await {
            Packet::Stat(Some(entry)) => {
                assert!(!listing_done, "STAT after the terminator");
                validator
                    .push(&entry.path, entry.kind == EntryKind::Dir)
                    .unwrap();
                let id = stats.len() as u32;
                if entry.can_request_data() && want(&entry) {
                    pending.insert(id, Vec::new());
                    out.send(Packet::Req(id)).unwrap();
                }
                stats.push(entry);
            }
            Packet::Stat(None) => listing_done = true,
            Packet::Data { id, data } => {
                let buf = pending
                    .get_mut(&id)
                    .expect("DATA for an id that was not requested");
                if data.is_empty() {
                    let content = pending.remove(&id).unwrap();
                    done.insert(stats[id as usize].path.clone(), content);
                } else {
                    chunks.push(data.len());
                    buf.extend_from_slice(&data);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out.send(Packet::Fin).unwrap();
    assert_eq!(next(&mut from_sender).await, Packet::Fin);
    drop(out);
    forwarder.await.unwrap();
    (done, chunks, stats)
}

fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8)
        .collect()
}

#[tokio::test]
async fn sends_stats_then_requested_files() {
    let big = pseudo_random(1_000_000, 3);
    let h = harness(&[
        ("a.txt", b"alpha".to_vec()),
        ("dir/b.bin", big.clone()),
        ("dir/empty", Vec::new()),
        ("dir/sub/c", b"gamma".to_vec()),
        ("skip.me", b"not requested".to_vec()),
    ]);
    let options = SenderOptions {
        chunk_size: 64 * 1024,
        ..SenderOptions::default()
    };
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
    let (files, chunks, stats) = receive(tx, rx, |e| e.path != "skip.me").await;
    let summary = task.await.unwrap().unwrap();

    assert_eq!(stats, h.snapshot.entries);
    assert_eq!(files.len(), 4);
    assert_eq!(files["a.txt"], b"alpha");
    assert_eq!(files["dir/b.bin"], big);
    assert_eq!(files["dir/empty"], b"");
    assert_eq!(files["dir/sub/c"], b"gamma");
    assert!(chunks.iter().all(|&n| n <= 64 * 1024));
    assert_eq!(
        summary,
        SendSummary {
            stats: h.snapshot.len(),
            files: 4,
            bytes: 1_000_010
        }
    );
}

#[tokio::test]
async fn many_files_in_parallel() {
    let contents: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("d{}/f{i:03}", i % 7),
                pseudo_random(i * 997 % 70_000, i as u8),
            )
        })
        .collect();
    let files: Vec<(&str, Vec<u8>)> = contents
        .iter()
        .map(|(p, c)| (p.as_str(), c.clone()))
        .collect();
    let h = harness(&files);
    let options = SenderOptions {
        chunk_size: MIN_CHUNK_SIZE,
        max_parallel_reads: 5,
        outbound_capacity: 3,
        ..SenderOptions::default()
    };
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
    let (got, _, _) = receive(tx, rx, |_| true).await;
    let summary = task.await.unwrap().unwrap();
    assert_eq!(got.len(), 300);
    for (path, content) in &contents {
        assert_eq!(&got[path], content, "{path}");
    }
    assert_eq!(summary.files, 300);
}

#[tokio::test]
async fn nothing_requested() {
    let h = harness(&[("a", b"x".to_vec())]);
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    let (got, _, stats) = receive(tx, rx, |_| false).await;
    assert!(got.is_empty());
    assert_eq!(stats.len(), 1);
    assert_eq!(
        task.await.unwrap().unwrap(),
        SendSummary {
            stats: 1,
            files: 0,
            bytes: 0
        }
    );
}

#[tokio::test]
async fn empty_context() {
    let h = harness(&[]);
    let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    assert_eq!(next(&mut rx).await, Packet::Stat(None));
    tx.send(Packet::Fin).await.unwrap();
    assert_eq!(next(&mut rx).await, Packet::Fin);
    assert_eq!(task.await.unwrap().unwrap().stats, 0);
}

/// A sink that passes packets on and records the size of every hand-off.
struct CountingSink {
    inner: mpsc::Sender<Packet>,
    hand_offs: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl PacketSink for CountingSink {
    async fn send(&mut self, packet: Packet) -> Result<(), TransportError> {
        self.hand_offs.lock().unwrap().push(1);
        PacketSink::send(&mut self.inner, packet).await
    }

    async fn send_all(&mut self, packets: Vec<Packet>) -> Result<(), TransportError> {
        self.hand_offs.lock().unwrap().push(packets.len());
        for packet in packets {
            PacketSink::send(&mut self.inner, packet).await?;
        }
        Ok(())
    }
}

/// The listing reaches the transport in batches of STATs (the empty STAT
/// with the last one), not one hand-off per entry, and in walk order.
#[tokio::test]
async fn stats_are_handed_to_the_transport_in_batches() {
    let files: Vec<(String, Vec<u8>)> = (0..600)
        .map(|i| (format!("d{}/f{i:03}", i % 3), vec![b'x']))
        .collect();
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let h = harness(&files);
    let entries = h.snapshot.entries.len();
    assert_eq!(entries, 603);
    let (to_sender, from_receiver) = mpsc::channel(16);
    let (to_receiver, from_sender) = mpsc::channel(16);
    let hand_offs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = CountingSink {
        inner: to_receiver,
        hand_offs: Arc::clone(&hand_offs),
    };
    let task = tokio::spawn(send(
        Arc::clone(&h.snapshot),
        sink,
        from_receiver,
        SenderOptions::default(),
    ));
    let (_, _, stats) = receive(to_sender, from_sender, |_| false).await;
    task.await.unwrap().unwrap();
    let paths: Vec<&str> = stats.iter().map(|e| e.path.as_str()).collect();
    let walked: Vec<&str> = h.snapshot.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, walked);
    // 603 STATs + the empty one in batches of 256, then FIN alone.
    assert_eq!(*hand_offs.lock().unwrap(), [256, 256, 92, 1]);
}

/// Reads packets until `pred` matches one (skipping STATs etc.).
async fn until(rx: &mut mpsc::Receiver<Packet>, pred: impl Fn(&Packet) -> bool) -> Packet {
    loop {
        let p = next(rx).await;
        if pred(&p) {
            return p;
        }
    }
}

#[tokio::test]
async fn bad_requests_are_errors_reported_to_the_receiver() {
    let h = harness(&[("dir/f", b"x".to_vec())]);
    // ID 0 is the directory, ID 1 the file, ID 7 does not exist.
    for (req, check) in [
        (
            vec![7],
            (|e: &SendError| matches!(e, SendError::UnknownId(7))) as fn(&SendError) -> bool,
        ),
        (vec![0], |e| {
            matches!(e, SendError::NotRegular { id: 0, .. })
        }),
        (vec![1, 1], |e| {
            matches!(e, SendError::DuplicateRequest { id: 1, .. })
        }),
    ] {
        let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        for id in req {
            tx.send(Packet::Req(id)).await.unwrap();
        }
        let err = task.await.unwrap().unwrap_err();
        assert!(check(&err), "{err}");
        let reported = until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
        assert_eq!(reported, Packet::Err(err.to_string()));
    }
}

#[tokio::test]
async fn receiver_error_aborts() {
    let h = harness(&[("f", b"x".to_vec())]);
    let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    tx.send(Packet::Err("disk full".into())).await.unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, SendError::Receiver(m) if m == "disk full"),
        "{err}"
    );
    assert_eq!(err.to_string(), "error from receiver: disk full");
}

#[tokio::test]
async fn receiver_closing_without_fin_is_an_error() {
    let h = harness(&[("f", b"x".to_vec())]);
    let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    drop(tx);
    assert!(matches!(
        task.await.unwrap(),
        Err(SendError::ReceiverClosed)
    ));
}

#[tokio::test]
async fn unknown_packet_types_are_ignored() {
    let h = harness(&[("f", b"x".to_vec())]);
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    tx.send(Packet::Other(packet_type::HASH_REQ)).await.unwrap();
    let (got, _, _) = receive(tx, rx, |_| true).await;
    assert_eq!(got["f"], b"x");
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn vanished_files() {
    let h = harness(&[("gone", b"data".to_vec()), ("kept", b"k".to_vec())]);
    fs::remove_file(h.snapshot.root.join("gone")).unwrap();
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    let (got, _, _) = receive(tx, rx, |_| true).await;
    assert_eq!(got["gone"], b"");
    assert_eq!(got["kept"], b"k");
    task.await.unwrap().unwrap();

    let options = SenderOptions {
        missing_files: MissingFilePolicy::Fail,
        ..SenderOptions::default()
    };
    let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), options);
    tx.send(Packet::Req(0)).await.unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, SendError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
}

#[tokio::test]
async fn files_changed_after_the_walk_are_sent_as_they_are_now() {
    // Small files are read in one go when they still have the listed
    // size; grown or shrunk ones are read to their end.
    let h = harness(&[
        ("grown", b"0123".to_vec()),
        ("shrunk", b"0123456789".to_vec()),
        ("same", b"abc".to_vec()),
    ]);
    let root = h.snapshot.root.clone();
    let grown = pseudo_random(300_000, 9);
    fs::write(root.join("grown"), &grown).unwrap();
    fs::write(root.join("shrunk"), b"01").unwrap();
    let options = SenderOptions {
        chunk_size: 64 * 1024,
        ..SenderOptions::default()
    };
    let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
    let (got, chunks, _) = receive(tx, rx, |_| true).await;
    assert_eq!(got["grown"], grown);
    assert_eq!(got["shrunk"], b"01");
    assert_eq!(got["same"], b"abc");
    assert!(chunks.iter().all(|&n| n <= 64 * 1024), "{chunks:?}");
    assert_eq!(task.await.unwrap().unwrap().bytes, 300_000 + 2 + 3);
}

#[test]
fn small_files_are_read_inline() {
    let root = Arc::new(open_root(std::path::Path::new("/")).unwrap());
    let job = |kind, size_hint| ReadJob {
        id: 0,
        path: PathBuf::new(),
        root: Arc::clone(&root),
        relative: String::new(),
        identity: None,
        kind,
        size_hint,
        chunk_size: 256 * 1024,
        policy: MissingFilePolicy::SendEmpty,
    };
    assert!(job(EntryKind::File, 0).is_small());
    assert!(job(EntryKind::File, INLINE_READ_MAX).is_small());
    assert!(!job(EntryKind::File, INLINE_READ_MAX + 1).is_small());
    assert!(!job(EntryKind::File, -1).is_small());
    assert!(!job(EntryKind::Socket, 0).is_small());
}

#[tokio::test]
async fn replaced_by_a_directory_is_an_error() {
    let h = harness(&[("x", b"data".to_vec())]);
    let root = h.snapshot.root.clone();
    fs::remove_file(root.join("x")).unwrap();
    fs::create_dir(root.join("x")).unwrap();
    let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
    tx.send(Packet::Req(0)).await.unwrap();
    assert!(matches!(task.await.unwrap(), Err(SendError::Read { .. })));
}

/// Requests `id` and returns the error the sender fails with.
async fn request_error(snapshot: Arc<ContextSnapshot>, id: u32) -> SendError {
    let (tx, mut rx, task) = start(snapshot, SenderOptions::default());
    tx.send(Packet::Req(id)).await.unwrap();
    let err = task.await.unwrap().unwrap_err();
    let reported = until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
    assert_eq!(reported, Packet::Err(err.to_string()));
    err
}

#[tokio::test]
async fn a_file_swapped_for_a_symlink_after_the_walk_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"outside").unwrap();
    let h = harness(&[("f", b"inside".to_vec())]);
    let root = h.snapshot.root.clone();
    fs::remove_file(root.join("f")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root.join("f")).unwrap();
    let err = request_error(Arc::clone(&h.snapshot), 0).await;
    assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
    assert!(!err.to_string().contains("outside"), "{err}");
}

#[tokio::test]
async fn a_directory_swapped_for_a_symlink_after_the_walk_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("f"), b"outside").unwrap();
    let h = harness(&[("d/f", b"inside".to_vec())]);
    let root = h.snapshot.root.clone();
    fs::rename(root.join("d"), root.join("moved")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("d")).unwrap();
    // ID 0 is the directory, ID 1 the file below it.
    let err = request_error(Arc::clone(&h.snapshot), 1).await;
    assert!(matches!(&err, SendError::Refused { id: 1, .. }), "{err}");
}

#[tokio::test]
async fn a_file_replaced_by_another_inode_is_refused() {
    let h = harness(&[("f", b"walked".to_vec()), ("other", b"other".to_vec())]);
    let root = h.snapshot.root.clone();
    fs::rename(root.join("other"), root.join("f")).unwrap();
    let err = request_error(Arc::clone(&h.snapshot), 0).await;
    assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
}

#[tokio::test]
async fn entries_without_a_walked_identity_are_refused() {
    let h = harness(&[("f", b"x".to_vec())]);
    let mut snapshot = (*h.snapshot).clone();
    snapshot.identities.clear();
    let err = request_error(Arc::new(snapshot), 0).await;
    assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
}

#[test]
fn confined_open_refuses_escapes() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("ctx")).unwrap();
    fs::write(dir.path().join("secret"), b"s").unwrap();
    fs::write(dir.path().join("ctx/ok"), b"ok").unwrap();
    std::os::unix::fs::symlink("../secret", dir.path().join("ctx/link")).unwrap();
    let root = open_root(&dir.path().join("ctx")).unwrap();
    assert!(open_confined(&root, "ok").is_ok());
    for bad in ["../secret", "link", "/etc/passwd"] {
        let err = open_confined(&root, bad).unwrap_err();
        assert!(is_escape(&err), "{bad}: {err}");
    }
}

#[tokio::test]
async fn sockets_are_sent_empty() {
    let dir = tempfile::tempdir().unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
    let snapshot = Arc::new(walk_context(dir.path(), &WalkOptions::default()).unwrap());
    assert_eq!(snapshot.entries[0].kind, EntryKind::Socket);
    let (tx, rx, task) = start(snapshot, SenderOptions::default());
    let (got, _, _) = receive(tx, rx, |_| true).await;
    assert_eq!(got["s"], b"");
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn transport_failure_is_reported() {
    let h = harness(&[("f", b"x".to_vec())]);
    let (to_sender, from_receiver) = mpsc::channel(4);
    let (to_receiver, from_sender) = mpsc::channel(1);
    drop(from_sender);
    let err = send(
        Arc::clone(&h.snapshot),
        to_receiver,
        from_receiver,
        SenderOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SendError::Transport(_)), "{err}");
    drop(to_sender);
}

#[test]
fn packet_type_codes() {
    assert_eq!(Packet::Stat(None).type_code(), 0);
    assert_eq!(Packet::Req(1).type_code(), 1);
    assert_eq!(
        Packet::Data {
            id: 1,
            data: Bytes::new()
        }
        .type_code(),
        2
    );
    assert_eq!(Packet::Fin.type_code(), 3);
    assert_eq!(Packet::Err(String::new()).type_code(), 4);
    assert_eq!(Packet::Other(6).type_code(), 6);
}
