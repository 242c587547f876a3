//! Dockerfile builds end to end against the real BuildKit of the test
//! environment: local and git contexts, `.dockerignore`, stages, build args,
//! secrets, exporters, registry push, progress, errors and cancellation.
//! Most run over `docker://` (the `/session` door); one runs over a unix
//! relay, where the session travels inside `Control.Session`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cicd_agents_buildkit::build::{BuildOptions, Output};
use cicd_agents_buildkit::flags::NetworkMode;
use cicd_agents_buildkit::progress::StatusUpdate;
use cicd_agents_buildkit::{Client, Error, Secret};
use cicd_agents_testenv::{cli, context_dir, manifest_digest, write_context, Relay, TestEnv};

async fn client(env: &TestEnv) -> Client {
    Client::connect(&env.docker_addr).await.expect("connect")
}

/// A child process killed and reaped when the test ends, however it ends.
struct ReapOnDrop(std::process::Child);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
                found.insert(format!("{relative}/"));
            } else {
                found.insert(relative);
            }
        }
    }
    found
}

#[tokio::test]
async fn dockerignore_exceptions_and_double_star_in_a_local_export() {
    let env = TestEnv::required();
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY . /\n"),
        (
            ".dockerignore",
            "# comment\nsecret\n**/*.log\n!keep.log\nbuild/\n!build/keep-me\n",
        ),
        ("src/main.txt", env.unique_name("main").as_str()),
        ("src/deep/er/trace.log", "no"),
        ("keep.log", "yes"),
        ("secret/key", "no"),
        ("build/out.bin", "no"),
        ("build/keep-me", "yes"),
        ("spaced name/ünïcødé.txt", "yes"),
    ]);
    std::os::unix::fs::symlink("src/main.txt", context.path().join("link")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options =
        BuildOptions::local(context.path()).output(Output::local(out.path().join("export")));
    let result = client(&env).await.build(&options).await.expect("build");
    let found = files_under(&out.path().join("export"));
    let expected: BTreeSet<String> = [
        ".dockerignore",
        "Dockerfile",
        "src/",
        "src/main.txt",
        "src/deep/",
        "src/deep/er/",
        "keep.log",
        "build/",
        "build/keep-me",
        "spaced name/",
        "spaced name/ünïcødé.txt",
        "link",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(found, expected);
    let link = std::fs::read_link(out.path().join("export/link")).unwrap();
    assert_eq!(
        link,
        Path::new("src/main.txt"),
        "symlinks are sent as links"
    );
    let original = std::fs::metadata(context.path().join("src/main.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let exported = std::fs::metadata(out.path().join("export/src/main.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        original, exported,
        "nanosecond mtimes survive the round trip"
    );
    assert!(result.context_transfer.files >= 1);
}

#[tokio::test]
async fn multi_stage_target_build_args_and_run_on_busybox() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {base} AS builder\nARG GREETING=unset\nRUN echo \"$GREETING from $(uname -s)\" > /greeting\n\
         FROM scratch AS picked\nCOPY --from=builder /greeting /greeting\n\
         FROM scratch AS other\nCOPY --from=builder /etc /etc\n",
        base = env.base_image
    );
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = BuildOptions::local(context.path())
        .target("picked")
        .build_arg("GREETING", "hello")
        .network(NetworkMode::Host)
        .output(Output::local(out.path()));
    client(&env).await.build(&options).await.expect("build");
    assert_eq!(
        std::fs::read_to_string(out.path().join("greeting")).unwrap(),
        "hello from Linux\n"
    );
    assert!(!out.path().join("etc").exists(), "--target picked a stage");
}

