//! `cicd-agents pipeline run` and `cicd-agents chart set-image` against the real test
//! environment (`scripts/testenv.sh up`).

use std::path::Path;
use std::process::Output;

use cicd_agents_testenv::{cli, TestEnv};

const VALUES: &str = "# values\nimage:\n  repository: example/app\n  tag: \"1.0\"   # set by CI\nworker:\n  tag: v1\n";

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

/// `cicd-agents chart set-image --repo URL --file charts/app/values.yaml ARGS…`, with
/// `token` through `--token-env`.
fn remote_set_image(url: &str, token: &str, args: &[&str]) -> Output {
    cli()
        .args(["chart", "set-image", "--repo", url])
        .args(["--file", "charts/app/values.yaml"])
        .args(args)
        .args(["--token-env", "CHART_TOKEN"])
        .env("CHART_TOKEN", token)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn show(env: &TestEnv, url: &str, path: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = dir.path().join("r").to_string_lossy().into_owned();
    git(
        env,
        dir.path(),
        &["clone", "-q", &env.authed_url(url), &target],
    );
    let repo = dir.path().join("r");
    let text = std::fs::read_to_string(repo.join(path)).unwrap_or_default();
    let log = git(env, &repo, &["log", "-1", "--format=%an <%ae>%n%B"]);
    (text, log)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn chart_set_image_on_a_local_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, VALUES).unwrap_or_else(|e| panic!("{e}"));
    let out = cli()
        .args(["chart", "set-image", "--file"])
        .arg(&file)
        .args([
            "--key",
            "image.tag",
            "--value",
            "1.10",
            "--set",
            "worker.tag=v2",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("image.tag: 1.0 -> 1.10"), "{stdout}");
    assert!(stdout.contains("worker.tag: v1 -> v2"), "{stdout}");
    let after = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(
        after,
        VALUES
            .replace("\"1.0\"", "\"1.10\"")
            .replace("tag: v1", "tag: v2")
    );

    // Same values again: no change; JSON output.
    let out = cli()
        .args(["chart", "set-image", "--format", "json", "--file"])
        .arg(&file)
        .args(["--set", "image.tag=1.10"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(json["changed"], false);

    // A missing key is an error naming it; the file is untouched.
    let out = cli()
        .args(["chart", "set-image", "--file"])
        .arg(&file)
        .args(["--key", "image.digest", "--value", "x"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("key `digest` not found"), "{stderr}");
    // Unpaired --key/--value.
    let out = cli()
        .args(["chart", "set-image", "--file"])
        .arg(&file)
        .args(["--key", "a"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    // Repository-only flags need --repo.
    let out = cli()
        .args(["chart", "set-image", "--file"])
        .arg(&file)
        .args(["--set", "a=b", "--token-env", "X"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
}

#[test]
fn chart_set_image_in_a_remote_repository() {
    let env = TestEnv::required();
    let url = seed_repo(&env, "cli-chart", &[("charts/app/values.yaml", VALUES)]);
    let out = cli()
        .args([
            "chart",
            "set-image",
            "--repo",
            &url,
            "--branch",
            "main",
            "--file",
            "charts/app/values.yaml",
        ])
        .args([
            "--key",
            "image.tag",
            "--value",
            "2.0.0",
            "--key",
            "image.repository",
            "--value",
            "r.example/app",
        ])
        .args([
            "--token-env",
            "CHART_TOKEN",
            "--author-name",
            "CLI Bot",
            "--author-email",
            "bot@example.com",
        ])
        .args(["--message", "bump {image} to {new_tag} (was {old_tag})"])
        .env("CHART_TOKEN", &env.git_token)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let head = remote_head(&env, &url);
    assert!(stdout.contains(&format!("commit {head}")), "{stdout}");
    let (values, log) = show(&env, &url, "charts/app/values.yaml");
    assert_eq!(
        values,
        VALUES
            .replace("\"1.0\"", "\"2.0.0\"")
            .replace("example/app", "r.example/app")
    );
    assert_eq!(
        log.trim(),
        "CLI Bot <bot@example.com>\nbump r.example/app to 2.0.0 (was 1.0)"
    );

    // Again: no commit.
    let out = remote_set_image(&url, &env.git_token, &["--set", "image.tag=2.0.0"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("no change"), "{stdout}");
    assert_eq!(remote_head(&env, &url), head);

    // Dry run prints the diff and commits nothing.
    let out = remote_set_image(
        &url,
        &env.git_token,
        &["--set", "image.tag=3.0.0", "--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("+  tag: \"3.0.0\"   # set by CI"),
        "{stdout}"
    );
    assert_eq!(remote_head(&env, &url), head);

    // A wrong token: an authentication error without the token.
    let wrong = "wrong-token-4f1c9a0e7d";
    let out = remote_set_image(&url, wrong, &["--set", "image.tag=9"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "{stdout}{stderr}"
    );
    assert_eq!(remote_head(&env, &url), head);
}

fn definition(env: &TestEnv, app: &str, chart: &str, repo: &str) -> String {
    format!(
        "name: cli\nsource:\n  git: {app}\n  token-env: APP_TOKEN\nbuild:\n  images: ['{}/{repo}']\n  cache: '{}/{repo}:buildcache'\n  network: host\n  build-args: {{BASE_IMAGE: '{}'}}\nchart:\n  repo: {chart}\n  token-env: CHART_TOKEN\n  values:\n    - file: values.yaml\n      images: [{{tag: image.tag}}]\n",
        env.registry, env.registry, env.base_image
    )
}

#[test]
fn pipeline_run_dry_run_real_run_and_errors() {
    let env = TestEnv::required();
    let unique = env.unique_name("cli-app");
    let app = seed_repo(
        &env,
        "cli-app",
        &[
            (
                "Dockerfile",
                "ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN echo hi >/hi\nCOPY id.txt /id.txt\n",
            ),
            ("id.txt", &unique),
        ],
    );
    let chart = seed_repo(&env, "cli-chart", &[("values.yaml", VALUES)]);
    let repo = format!("pipeline-cli/{unique}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, definition(&env, &app, &chart, &repo)).unwrap_or_else(|e| panic!("{e}"));
    let head = remote_head(&env, &chart);
    let run = |extra: &[&str]| {
        cli()
            .args(["pipeline", "run"])
            .arg(&file)
            .args(["--addr", &env.docker_addr])
            .args(extra)
            .env("APP_TOKEN", &env.git_token)
            .env("CHART_TOKEN", &env.git_token)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };

    // Dry run: the build it would run and the diff; nothing committed.
    let out = run(&["--set", "image-tag=5.1", "--dry-run", "--progress", "plain"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("context:     {app}#refs/heads/main")),
        "{stdout}"
    );
    assert!(stdout.contains("+  tag: \"5.1\"   # set by CI"), "{stdout}");
    assert!(
        stderr.contains("==> prepare") && stderr.contains("<== commit: skipped (dry run)"),
        "{stderr}"
    );
    assert_eq!(remote_head(&env, &chart), head);

    // The real run, JSON report on stdout and in a file.
    let report_file = dir.path().join("report.json");
    let report_arg = report_file.to_string_lossy().into_owned();
    let out = run(&[
        "--set",
        "image-tag=5.1",
        "--format",
        "json",
        "--progress",
        "rawjson",
        "--report-file",
        &report_arg,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(report, from_file);
    let commit = report["chart"]["commit"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(commit, remote_head(&env, &chart));
    assert!(
        report["build"]["digest"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:"),
        "{report}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"event\":\"step-finished\"")),
        "{stderr}"
    );
    assert!(!stdout.contains(&env.git_token) && !stderr.contains(&env.git_token));

    // Definition errors name key and line; unknown parameters are errors.
    std::fs::write(
        &file,
        definition(&env, &app, &chart, &repo)
            .replace("  network: host", "  network: host\n  netwrok: none"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = text(&run(&[]));
    assert!(
        stderr.contains(":9:3: unknown key `build.netwrok`"),
        "{stderr}"
    );
    std::fs::write(&file, definition(&env, &app, &chart, &repo)).unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["--set", "imagetag=1"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("unknown parameter `imagetag`"));

    // A failing source token: auth error, exit 1, report written, no token printed.
    let out = cli()
        .args(["pipeline", "run"])
        .arg(&file)
        .args(["--addr", &env.docker_addr, "--report-file", &report_arg])
        .env("APP_TOKEN", "not-the-token-77")
        .env("CHART_TOKEN", &env.git_token)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("source repository: authentication failed"),
        "{stderr}"
    );
    assert!(!stdout.contains("not-the-token-77") && !stderr.contains("not-the-token-77"));
    let failed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(failed["success"], false);
    assert_eq!(remote_head(&env, &chart), commit);
}

/// The reproduction of issue 17: eight `chart set-image --repo` processes started together,
/// each setting its own key in one values file, all land (none gives up), and the JSON
/// report of each says how many attempts it made and how long it took.
#[test]
fn eight_chart_set_image_processes_started_together_all_land() {
    const N: usize = 8;
    let env = TestEnv::required();
    let mut values = String::from("# one chart, many services\n");
    for i in 0..N {
        values.push_str(&format!("svc{i}:\n  image:\n    tag: \"0\"\n"));
    }
    let url = seed_repo(&env, "cli-contend", &[("values.yaml", &values)]);
    let children: Vec<_> = (0..N)
        .map(|i| {
            cli()
                .args([
                    "chart",
                    "set-image",
                    "--repo",
                    &url,
                    "--file",
                    "values.yaml",
                ])
                .args(["--set", &format!("svc{i}.image.tag=v{i}")])
                .args(["--token-env", "CHART_TOKEN", "--retry-timeout", "2m"])
                .args(["--format", "json"])
                .env("CHART_TOKEN", &env.git_token)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut commits = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "a writer gave up: {stderr}");
        let json: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        assert_eq!(json["status"], "committed", "{stdout}");
        assert!(json["attempts"].as_u64().unwrap_or(0) >= 1, "{stdout}");
        assert!(
            json["elapsed_seconds"].as_f64().unwrap_or(0.0) > 0.0,
            "{stdout}"
        );
        commits.push(json["commit"].as_str().unwrap_or_default().to_string());
    }
    let (text, _) = show(&env, &url, "values.yaml");
    let mut expected = values.clone();
    for i in 0..N {
        expected = expected.replacen(
            &format!("svc{i}:\n  image:\n    tag: \"0\""),
            &format!("svc{i}:\n  image:\n    tag: \"v{i}\""),
            1,
        );
    }
    assert_eq!(text, expected, "all eight values are in the file");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    git(
        &env,
        dir.path(),
        &["clone", "-q", &env.authed_url(&url), "r"],
    );
    let history = git(&env, &dir.path().join("r"), &["rev-list", "HEAD"]);
    assert_eq!(history.lines().count(), N + 1, "{history}");
    for c in &commits {
        assert!(history.lines().any(|h| h == c), "commit {c} lost");
    }
}

/// `build.pool` in the definition: `pipeline run` needs no `--addr`, fails over past a stopped
/// daemon and reports the daemon that built. The relays run on this test's runtime, so the
/// command runs on a blocking thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_run_builds_on_the_definitions_pool() {
    let env = TestEnv::required();
    let mut relays = Vec::new();
    for _ in 0..3 {
        relays.push(
            cicd_agents_testenv::Relay::tcp(&env.docker_sock)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unique = env.unique_name("cli-pool");
    let dockerfile = format!("FROM {}\nRUN echo {unique} > /id\n", env.base_image);
    cicd_agents_testenv::write_context(dir.path(), [("ctx/Dockerfile", dockerfile.as_str())])
        .unwrap_or_else(|e| panic!("{e}"));
    let addresses: Vec<String> = relays.iter().map(|r| format!("'{}'", r.addr())).collect();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            "source:\n  local: .\n  context: ctx\nbuild:\n  images: ['{}/pipeline-tests/{unique}']\n  network: host\n  pool: [{}]\n",
            env.registry,
            addresses.join(", ")
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    relays[0].stop().await;
    let report = dir.path().join("report.json");
    let (f, r) = (file.clone(), report.clone());
    let out = tokio::task::spawn_blocking(move || {
        cli()
            .env_remove("BUILDKIT_HOST")
            .args(["pipeline", "run"])
            .arg(&f)
            .args([
                "--set",
                "image-tag=pool",
                "--progress",
                "plain",
                "--report-file",
            ])
            .arg(&r)
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let builder = json["build"]["builder"].as_str().unwrap_or_default();
    assert!(
        builder == relays[1].addr() || builder == relays[2].addr(),
        "built on {builder}: {stderr}"
    );
    assert!(stderr.contains(&format!("builder {builder}")), "{stderr}");
    // The stopped daemon is passed over when the project prefers it, else never dialled.
    let passed: Vec<&str> = json["build"]["passed_over"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["address"].as_str()).collect())
        .unwrap_or_default();
    assert!(passed.iter().all(|p| *p == relays[0].addr()), "{passed:?}");
    if !passed.is_empty() {
        assert!(
            stderr.contains(&format!("passed over {}", relays[0].addr())),
            "{stderr}"
        );
    }

    // The dry run and `pipeline check` show the pool; a bad address is refused at its line.
    let f = file.clone();
    let out =
        tokio::task::spawn_blocking(move || cli().args(["pipeline", "check"]).arg(&f).output())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("pool:        {}", relays[0].addr())),
        "{stdout}"
    );
    std::fs::write(
        &file,
        "source:\n  local: .\nbuild:\n  images: [r.example.com/app]\n  pool:\n    - tcp://a.example:1234\n    - 'tcp//b.example:1234'\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out =
        tokio::task::spawn_blocking(move || cli().args(["pipeline", "check"]).arg(&file).output())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pipeline.yaml:7:"), "{stderr}");
    assert!(stderr.contains("build.pool[1]"), "{stderr}");
}

/// `build.pool-tls` gives the definition's pool its TLS (paths relative to the definition):
/// a pool behind mutual TLS builds with it and cannot be reached without it; `--tls*` flags
/// replace it as a whole, with a note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_run_reaches_a_tls_pool_with_the_definitions_pool_tls() {
    let env = TestEnv::required();
    let certs = cicd_agents_testenv::TestCerts::generate().unwrap_or_else(|e| panic!("{e}"));
    let relay = cicd_agents_testenv::Relay::tls(&env.docker_sock, &certs)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unique = env.unique_name("cli-pool-tls");
    let dockerfile = format!("FROM {}\nRUN echo {unique} > /id\n", env.base_image);
    cicd_agents_testenv::write_context(dir.path(), [("ctx/Dockerfile", dockerfile.as_str())])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("tls")).unwrap_or_else(|e| panic!("{e}"));
    for (from, to) in [
        (&certs.ca_pem, "ca.pem"),
        (&certs.client_cert, "client.pem"),
        (&certs.client_key, "client-key.pem"),
    ] {
        std::fs::copy(from, dir.path().join("tls").join(to)).unwrap_or_else(|e| panic!("{e}"));
    }
    let head = format!(
        "source:\n  local: .\n  context: ctx\nbuild:\n  images: ['{}/pipeline-tests/{unique}']\n  network: host\n  pool: ['{}']\n",
        env.registry,
        relay.addr()
    );
    let with_tls = dir.path().join("pipeline.yaml");
    std::fs::write(
        &with_tls,
        format!("{head}  pool-tls:\n    ca: tls/ca.pem\n    cert: tls/client.pem\n    key: tls/client-key.pem\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let without_tls = dir.path().join("plain.yaml");
    std::fs::write(&without_tls, &head).unwrap_or_else(|e| panic!("{e}"));

    let run = |file: &Path, extra: &[&str]| {
        let mut command = cli();
        command
            .env_remove("BUILDKIT_HOST")
            .current_dir("/")
            .args(["pipeline", "run"])
            .arg(file)
            .args([
                "--set",
                "image-tag=tls",
                "--progress",
                "quiet",
                "--format",
                "json",
            ])
            .args(extra);
        async move {
            tokio::task::spawn_blocking(move || command.output())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };

    let out = run(&with_tls, &[]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["build"]["builder"], relay.addr(), "{stdout}");

    // Without the block the daemon cannot be reached.
    let out = run(&without_tls, &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(relay.addr()), "{stderr}");

    // The command line's TLS replaces the block: no client certificate, refused.
    let out = run(&with_tls, &["--tls-skip-verify"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("build.pool-tls is not used"), "{stderr}");
}
