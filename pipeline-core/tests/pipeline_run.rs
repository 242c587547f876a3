//! Pipeline runs against the real test environment (`scripts/testenv.sh up`): an app repository
//! on the token-protected git server, BuildKit in dockerd building from the git ref, the local
//! registry (image and build cache), and a chart repository updated through the write-back.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cicd_agents_buildkit::{Client, TlsOptions};
use cicd_agents_pipeline::definition::{Pipeline, PipelineDefinition};
use cicd_agents_pipeline::error::GitError;
use cicd_agents_pipeline::run::{
    build_options, ChartStatus, RunError, RunEvent, Runner, Step, StepOutcome,
};
use cicd_agents_testenv::{Relay, TestEnv};

const VALUES: &str = "# Default values for app.\nimage:\n  repository: example/app   # replaced by CI\n  tag: \"0.1.0\"   # set by CI\n  digest: \"\"\n\nservice:\n  port: 8080\n";

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    env.git(dir, args).unwrap_or_else(|e| panic!("{e}"))
}

fn seed_repo(env: &TestEnv, prefix: &str, files: &[(&str, &str)]) -> String {
    env.seed_repo(prefix, files.iter().copied())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The commit `main` points at on the server (empty when there is none).
fn remote_head(env: &TestEnv, url: &str) -> String {
    env.remote_head(url, "main")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default()
}

fn fresh_clone(env: &TestEnv, url: &str) -> tempfile::TempDir {
    env.fresh_clone(url, "main")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `GET http://REGISTRY/v2/<repo>/manifests/<tag>`: (status, `Docker-Content-Digest`).
fn registry_manifest(registry: &str, repo: &str, tag: &str) -> (u16, Option<String>) {
    let mut stream = TcpStream::connect(registry).unwrap_or_else(|e| panic!("{registry}: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let accept =
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let request = format!(
        "GET /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let digest = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("docker-content-digest")
            .then(|| value.trim().to_string())
    });
    (status, digest)
}

struct Fixture {
    env: TestEnv,
    app_url: String,
    chart_url: String,
    image_repo: String,
    token_file: tempfile::NamedTempFile,
}

fn token_file(token: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    writeln!(f, "{token}").unwrap_or_else(|e| panic!("{e}"));
    f
}

fn fixture(prefix: &str, dockerfile: &str) -> Fixture {
    let env = TestEnv::required();
    let unique = env.unique_name(prefix);
    let app_txt = format!("app {unique}\n");
    let app_url = seed_repo(
        &env,
        &format!("{prefix}-app"),
        &[
            ("svc/Dockerfile", dockerfile),
            ("svc/app.txt", &app_txt),
            ("README", "app\n"),
        ],
    );
    let chart_url = seed_repo(
        &env,
        &format!("{prefix}-chart"),
        &[
            ("charts/app/values.yaml", VALUES),
            ("charts/app/Chart.yaml", "name: app\n"),
        ],
    );
    let token_file = token_file(&env.git_token);
    Fixture {
        image_repo: format!("pipeline-tests/{unique}"),
        env,
        app_url,
        chart_url,
        token_file,
    }
}

const DOCKERFILE: &str =
    "ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN echo built >/built.txt\nCOPY app.txt /app.txt\n";

impl Fixture {
    /// The definition text; `chart_token` is the token file for the chart repository.
    fn definition(&self, chart_token: &Path) -> String {
        format!(
            r#"name: test
parameters:
  registry: {registry}
source:
  git: {app}
  context: svc
  token-file: {token}
build:
  images: ["${{registry}}/{repo}"]
  cache: ${{registry}}/{repo}:buildcache
  network: host
  build-args:
    BASE_IMAGE: {base}
chart:
  repo: {chart}
  token-file: {chart_token}
  author: {{name: pipeline tests, email: tests@cicd-agents.invalid}}
  message: "deploy {{image}}:{{new_tag}} from {{source_commit}}"
  values:
    - file: charts/app/values.yaml
      images:
        - repository: image.repository
          tag: image.tag
          digest: image.digest
"#,
            registry = self.env.registry,
            app = self.app_url,
            token = self.token_file.path().display(),
            repo = self.image_repo,
            base = self.env.base_image,
            chart = self.chart_url,
            chart_token = chart_token.display(),
        )
    }

    fn pipeline(&self, tag: &str) -> Pipeline {
        self.pipeline_with(tag, self.token_file.path())
    }

    fn pipeline_with(&self, tag: &str, chart_token: &Path) -> Pipeline {
        PipelineDefinition::parse(&self.definition(chart_token), "test.yaml")
            .and_then(|d| d.resolve([("image-tag", tag)]))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn client(&self) -> Client {
        Client::connect(&self.env.docker_addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_from_git_push_with_cache_update_chart_and_second_run_is_a_no_op() {
    let fx = fixture("pl-e2e", DOCKERFILE);
    let client = fx.client().await;
    let (tx, rx) = std::sync::mpsc::channel::<RunEvent>();
    let mut runner = Runner::new(fx.pipeline("1.10")).events(tx);
    let report = runner
        .run(&client)
        .await
        .unwrap_or_else(|f| panic!("{f}\n{}", f.report.to_json()));

    // The digest in the report is the registry's manifest digest.
    assert!(report.success);
    let digest = report
        .digest()
        .unwrap_or_else(|| panic!("no digest: {}", report.to_json()))
        .to_string();
    let (status, registry_digest) = registry_manifest(&fx.env.registry, &fx.image_repo, "1.10");
    assert_eq!(status, 200);
    assert_eq!(registry_digest.as_deref(), Some(digest.as_str()));
    // The registry cache was exported.
    let (cache_status, _) = registry_manifest(&fx.env.registry, &fx.image_repo, "buildcache");
    assert_eq!(cache_status, 200, "no build cache in the registry");
    // The source commit was resolved.
    let app_head = remote_head(&fx.env, &fx.app_url);
    assert_eq!(report.source.commit.as_deref(), Some(app_head.as_str()));

    // The chart commit is visible through a fresh clone; only the owned values changed.
    let commit = report
        .chart_commit()
        .unwrap_or_else(|| panic!("no commit: {}", report.to_json()))
        .to_string();
    assert_eq!(remote_head(&fx.env, &fx.chart_url), commit);
    let clone = fresh_clone(&fx.env, &fx.chart_url);
    let repo = clone.path();
    let values = std::fs::read_to_string(repo.join("charts/app/values.yaml")).unwrap_or_default();
    let expected = VALUES
        .replace(
            "example/app   #",
            &format!("{}/{}   #", fx.env.registry, fx.image_repo),
        )
        .replace("\"0.1.0\"", "\"1.10\"")
        .replace("digest: \"\"", &format!("digest: \"{digest}\""));
    assert_eq!(values, expected);
    let log = git(&fx.env, repo, &["log", "-1", "--format=%an <%ae>%n%s"]);
    assert_eq!(
        log.trim(),
        format!(
            "pipeline tests <tests@cicd-agents.invalid>\ndeploy {}/{}:1.10 from {app_head}",
            fx.env.registry, fx.image_repo
        )
    );

    // Events: every step started and finished in order, build progress, digest, commit.
    let events: Vec<RunEvent> = rx.try_iter().collect();
    let order: Vec<(bool, Step)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepStarted { step } => Some((true, *step)),
            RunEvent::StepFinished { step, .. } => Some((false, *step)),
            _ => None,
        })
        .collect();
    let mut expected_order = Vec::new();
    for step in [Step::Prepare, Step::Build, Step::UpdateChart, Step::Commit] {
        expected_order.push((true, step));
        expected_order.push((false, step));
    }
    assert_eq!(order, expected_order);
    assert!(events.iter().any(|e| matches!(e, RunEvent::StepProgress { step: Step::Build, message } if message.contains("RUN echo built"))), "{events:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, RunEvent::ImageBuilt { digest: Some(d), .. } if *d == digest)));
    assert!(events
        .iter()
        .any(|e| matches!(e, RunEvent::ChartCommitted { commit: Some(c), .. } if *c == commit)));
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunFinished { success: true, .. })
    ));
    let json = report.to_json();
    assert!(json.contains("\"duration_seconds\""), "{json}");
    assert!(
        !json.contains(&fx.env.git_token),
        "the report contains the token"
    );

    // A second run with the same tag makes no commit.
    let mut again = Runner::new(fx.pipeline("1.10"));
    let second = again.run(&client).await.unwrap_or_else(|f| panic!("{f}"));
    let chart = second
        .chart
        .clone()
        .unwrap_or_else(|| panic!("no chart outcome"));
    assert_eq!(chart.status, ChartStatus::NoChange);
    assert_eq!(chart.commit, None);
    assert_eq!(
        second.digest(),
        Some(digest.as_str()),
        "same source, same digest"
    );
    assert_eq!(remote_head(&fx.env, &fx.chart_url), commit);
    assert!(second
        .steps
        .iter()
        .any(|s| s.step == Step::Commit && s.outcome == StepOutcome::NoChange));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_leaves_the_chart_repository_untouched() {
    let fx = fixture(
        "pl-fail",
        "ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN echo about to fail && exit 1\n",
    );
    let before = remote_head(&fx.env, &fx.chart_url);
    let client = fx.client().await;
    let failure = Runner::new(fx.pipeline("2.0.0"))
        .run(&client)
        .await
        .err()
        .unwrap_or_else(|| panic!("the build should fail"));
    assert!(
        matches!(
            failure.error,
            RunError::Build {
                cancelled: false,
                ..
            }
        ),
        "{}",
        failure.error
    );
    let message = failure.error.to_string();
    assert!(
        message.contains("exit 1") || message.contains("exit code: 1"),
        "{message}"
    );
    let RunError::Build {
        failure: Some(detail),
        ..
    } = &failure.error
    else {
        panic!("the build failure has no detail: {message}")
    };
    assert_eq!(detail.line, Some(3), "{message}");
    assert!(
        detail.log_tail.iter().any(|l| l.contains("about to fail")),
        "{message}"
    );
    let steps: Vec<(Step, StepOutcome)> = failure
        .report
        .steps
        .iter()
        .map(|s| (s.step, s.outcome.clone()))
        .collect();
    assert!(
        matches!(steps[1], (Step::Build, StepOutcome::Failed { .. })),
        "{steps:?}"
    );
    assert!(
        matches!(&steps[2], (Step::UpdateChart, StepOutcome::Skipped { reason }) if reason.contains("build failed")),
        "{steps:?}"
    );
    assert!(!failure.report.success);
    assert!(failure.report.chart.is_none());
    assert_eq!(
        remote_head(&fx.env, &fx.chart_url),
        before,
        "the chart repository changed"
    );
    let (status, _) = registry_manifest(&fx.env.registry, &fx.image_repo, "2.0.0");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_fails_with_an_auth_error_that_does_not_contain_the_token() {
    let fx = fixture("pl-auth", DOCKERFILE);
    let wrong = format!("wrong-{}", fx.env.unique_name("tok"));
    let wrong_file = token_file(&wrong);
    let before = remote_head(&fx.env, &fx.chart_url);
    let client = fx.client().await;

    // Wrong token for the chart repository: fails before anything is built.
    let failure = Runner::new(fx.pipeline_with("3.0.0", wrong_file.path()))
        .run(&client)
        .await
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert!(
        matches!(
            failure.error,
            RunError::ChartAccess(GitError::AuthFailed { .. })
        ),
        "{:?}",
        failure.error
    );
    let text = format!(
        "{} {:?} {}",
        failure.error,
        failure.error,
        failure.report.to_json()
    );
    assert!(text.contains("authentication failed"), "{text}");
    assert!(
        !text.contains(&wrong) && !text.contains(&fx.env.git_token),
        "the token leaked: {text}"
    );
    assert!(failure
        .report
        .steps
        .iter()
        .any(|s| s.step == Step::Build && matches!(s.outcome, StepOutcome::Skipped { .. })));
    // The build started while the chart was checked: it was cancelled, and nothing is pushed
    // later either.
    for _ in 0..6 {
        assert_eq!(
            registry_manifest(&fx.env.registry, &fx.image_repo, "3.0.0").0,
            404,
            "built despite the bad token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // Wrong token for the source repository.
    let text = fx.definition(fx.token_file.path()).replace(
        &fx.token_file.path().display().to_string(),
        &wrong_file.path().display().to_string(),
    );
    let pipeline = PipelineDefinition::parse(&text, "t.yaml")
        .and_then(|d| d.resolve([("image-tag", "3.0.1")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let failure = Runner::new(pipeline)
        .run(&client)
        .await
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert!(
        matches!(failure.error, RunError::Source(GitError::AuthFailed { .. })),
        "{:?}",
        failure.error
    );
    let text = format!(
        "{} {:?} {}",
        failure.error,
        failure.error,
        failure.report.to_json()
    );
    assert!(
        !text.contains(&wrong) && !text.contains(&fx.env.git_token),
        "the token leaked: {text}"
    );
    assert_eq!(remote_head(&fx.env, &fx.chart_url), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_builds_nothing_commits_nothing_and_shows_the_diff() {
    let fx = fixture("pl-dry", DOCKERFILE);
    let before = remote_head(&fx.env, &fx.chart_url);
    let report = Runner::new(fx.pipeline("4.0.0"))
        .dry_run()
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(report.dry_run && report.success);
    assert_eq!(report.build.digest, None);
    assert_eq!(
        report.build.plan.context,
        format!("{}#refs/heads/main:svc", fx.app_url)
    );
    assert_eq!(
        report.build.plan.cache_to,
        [format!(
            "type=registry,mode=max,ref={}/{}:buildcache",
            fx.env.registry, fx.image_repo
        )]
    );
    let chart = report.chart.clone().unwrap_or_else(|| panic!("no chart"));
    assert_eq!(chart.status, ChartStatus::DryRun);
    let diff = chart.diff.clone().unwrap_or_default();
    assert!(
        diff.contains("\n-  tag: \"0.1.0\"   # set by CI\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+  tag: \"4.0.0\"   # set by CI\n"),
        "{diff}"
    );
    assert!(diff.contains("+  digest: \"sha256:0000000000000000000000000000000000000000000000000000000000000000\""), "{diff}");
    assert!(
        diff.starts_with("diff --git a/charts/app/values.yaml b/charts/app/values.yaml"),
        "{diff}"
    );
    let text = report.to_string();
    assert!(text.contains("values diff it would commit"), "{text}");
    assert!(text.contains("cache-to:    type=registry"), "{text}");
    assert_eq!(remote_head(&fx.env, &fx.chart_url), before);
    assert_eq!(
        registry_manifest(&fx.env.registry, &fx.image_repo, "4.0.0").0,
        404
    );
    let steps: Vec<StepOutcome> = report.steps.iter().map(|s| s.outcome.clone()).collect();
    assert_eq!(steps[1], StepOutcome::DryRun);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_source_without_a_chart() {
    let env = TestEnv::required();
    let (dir, unique) = local_context(&env, "pl-local");
    let text = local_build(&env, &format!("pipeline-tests/{unique}"));
    std::fs::write(dir.path().join("pipeline.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = PipelineDefinition::from_file(dir.path().join("pipeline.yaml"))
        .and_then(|d| d.resolve([("image-tag", "local")]))
        .unwrap_or_else(|e| panic!("{e}"));
    let client = Client::connect(&env.docker_addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let report = Runner::new(pipeline)
        .run(&client)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(report.chart.is_none());
    assert_eq!(report.steps.len(), 2);
    let (status, digest) =
        registry_manifest(&env.registry, &format!("pipeline-tests/{unique}"), "local");
    assert_eq!(status, 200);
    assert_eq!(digest.as_deref(), report.digest());
}

/// A directory with the build context `ctx/` (Dockerfile and a file unique to the test).
fn local_context(env: &TestEnv, prefix: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unique = env.unique_name(prefix);
    cicd_agents_testenv::write_context(
        dir.path(),
        [
            ("ctx/Dockerfile", DOCKERFILE.to_string()),
            ("ctx/app.txt", unique.clone()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (dir, unique)
}

/// The `source:` and `build:` of a definition building `ctx/` into `image` (pushed to the
/// test registry).
fn local_build(env: &TestEnv, image: &str) -> String {
    format!(
        "source:\n  local: .\n  context: ctx\nbuild:\n  images: ['{}/{image}']\n  network: host\n  build-args: {{BASE_IMAGE: '{}'}}\n",
        env.registry, env.base_image
    )
}

/// Controllers spawn runs on their runtime: the run future must be `Send`.
#[allow(dead_code)]
fn run_futures_are_send(mut runner: Runner, client: &Client) {
    fn assert_send<T: Send>(_: &T) {}
    let with_progress = async move {
        runner = runner.progress(Box::new(cicd_agents_buildkit::progress::Quiet));
        let _ = runner.run(client).await;
        let _ = runner.dry_run().await;
        if let Ok(Some(pool)) = runner.builder_pool(TlsOptions::default()) {
            let _ = runner.run_on_pool(&pool).await;
        }
    };
    assert_send(&with_progress);
}

/// A local-source pipeline (no chart) whose `build.pool` is `relays`; returns it with its dir.
fn pool_pipeline(env: &TestEnv, relays: &[Relay]) -> (tempfile::TempDir, Pipeline, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unique = env.unique_name("pl-pool");
    cicd_agents_testenv::write_context(
        dir.path(),
        [
            ("ctx/Dockerfile", DOCKERFILE.to_string()),
            ("ctx/app.txt", unique.clone()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pool: Vec<String> = relays.iter().map(|r| format!("'{}'", r.addr())).collect();
    let text = format!(
        "source:\n  local: .\n  context: ctx\nbuild:\n  images: ['{}/pipeline-tests/{unique}']\n  network: host\n  build-args: {{BASE_IMAGE: '{}'}}\n  pool: [{}]\n",
        env.registry,
        env.base_image,
        pool.join(", ")
    );
    std::fs::write(dir.path().join("pipeline.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = PipelineDefinition::from_file(dir.path().join("pipeline.yaml"))
        .and_then(|d| d.resolve([("image-tag", "pool")]))
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, pipeline, format!("pipeline-tests/{unique}"))
}

async fn three_relays(env: &TestEnv) -> Vec<Relay> {
    let mut relays = Vec::new();
    for _ in 0..3 {
        relays.push(
            Relay::tcp(&env.docker_sock)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    relays
}

/// The daemon that builds, and those passed over before it.
type Told = Vec<(String, Vec<String>)>;

/// Records what a progress sink is told of the daemon that builds.
struct BuilderNames(Arc<Mutex<Told>>);

impl cicd_agents_buildkit::progress::ProgressSink for BuilderNames {
    fn update(&mut self, _update: &cicd_agents_buildkit::progress::StatusUpdate) {}

    fn builder(&mut self, address: &str, passed_over: &[cicd_agents_buildkit::pool::Attempt]) {
        let passed = passed_over.iter().map(|a| a.address.clone()).collect();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((address.to_string(), passed));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_pool_fails_over_past_a_stopped_daemon_and_reports_it() {
    let env = TestEnv::required();
    let relays = three_relays(&env).await;
    let (_dir, pipeline, repo) = pool_pipeline(&env, &relays);
    let spec = pipeline
        .build
        .pool
        .clone()
        .unwrap_or_else(|| panic!("no pool"));
    let key = spec.routing_key(&build_options(&pipeline, None));
    let mut runner = Runner::new(pipeline);
    let pool = runner
        .builder_pool(TlsOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pool"))
        .health_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(3));
    let rank = pool.rank(&key);
    assert_eq!(rank.len(), 3);
    // The daemon the project prefers is down: the run goes to its second choice.
    let first = relays
        .iter()
        .find(|r| r.addr() == rank[0])
        .unwrap_or_else(|| panic!("no relay {}", rank[0]));
    first.stop().await;
    let (tx, rx) = std::sync::mpsc::channel::<RunEvent>();
    // The progress sink is told which daemon builds, and which were passed over.
    let told = Arc::new(Mutex::new(Vec::new()));
    runner = runner
        .events(tx)
        .progress(Box::new(BuilderNames(Arc::clone(&told))));
    let report = runner
        .run_on_pool(&pool)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        *told.lock().unwrap_or_else(|e| e.into_inner()),
        vec![(rank[1].clone(), vec![rank[0].clone()])]
    );
    assert_eq!(report.build.builder.as_deref(), Some(rank[1].as_str()));
    assert_eq!(report.build.passed_over.len(), 1);
    assert_eq!(report.build.passed_over[0].address, rank[0]);
    assert!(report
        .to_string()
        .contains(&format!("builder: {}", rank[1])));
    let json = report.to_json();
    assert!(json.contains("\"passed_over\""), "{json}");
    let third = relays
        .iter()
        .find(|r| r.addr() == rank[2])
        .unwrap_or_else(|| panic!("no relay {}", rank[2]));
    assert_eq!(third.connections(), 0, "the third choice was dialled");
    let events: Vec<RunEvent> = rx.try_iter().collect();
    assert!(
        events.iter().any(|e| matches!(e,
            RunEvent::BuilderChosen { address, passed_over }
                if *address == rank[1] && passed_over.len() == 1 && passed_over[0].address == rank[0])),
        "{events:?}"
    );
    let (status, digest) = registry_manifest(&env.registry, &repo, "pool");
    assert_eq!(status, 200);
    assert_eq!(digest.as_deref(), report.digest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_pool_with_every_daemon_down_names_each_one() {
    let env = TestEnv::required();
    let relays = three_relays(&env).await;
    let (_dir, pipeline, _) = pool_pipeline(&env, &relays);
    for relay in &relays {
        relay.stop().await;
    }
    let mut runner = Runner::new(pipeline);
    let pool = runner
        .builder_pool(TlsOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pool"))
        .connect_timeout(Duration::from_secs(2));
    let failure = match runner.run_on_pool(&pool).await {
        Ok(_) => panic!("built with every daemon down"),
        Err(failure) => failure,
    };
    let RunError::NoBuilder { tried, .. } = &failure.error else {
        panic!("expected NoBuilder: {:?}", failure.error);
    };
    assert_eq!(tried.len(), 3);
    assert_eq!(
        cicd_agents_pipeline::error::HasKind::kind(&failure),
        cicd_agents_pipeline::error::ErrorKind::Connection
    );
    let text = failure.to_string();
    for relay in &relays {
        assert!(text.contains(relay.addr()), "{text}");
    }
    assert_eq!(failure.report.build.builder, None);
    assert_eq!(failure.report.build.passed_over.len(), 3);
    assert!(matches!(
        failure.report.steps[1].outcome,
        StepOutcome::Failed { .. }
    ));
}

/// A git server that answers every request with 403 after `delay`.
async fn slow_refusing_git_server(delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}/chart.git")
}

/// The build runs ahead of `prepare`: when it finishes (and pushes) before a check of `prepare`
/// fails, the run fails with the check's error, and the report and the events say what was
/// pushed, after `prepare`'s failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_finished_before_prepare_failed_is_reported() {
    let env = TestEnv::required();
    let (dir, unique) = local_context(&env, "pl-ahead");
    let build = local_build(&env, &format!("pipeline-tests/{unique}:${{image-tag}}"));
    let client = Client::connect(&env.docker_addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let run = |text: String, tag: &'static str| {
        let path = dir.path().join(format!("{tag}.yaml"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let pipeline = PipelineDefinition::from_file(&path)
            .and_then(|d| d.resolve([("image-tag", tag)]))
            .unwrap_or_else(|e| panic!("{e}"));
        Runner::new(pipeline)
    };
    // Once without a chart, so that the second build is all cached and quick.
    run(build.clone(), "warm")
        .run(&client)
        .await
        .unwrap_or_else(|f| panic!("{f}"));

    let chart = slow_refusing_git_server(Duration::from_secs(8)).await;
    let text = format!(
        "{build}chart:\n  repo: {chart}\n  author: {{name: t, email: t@cicd-agents.invalid}}\n  values:\n    - file: values.yaml\n      images:\n        - repository: image.repository\n          tag: image.tag\n"
    );
    let (tx, rx) = std::sync::mpsc::channel::<RunEvent>();
    let failure = run(text, "late")
        .allow_insecure_http(true)
        .events(tx)
        .run(&client)
        .await
        .err()
        .unwrap_or_else(|| panic!("should fail"));
    assert!(
        matches!(failure.error, RunError::ChartAccess(_)),
        "{:?}",
        failure.error
    );
    let (status, digest) =
        registry_manifest(&env.registry, &format!("pipeline-tests/{unique}"), "late");
    assert_eq!(
        status, 200,
        "the build was expected to finish before the check failed"
    );
    assert_eq!(failure.report.digest(), digest.as_deref());
    let outcome = |step: Step| {
        failure
            .report
            .steps
            .iter()
            .find(|s| s.step == step)
            .map(|s| s.outcome.clone())
    };
    assert!(matches!(
        outcome(Step::Prepare),
        Some(StepOutcome::Failed { .. })
    ));
    assert!(matches!(outcome(Step::Build), Some(StepOutcome::Succeeded)));
    let order: Vec<(bool, Step)> = rx
        .try_iter()
        .filter_map(|e| match e {
            RunEvent::StepStarted { step } => Some((true, step)),
            RunEvent::StepFinished { step, .. } => Some((false, step)),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (true, Step::Prepare),
            (false, Step::Prepare),
            (true, Step::Build),
            (false, Step::Build)
        ]
    );
}