#[tokio::test]
async fn secret_is_usable_but_absent_from_the_image() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let secret_value = format!("s3cr3t-{}", env.unique_name("v"));
    let dockerfile = format!(
        "FROM {base}\nRUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = \"{expected}\" && echo ok > /checked\n",
        base = env.base_image,
        expected = secret_value,
    );
    // The expected value also sits in the Dockerfile; the image must not carry it.
    write_context(
        context.path(),
        [(
            "Dockerfile",
            dockerfile.replace(&secret_value, "$EXPECTED").as_str(),
        )],
    )
    .unwrap();
    let dockerfile_with_arg = format!(
        "FROM {base}\nARG EXPECTED\nRUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = \"$EXPECTED_HASH\" || test -s /run/secrets/token && echo ok > /checked\n",
        base = env.base_image
    );
    write_context(
        context.path(),
        [("Dockerfile", dockerfile_with_arg.as_str())],
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("image.tar");
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .secret(Secret::value("token", secret_value.clone()))
        .output(Output::local(out.path().join("fs")))
        .output(Output::oci_tar(&tarball))
        .tag("secret/test:1");
    client(&env).await.build(&options).await.expect("build");
    assert_eq!(
        std::fs::read_to_string(out.path().join("fs/checked")).unwrap(),
        "ok\n"
    );
    assert!(!out.path().join("fs/run/secrets/token").exists());
    for path in files_under(&out.path().join("fs")) {
        let full = out.path().join("fs").join(&path);
        if full.is_file() {
            let bytes = std::fs::read(&full).unwrap_or_default();
            assert!(
                !contains(&bytes, secret_value.as_bytes()),
                "{path} holds the secret"
            );
        }
    }
    let tar = std::fs::read(&tarball).unwrap();
    assert!(
        !contains(&tar, secret_value.as_bytes()),
        "the OCI image (config, history) holds the secret"
    );
    assert!(contains(&tar, b"oci-layout"), "an OCI layout tarball");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn push_returns_the_registry_digest_and_metadata_file_matches() {
    let env = TestEnv::required();
    let marker = env.unique_name("m");
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {marker} > /marker\n", env.base_image).as_str(),
    )]);
    let repo = format!("tests/{}", env.unique_name("push"));
    let image = format!("{}/{repo}:1", env.registry);
    let metadata = context.path().join("metadata.json");
    let output = cli()
        .args([
            "build",
            "--addr",
            &env.docker_addr,
            "--progress",
            "plain",
            "--network",
            "host",
            "--push",
            "-t",
            &image,
        ])
        .arg("--metadata-file")
        .arg(&metadata)
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RUN echo"),
        "plain progress shows the steps:\n{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    let digest = json["containerimage.digest"].as_str().unwrap().to_string();
    assert_eq!(json["image.name"], image.as_str());
    assert_eq!(json["containerimage.descriptor"]["digest"], digest.as_str());
    let registry = manifest_digest(&env.registry, &repo, "1").unwrap();
    assert_eq!(
        registry.as_deref(),
        Some(digest.as_str()),
        "metadata digest equals the registry's"
    );
}

#[tokio::test]
async fn git_context_with_token_and_subdir() {
    let env = TestEnv::required();
    let name = env.unique_name("gitctx");
    let dockerfile = format!(
        "FROM {}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n",
        env.base_image
    );
    let hello = format!("from git {name}\n");
    let url = env
        .seed_repo(
            "gitctx",
            [
                ("svc/Dockerfile", dockerfile.as_str()),
                ("svc/hello.txt", hello.as_str()),
            ],
        )
        .unwrap();

    let token = env.git_token.clone();
    let out = tempfile::tempdir().unwrap();
    let updates = Arc::new(Mutex::new(Vec::<StatusUpdate>::new()));
    let seen = updates.clone();
    let mut sink = move |update: &StatusUpdate| seen.lock().unwrap().push(update.clone());
    let options = BuildOptions::remote(format!("{url}#main:svc"))
        .git_auth_token("127.0.0.1", token.clone())
        .network(NetworkMode::Host)
        .output(Output::local(out.path()));
    client(&env)
        .await
        .build_with_progress(&options, &mut sink)
        .await
        .expect("git build");
    assert_eq!(
        std::fs::read_to_string(out.path().join("hello.txt")).unwrap(),
        format!("from git {name}\n")
    );
    let text = serde_json::to_string(&*updates.lock().unwrap()).unwrap();
    assert!(
        !text.contains(&token),
        "the token appears in progress output"
    );
    assert!(
        text.contains(&format!("from git {name}")),
        "RUN output arrives as progress logs"
    );

    // Without the token the private repository cannot be read.
    let anonymous = BuildOptions::remote(format!("{url}#main:svc")).network(NetworkMode::Host);
    let err = client(&env)
        .await
        .build(&anonymous)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&token));
}

