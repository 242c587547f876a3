//! Context walk, pattern matching and the diffcopy sender.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cicd_agents_buildkit::fsutil::patterns::FilterDecision;
use cicd_agents_buildkit::fsutil::{
    send, walk_context, ContextSnapshot, Packet, PathFilter, PatternMatcher, SenderOptions,
    WalkOptions,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::sync::mpsc;

/// 5 × 10 × 100 = 5,000 files of 1 KiB, nested like the side-by-side case.
fn small_files(dir: &Path) {
    let body = vec![b'x'; 1024];
    for t in 0..5 {
        for s in 0..10 {
            let sub = dir.join(format!("d{t:02}/s{s:02}"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..100 {
                std::fs::write(sub.join(format!("f{f:04}.txt")), &body).unwrap();
            }
        }
    }
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /ctx\n").unwrap();
}

const EXCLUDES: &[&str] = &[
    "**/*.log",
    "node_modules",
    "d01/s0*",
    "!d01/s05",
    "target/**",
    ".git",
];

fn walk(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    small_files(dir.path());
    let mut group = c.benchmark_group("walk_context");
    group.throughput(Throughput::Elements(5_000));
    group.bench_function("5000 files", |b| {
        b.iter(|| walk_context(dir.path(), &WalkOptions::default()).unwrap())
    });
    let excluded = WalkOptions {
        exclude_patterns: EXCLUDES.iter().map(|s| s.to_string()).collect(),
        ..WalkOptions::default()
    };
    group.bench_function("5000 files, excludes", |b| {
        b.iter(|| walk_context(dir.path(), &excluded).unwrap())
    });
    let single = WalkOptions {
        threads: 1,
        ..WalkOptions::default()
    };
    group.bench_function("5000 files, 1 thread", |b| {
        b.iter(|| walk_context(dir.path(), &single).unwrap())
    });
    group.finish();
}

fn patterns(c: &mut Criterion) {
    let paths: Vec<String> = (0..5_000)
        .map(|i| {
            format!(
                "d{:02}/s{:02}/f{:04}.txt",
                i / 1000,
                (i / 100) % 10,
                i % 100
            )
        })
        .collect();
    let matcher = PatternMatcher::new(EXCLUDES).unwrap();
    let filter = PathFilter::new(&[] as &[&str], EXCLUDES).unwrap();
    let mut group = c.benchmark_group("patterns");
    group.throughput(Throughput::Elements(paths.len() as u64));
    group.bench_function("matches_or_parent_matches", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter(|p| matcher.matches_or_parent_matches(p))
                .count()
        })
    });
    group.bench_function("PathFilter::evaluate", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter(|p| filter.evaluate(p, false, &Default::default()) != FilterDecision::Prune)
                .count()
        })
    });
    group.bench_function("PatternMatcher::new", |b| {
        b.iter(|| PatternMatcher::new(EXCLUDES).unwrap())
    });
    group.finish();
}

/// A receiver like fsutil's: requests every file as its STAT arrives, then
/// does the FIN handshake. Returns the content bytes received.
async fn receive_all(snapshot: Arc<ContextSnapshot>, options: SenderOptions) -> u64 {
    let (to_sender, from_receiver) = mpsc::channel(snapshot.len() + 16);
    let (to_receiver, mut from_sender) = mpsc::channel(64);
    let task = tokio::spawn(send(snapshot.clone(), to_receiver, from_receiver, options));
    let mut id = 0u32;
    let mut pending = 0usize;
    let mut listing_done = false;
    let mut received = 0u64;
    while !(listing_done && pending == 0) {
        match from_sender.recv().await.unwrap() {
            Packet::Stat(Some(entry)) => {
                if entry.can_request_data() {
                    to_sender.send(Packet::Req(id)).await.unwrap();
                    pending += 1;
                }
                id += 1;
            }
            Packet::Stat(None) => listing_done = true,
            Packet::Data { data, .. } if data.is_empty() => pending -= 1,
            Packet::Data { data, .. } => received += data.len() as u64,
            other => panic!("unexpected {other:?}"),
        }
    }
    to_sender.send(Packet::Fin).await.unwrap();
    assert_eq!(from_sender.recv().await, Some(Packet::Fin));
    task.await.unwrap().unwrap();
    received
}

fn sender(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let small = tempfile::tempdir().unwrap();
    small_files(small.path());
    let small_snapshot = Arc::new(walk_context(small.path(), &WalkOptions::default()).unwrap());
    let big = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(big.path().join("big.bin"), &content).unwrap();
    let big_snapshot = Arc::new(walk_context(big.path(), &WalkOptions::default()).unwrap());

    let mut group = c.benchmark_group("diffcopy_send");
    group.throughput(Throughput::Bytes(small_snapshot.total_file_bytes()));
    group.bench_function("5000 files of 1 KiB", |b| {
        b.iter(|| {
            runtime.block_on(receive_all(
                small_snapshot.clone(),
                SenderOptions::default(),
            ))
        })
    });
    group.throughput(Throughput::Bytes(big_snapshot.total_file_bytes()));
    for chunk in [32 * 1024, 256 * 1024, 1024 * 1024] {
        let options = SenderOptions {
            chunk_size: chunk,
            ..SenderOptions::default()
        };
        group.bench_with_input(
            BenchmarkId::new("64 MiB file, chunk", chunk / 1024),
            &options,
            |b, options| {
                b.iter(|| runtime.block_on(receive_all(big_snapshot.clone(), options.clone())))
            },
        );
    }
    group.finish();

    // The STAT listing alone: what a no-change rebuild costs the sender.
    let mut group = c.benchmark_group("diffcopy_listing");
    group.throughput(Throughput::Elements(small_snapshot.len() as u64));
    group.bench_function("5000 STATs, nothing requested", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (to_sender, from_receiver) = mpsc::channel(4);
                let (to_receiver, mut from_sender) = mpsc::channel(64);
                let task = tokio::spawn(send(
                    small_snapshot.clone(),
                    to_receiver,
                    from_receiver,
                    SenderOptions::default(),
                ));
                while let Some(packet) = from_sender.recv().await {
                    if packet == Packet::Stat(None) {
                        break;
                    }
                }
                to_sender.send(Packet::Fin).await.unwrap();
                assert_eq!(from_sender.recv().await, Some(Packet::Fin));
                task.await.unwrap().unwrap()
            })
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = walk, patterns, sender }
criterion_main!(benches);
