//! Progress: decoding `StatusResponse` messages and rendering them with the
//! plain renderer, for a step printing 100,000 lines.

use std::time::Duration;

use cicd_agents_buildkit::progress::{PlainRenderer, ProgressSink, StatusUpdate};
use cicd_agents_proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prost::Message;

const LINES: usize = 100_000;
const DIGEST: &str = "sha256:6d7f8a5c0b8e4c1f2a9d3e7b5c4a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a";

fn ts(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_700_000_000 + nanos / 1_000_000_000,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

/// The encoded messages of a `RUN seq 1 100000` step: a vertex start, the
/// log in chunks of `lines_per_chunk` lines (`chunks_per_message` chunks per
/// message), then the vertex completion.
fn encoded_stream(lines_per_chunk: usize, chunks_per_message: usize) -> Vec<Vec<u8>> {
    let vertex = |completed: bool| Vertex {
        digest: DIGEST.into(),
        name: "[2/2] RUN seq 1 100000".into(),
        started: Some(ts(0)),
        completed: completed.then(|| ts(3_000_000_000)),
        ..Vertex::default()
    };
    let mut messages = vec![StatusResponse {
        vertexes: vec![vertex(false)],
        ..StatusResponse::default()
    }
    .encode_to_vec()];
    let mut line = 1usize;
    let mut logs = Vec::new();
    while line <= LINES {
        let mut msg = Vec::new();
        for _ in 0..lines_per_chunk {
            if line > LINES {
                break;
            }
            msg.extend_from_slice(format!("{line}\n").as_bytes());
            line += 1;
        }
        logs.push(VertexLog {
            vertex: DIGEST.into(),
            timestamp: Some(ts(line as i64 * 20_000)),
            stream: 1,
            msg,
        });
        if logs.len() == chunks_per_message {
            messages.push(
                StatusResponse {
                    logs: std::mem::take(&mut logs),
                    ..StatusResponse::default()
                }
                .encode_to_vec(),
            );
        }
    }
    if !logs.is_empty() {
        messages.push(
            StatusResponse {
                logs,
                ..StatusResponse::default()
            }
            .encode_to_vec(),
        );
    }
    messages.push(
        StatusResponse {
            vertexes: vec![vertex(true)],
            ..StatusResponse::default()
        }
        .encode_to_vec(),
    );
    messages
}

fn render(messages: &[Vec<u8>]) -> usize {
    let mut out = Vec::with_capacity(2 << 20);
    {
        let mut renderer = PlainRenderer::new(&mut out);
        for message in messages {
            let response = StatusResponse::decode(message.as_slice()).unwrap();
            renderer.update(&StatusUpdate::from(response));
        }
        renderer.finish();
    }
    out.len()
}

fn progress(c: &mut Criterion) {
    let mut group = c.benchmark_group("progress_plain");
    group.throughput(Throughput::Elements(LINES as u64));
    // One line per log chunk (a line-buffered program), and ~4 KiB chunks
    // (a program writing to a pipe with full buffering).
    for (name, lines_per_chunk, chunks_per_message) in
        [("1 line/chunk", 1, 64), ("700 lines/chunk", 700, 1)]
    {
        let messages = encoded_stream(lines_per_chunk, chunks_per_message);
        group.bench_with_input(
            BenchmarkId::new("decode+render 100k lines", name),
            &messages,
            |b, messages| b.iter(|| render(messages)),
        );
    }
    let messages = encoded_stream(1, 64);
    group.bench_function("decode only, 1 line/chunk", |b| {
        b.iter(|| {
            messages
                .iter()
                .map(|m| {
                    StatusUpdate::from(StatusResponse::decode(m.as_slice()).unwrap())
                        .logs
                        .len()
                })
                .sum::<usize>()
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

criterion_group! { name = benches; config = config(); targets = progress }
criterion_main!(benches);