#[tokio::test]
async fn dockerfile_errors_name_the_step_file_and_line() {
    let env = TestEnv::required();
    let context = context_dir([(
        "Dockerfile",
        format!(
            "FROM {}\nRUN echo before-failing\nRUN echo oops-output && exit 3\n",
            env.base_image
        )
        .as_str(),
    )]);
    let options = BuildOptions::local(context.path()).network(NetworkMode::Host);
    let err = client(&env).await.build(&options).await.unwrap_err();
    let Error::Build(build) = &err else {
        panic!("expected a build error, got {err}")
    };
    assert_eq!(build.line, Some(3), "{err}");
    assert_eq!(build.file.as_deref(), Some("Dockerfile"));
    assert!(
        build.step.as_deref().unwrap_or_default().contains("exit 3"),
        "{err}"
    );
    assert!(
        build.log_tail.iter().any(|l| l.contains("oops-output")),
        "{err}"
    );
    assert!(err.to_string().contains("exit code: 3"), "{err}");

    let bad_syntax = tempfile::tempdir().unwrap();
    write_context(
        bad_syntax.path(),
        [("Dockerfile", "FROM scratch\nNOTACOMMAND x\n")],
    )
    .unwrap();
    let err = client(&env)
        .await
        .build(&BuildOptions::local(bad_syntax.path()))
        .await
        .unwrap_err();
    let Error::Build(build) = &err else {
        panic!("expected a build error, got {err}")
    };
    assert_eq!(build.line, Some(2), "{err}");
}

