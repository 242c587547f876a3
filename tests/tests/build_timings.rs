//! The client-side timings of a build against the real daemon: present in
//! the result, handed to the progress sink once after the last update, and
//! printed by `--progress rawjson` as its last line. No duration is compared
//! with a target: only with each other and with the wall time around them.

use std::time::{Duration, Instant};

use cicd_agents_buildkit::build::{BuildOptions, BuildTimings, Output};
use cicd_agents_buildkit::progress::{ProgressSink, StatusUpdate};
use cicd_agents_buildkit::Client;
use cicd_agents_testenv::{cli, write_context, TestEnv};

/// Records the order of what the build hands to its sink.
#[derive(Default)]
struct Recorder {
    updates: usize,
    updates_after_timings: usize,
    timings: Vec<BuildTimings>,
    finished_after_timings: bool,
}

impl ProgressSink for Recorder {
    fn update(&mut self, _update: &StatusUpdate) {
        self.updates += 1;
        if !self.timings.is_empty() {
            self.updates_after_timings += 1;
        }
    }
    fn timings(&mut self, timings: &BuildTimings) {
        self.timings.push(*timings);
    }
    fn finish(&mut self) {
        self.finished_after_timings = !self.timings.is_empty();
    }
}

/// A context of a Dockerfile and a few files with content unique to this run.
fn context(env: &TestEnv) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let marker = env.unique_name("timings");
    let files: Vec<(String, String)> = (0..50)
        .map(|n| (format!("src/f{n}.txt"), format!("{marker} {n}\n")))
        .chain([
            (
                "Dockerfile".to_string(),
                // `COPY .`: the daemon asks for the whole context (no follow paths).
                "FROM scratch\nCOPY . /ctx\n".to_string(),
            ),
            // Patterns in several forms: the early walk of the context is used
            // only if the daemon asks with exactly the patterns we read here.
            (
                ".dockerignore".to_string(),
                "# comment\n*.log\n!keep.log\n/build\n  src/f1*.txt  \n./tmp/../cache\n"
                    .to_string(),
            ),
            ("keep.log".to_string(), "kept\n".to_string()),
            ("drop.log".to_string(), "dropped\n".to_string()),
        ])
        .collect();
    write_context(dir.path(), files).unwrap();
    dir
}

#[tokio::test]
async fn a_build_reports_where_its_time_went() {
    let env = TestEnv::required();
    let context = context(&env);
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("image.tar");

    let wall = Instant::now();
    let client = Client::connect(&env.docker_addr).await.unwrap();
    let mut recorder = Recorder::default();
    let result = client
        .build_with_progress(
            &BuildOptions::local(context.path()).output(Output::new(
                "tar",
                [("dest".to_string(), tarball.display().to_string())],
            )),
            &mut recorder,
        )
        .await
        .expect("build");
    let wall = wall.elapsed();

    assert_eq!(
        result.context_transfer.prewalked, 1,
        "the context was served from the walk started with the session: {:?}",
        result.context_transfer
    );
    let t = result.timings;
    assert_eq!(
        recorder.timings,
        [t],
        "the sink gets the result's timings once"
    );
    assert!(recorder.updates > 0 && recorder.updates_after_timings == 0);
    assert!(
        recorder.finished_after_timings,
        "timings come before finish"
    );
    for (name, value) in [
        ("connect", t.connect),
        ("session_start", t.session_start),
        ("context_walk", t.context_walk),
        ("context_transfer", t.context_transfer),
        ("solve", t.solve),
        ("export", t.export),
        ("total", t.total),
    ] {
        assert!(value > Duration::ZERO, "{name} is zero: {t:?}");
    }
    assert!(t.sequential() <= t.total, "{t:?}");
    assert!(t.total <= wall, "total {:?} > wall {wall:?}", t.total);
    assert!(t.context_walk + t.context_transfer <= t.total, "{t:?}");
    assert!(t.export <= t.solve, "{t:?}");

    // A second build on the same client does not count the connection again.
    let again = client
        .build(&BuildOptions::local(context.path()).output(Output::new("cacheonly", [])))
        .await
        .expect("second build");
    assert!(
        again.timings.connect < t.connect,
        "{:?} then {:?}",
        t.connect,
        again.timings.connect
    );
    assert_eq!(again.timings.export, Duration::ZERO, "{:?}", again.timings);
}

#[test]
fn rawjson_ends_with_the_timings() {
    let env = TestEnv::required();
    let context = context(&env);
    let wall = Instant::now();
    let output = cli()
        .args(["build", "--addr", &env.docker_addr, "--progress", "rawjson"])
        .arg(context.path())
        .output()
        .unwrap();
    let wall = wall.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("rawjson lines are JSON"))
        .collect();
    let (last, updates) = lines.split_last().expect("rawjson lines");
    assert!(!updates.is_empty(), "{stderr}");
    for update in updates {
        assert!(update.get("vertexes").is_some(), "{update}");
    }
    let object = last.as_object().expect("an object");
    assert_eq!(object.len(), 1, "{last}");
    let timings = &last["timings"];
    let seconds = |name: &str| {
        timings[name]
            .as_f64()
            .unwrap_or_else(|| panic!("no {name} in {last}"))
    };
    for name in [
        "connect",
        "session_start",
        "context_walk",
        "context_transfer",
        "solve",
        "export",
    ] {
        assert!(seconds(name) >= 0.0, "{last}");
    }
    let total = seconds("total");
    assert!(
        seconds("connect") + seconds("session_start") + seconds("solve") <= total + 1e-9,
        "{last}"
    );
    assert!(total > 0.0 && total <= wall, "{last} against {wall} s");
}
