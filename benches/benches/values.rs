//! The format-preserving `values.yaml` edit: parse, set an image tag (with
//! the re-parse verification), render.

use std::time::Duration;

use cicd_agents_pipeline::values::ValuesDocument;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A chart's values with `services` image blocks, comments and anchors.
fn values_yaml(services: usize) -> String {
    let mut text = String::from("# Default values.\nglobal:\n  registry: &reg registry.example.com\n  pullPolicy: IfNotPresent\n\n");
    for i in 0..services {
        text.push_str(&format!(
            "svc{i}:\n  # the image\n  image:\n    repository: team/svc{i}\n    tag: \"1.{i}.0\" # pinned\n    pullPolicy: IfNotPresent\n  replicas: {r}\n  resources:\n    limits: {{cpu: 500m, memory: 256Mi}}\n  env:\n    - name: MODE\n      value: 'prod'\n    - name: REGISTRY\n      value: *reg\n\n",
            r = i % 5 + 1
        ));
    }
    text
}

fn values(c: &mut Criterion) {
    let mut group = c.benchmark_group("values_edit");
    for services in [10usize, 200] {
        let text = values_yaml(services);
        group.throughput(Throughput::Bytes(text.len() as u64));
        let path = format!("svc{}.image.tag", services / 2);
        group.bench_function(
            format!(
                "parse+set+render, {services} services ({} KiB)",
                text.len() / 1024
            ),
            |b| {
                b.iter(|| {
                    let mut doc = ValuesDocument::parse(text.clone()).unwrap();
                    let change = doc.set(&path, "2.0.0-rc.1").unwrap();
                    assert!(change.changed);
                    doc.into_string().len()
                })
            },
        );
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = values }
criterion_main!(benches);