#[tokio::test]
async fn dropping_the_build_cancels_it_on_the_daemon() {
    let env = TestEnv::required();
    let seconds = format!("{}.{}", 90, std::process::id() % 1000);
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN sleep {seconds}\n", env.base_image).as_str(),
    )]);
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .no_cache(true);
    let client = client(&env).await;
    let sleeping = || {
        let output = std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep {seconds}")])
            .output()
            .unwrap();
        !output.stdout.is_empty()
    };
    let build = client.build(&options);
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::pin!(build);
        loop {
            tokio::select! {
                _ = &mut build => panic!("the build finished although it sleeps {seconds}s"),
                _ = tokio::time::sleep(Duration::from_millis(200)) => if sleeping() { break },
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the RUN step never started");
    // The build future is dropped here; the daemon must stop the step.
    let started = Instant::now();
    while sleeping() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the RUN step still runs after cancelling"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the daemon is fine for the next build.
    let quick = tempfile::tempdir().unwrap();
    write_context(
        quick.path(),
        [("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")],
    )
    .unwrap();
    client
        .build(&BuildOptions::local(quick.path()))
        .await
        .expect("build after cancel");
}

#[tokio::test]
async fn local_context_build_through_a_standalone_looking_daemon() {
    let env = TestEnv::required();
    let relay = Relay::unix(&env.docker_sock).await.unwrap();
    let client = Client::connect(relay.addr()).await.unwrap();
    let context = context_dir([
        (
            "Dockerfile",
            format!(
                "FROM {}\nCOPY data /data\nRUN wc -c /data/big > /size\n",
                env.base_image
            )
            .as_str(),
        ),
        ("data/small", "x"),
    ]);
    std::fs::write(
        context.path().join("data/big"),
        vec![7u8; 5 * 1024 * 1024 + 3],
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .output(Output::local(out.path()));
    let result = client
        .build(&options)
        .await
        .expect("build over Control.Session");
    assert_eq!(
        std::fs::read_to_string(out.path().join("size"))
            .unwrap()
            .split_whitespace()
            .next(),
        Some("5242883")
    );
    assert!(result.context_transfer.bytes >= 5 * 1024 * 1024);
}

#[tokio::test]
async fn bad_options_are_clear_errors_before_anything_runs() {
    let env = TestEnv::required();
    let client = client(&env).await;
    let err = client
        .build(&BuildOptions::local("/nonexistent/context"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/context"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    write_context(dir.path(), [("Dockerfile", "FROM scratch\n")]).unwrap();
    let err = client
        .build(&BuildOptions::local(dir.path()).push(true))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("push") && err.contains("image name") && !err.contains("--"),
        "{err}"
    );
    let err = match Output::parse("type=floppy") {
        Err(err) => err.to_string(),
        Ok(output) => client
            .build(&BuildOptions::local(dir.path()).output(output))
            .await
            .unwrap_err()
            .to_string(),
    };
    assert!(err.contains("floppy"), "{err}");
}

#[tokio::test]
async fn ssh_agent_is_forwarded_into_run_steps() {
    let env = TestEnv::required();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client)");
    let agent = ReapOnDrop(agent);
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "ssh-agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = env.unique_name("ssh");
    let context = context_dir(
        [(
            "Dockerfile",
            format!(
                "FROM {}\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo {marker} > /ssh-ok\nRUN --mount=type=ssh,id=other test -S \"$SSH_AUTH_SOCK\" && echo other > /ssh-other\n",
                env.base_image
            )
            .as_str(),
        )],
    );
    let out = tempfile::tempdir().unwrap();
    let spec = format!("default={}", socket.display());
    let other = format!("other={}", socket.display());
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .ssh(cicd_agents_buildkit::SshAgent::parse(&spec).unwrap())
        .ssh(cicd_agents_buildkit::SshAgent::parse(&other).unwrap())
        .output(Output::local(out.path()));
    let result = client(&env).await.build(&options).await;
    drop(agent);
    result.expect("build with ssh forwarding");
    assert_eq!(
        std::fs::read_to_string(out.path().join("ssh-ok"))
            .unwrap()
            .trim(),
        marker
    );
    assert!(out.path().join("ssh-other").exists());

    // A step asking for an agent that was not given fails, naming it.
    let missing = tempfile::tempdir().unwrap();
    write_context(
        missing.path(),
        [(
            "Dockerfile",
            format!(
                "FROM {}\nRUN --mount=type=ssh,id=nope,required=true true\n",
                env.base_image
            )
            .as_str(),
        )],
    )
    .unwrap();
    let err = client(&env)
        .await
        .build(&BuildOptions::local(missing.path()).network(NetworkMode::Host))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") || err.contains("ssh"), "{err}");
}

#[tokio::test]
async fn named_contexts_from_a_directory_and_an_image() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let extra = tempfile::tempdir().unwrap();
    let marker = env.unique_name("named");
    write_context(extra.path(), [("extra.txt", marker.as_str())]).unwrap();
    write_context(
        context.path(),
        [(
            "Dockerfile",
            "FROM scratch\nCOPY --from=assets extra.txt /extra.txt\nCOPY --from=tools /bin/busybox /busybox\n",
        )],
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = BuildOptions::local(context.path())
        .build_context(
            "assets",
            cicd_agents_buildkit::build::NamedContext::Local(extra.path().to_path_buf()),
        )
        .build_context(
            "tools",
            cicd_agents_buildkit::build::NamedContext::parse(&format!(
                "docker-image://{}",
                env.base_image
            ))
            .unwrap(),
        )
        .output(Output::local(out.path()));
    client(&env)
        .await
        .build(&options)
        .await
        .expect("build with named contexts");
    assert_eq!(
        std::fs::read_to_string(out.path().join("extra.txt")).unwrap(),
        marker
    );
    assert!(std::fs::metadata(out.path().join("busybox")).unwrap().len() > 100_000);
}

#[tokio::test]
async fn pushes_to_a_registry_that_needs_a_login() {
    let env = TestEnv::required();
    let marker = env.unique_name("auth");
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {marker} > /m\n", env.base_image).as_str(),
    )]);
    let repo = format!("tests/{marker}");
    let image = format!("{}/{repo}:1", env.auth_registry);

    // From a Docker configuration (`auths` with `auth`), as `docker login` writes it.
    let config_dir = tempfile::tempdir().unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", env.auth_user, env.auth_password));
    std::fs::write(
        config_dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            env.auth_registry
        ),
    )
    .unwrap();
    let from_config = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .tag(&image)
        .push(true)
        .registry_auth(
            cicd_agents_buildkit::RegistryAuth::docker_config().config_dir(config_dir.path()),
        );
    let result = client(&env)
        .await
        .build(&from_config)
        .await
        .expect("push with Docker config credentials");
    assert!(result.digest.is_some());

    // Explicit credentials through the API.
    let explicit = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .tag(format!("{}/{repo}:2", env.auth_registry))
        .push(true)
        .registry_auth(
            cicd_agents_buildkit::RegistryAuth::anonymous().with_credentials(
                &env.auth_registry,
                &env.auth_user,
                &env.auth_password,
            ),
        );
    client(&env)
        .await
        .build(&explicit)
        .await
        .expect("push with explicit credentials");

    // No credentials: the push is refused, and the error names the registry
    // without ever showing a password.
    let anonymous = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .tag(format!("{}/{repo}:3", env.auth_registry))
        .push(true)
        .registry_auth(cicd_agents_buildkit::RegistryAuth::anonymous());
    let err = client(&env)
        .await
        .build(&anonymous)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&env.auth_registry) && err.contains("401"),
        "{err}"
    );
    assert!(!err.contains(&env.auth_password));
}
