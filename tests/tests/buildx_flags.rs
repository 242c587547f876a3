//! The `docker buildx build` flags added for issue 13 (`--pull`, `--provenance`,
//! `--sbom`, `--attest`, `--annotation`, `--shm-size`, `--ulimit`,
//! `--cgroup-parent`, `--builder`), run through the real `cicd-agents` binary
//! against the test environment's daemon and registry.

use std::path::Path;
use std::process::{Command, Output};

use cicd_agents_testenv::{cli, cli_build, context_dir, write_context, RegistryReader, TestEnv};

fn build(env: &TestEnv) -> Command {
    let mut command = cli_build(env);
    command.args(["--progress", "plain"]);
    command
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the build failed: {stderr}");
    stderr
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Pushes `FROM base` + a `RUN` that reads a secret, with `extra` flags; returns the repository.
fn push_with_secret(env: &TestEnv, secret: &str, marker: &str, extra: &[&str]) -> String {
    let repo = format!("flags/{}", env.unique_name("attest"));
    let context = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo {marker} > /built\n",
        env.base_image
    );
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let output = build(env)
        .env("FLAGS_TEST_TOKEN", secret)
        .args([
            "--network",
            "host",
            "--secret",
            "id=tok,env=FLAGS_TEST_TOKEN",
        ])
        .args(["--build-arg", &format!("MARKER={marker}")])
        .args(["-t", &env.image_ref(&repo, "1"), "--push"])
        .args(extra)
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = succeeded(&output);
    assert!(!stderr.contains(secret), "the secret is in the output");
    repo
}

fn index_of(contents: &cicd_agents_testenv::ImageContents) -> serde_json::Value {
    serde_json::from_slice(&contents.manifests[0]).expect("the first document is JSON")
}

fn attestation_manifests(index: &serde_json::Value) -> usize {
    index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|d| d["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_pushed_image_carries_buildx_default_provenance_and_no_secret() {
    let env = TestEnv::required();
    let secret = format!("s3cr3t-{}", env.unique_name("tok"));
    let marker = env.unique_name("built");
    let repo = push_with_secret(&env, &secret, &marker, &[]);
    let contents = RegistryReader::new(&env.registry)
        .image(&repo, "1")
        .expect("read the pushed image");
    let index = index_of(&contents);
    assert_eq!(
        attestation_manifests(&index),
        1,
        "an index with one attestation manifest, as buildx pushes: {index}"
    );
    assert!(
        contents
            .blobs
            .iter()
            .any(|(_, media, body)| media.contains("in-toto")
                && contains(body, b"https://slsa.dev/provenance")),
        "the provenance statement is in the registry"
    );
    assert!(
        contents.find(marker.as_bytes()).is_some(),
        "the image was read"
    );
    assert_eq!(
        contents.find(secret.as_bytes()),
        None,
        "the secret is in the image"
    );
}

#[test]
fn provenance_max_annotations_and_provenance_false() {
    let env = TestEnv::required();
    let secret = format!("s3cr3t-{}", env.unique_name("tok"));
    let marker = env.unique_name("built");
    let note = env.unique_name("note");
    let repo = push_with_secret(
        &env,
        &secret,
        &marker,
        &[
            "--provenance",
            "mode=max",
            "--annotation",
            &format!("index:org.example.note={note}"),
            "--annotation",
            &format!("manifest:org.example.per-manifest={note}-m"),
        ],
    );
    let contents = RegistryReader::new(&env.registry)
        .image(&repo, "1")
        .unwrap();
    let index = index_of(&contents);
    assert_eq!(
        index["annotations"]["org.example.note"],
        note.as_str(),
        "{index}"
    );
    assert_eq!(attestation_manifests(&index), 1);
    let manifest_annotated = contents.manifests[1..].iter().any(|m| {
        serde_json::from_slice::<serde_json::Value>(m).unwrap()["annotations"]
            ["org.example.per-manifest"]
            == format!("{note}-m").as_str()
    });
    assert!(
        manifest_annotated,
        "the image manifest holds its annotation"
    );
    // mode=max records the build's steps, still without the secret's value.
    assert!(
        contents
            .blobs
            .iter()
            .any(|(_, media, body)| media.contains("in-toto") && contains(body, b"llbDefinition")),
        "mode=max provenance holds the build definition"
    );
    assert_eq!(
        contents.find(secret.as_bytes()),
        None,
        "the secret is in the image"
    );

    let off = push_with_secret(&env, &secret, &marker, &["--provenance=false"]);
    let contents = RegistryReader::new(&env.registry).image(&off, "1").unwrap();
    let doc = index_of(&contents);
    assert_eq!(attestation_manifests(&doc), 0, "no attestation: {doc}");
}

#[test]
fn sbom_with_a_scanner_that_cannot_be_pulled_names_the_image() {
    let env = TestEnv::required();
    let context = context_dir([("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n")]);
    let scanner = format!("{}/flags/{}:1", env.registry, env.unique_name("no-scanner"));
    let repo = format!("flags/{}", env.unique_name("sbom"));
    let output = build(&env)
        .args(["--sbom", &format!("generator={scanner}")])
        .args(["-t", &env.image_ref(&repo, "1"), "--push"])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The error (after the progress lines) says which image could not be pulled.
    let error = stderr
        .find("\nerror: ")
        .map(|at| &stderr[at..])
        .unwrap_or_default();
    assert!(
        error.contains(&scanner),
        "the error names the scanner image {scanner}: {stderr}"
    );
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|err| panic!("{name}: {err}"))
        .trim()
        .to_string()
}

#[test]
fn shm_size_ulimit_and_cgroup_parent_are_seen_inside_run() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let unique = env.unique_name("probe");
    let dockerfile = format!(
        "FROM {} AS probe\n\
         RUN mkdir /out && echo {unique} > /out/unique \
         && df -k /dev/shm | tail -n 1 > /out/shm \
         && ulimit -n > /out/nofile && ulimit -Hn > /out/nofile-hard \
         && cat /proc/self/cgroup > /out/cgroup\n\
         FROM scratch\nCOPY --from=probe /out /\n",
        env.base_image
    );
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("probe");
    let cgroup = env.unique_name("cicdflags");
    let output = build(&env)
        .args(["--network", "host", "--no-cache"])
        .args(["--shm-size", "96m", "--ulimit", "nofile=1234:2345"])
        .args(["--cgroup-parent", &cgroup])
        .args(["-o", &format!("type=local,dest={}", dest.display())])
        .arg(context.path())
        .output()
        .unwrap();
    succeeded(&output);
    assert_eq!(read(&dest, "unique"), unique);
    let shm = read(&dest, "shm");
    let kib: Vec<&str> = shm.split_whitespace().collect();
    assert_eq!(kib.get(1), Some(&"98304"), "df /dev/shm: {shm}");
    assert_eq!(read(&dest, "nofile"), "1234");
    assert_eq!(read(&dest, "nofile-hard"), "2345");
    let cgroups = read(&dest, "cgroup");
    assert!(cgroups.contains(&cgroup), "/proc/self/cgroup: {cgroups}");
}

#[test]
fn pull_is_accepted_and_builder_maps_to_the_address() {
    let env = TestEnv::required();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("pulled");
    let dockerfile = format!("FROM {}\nRUN echo {marker} > /m\n", env.base_image);
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = cli()
        .args([
            "build",
            "--progress",
            "plain",
            "--builder",
            &env.docker_addr,
        ])
        .args(["--pull", "--network", "host"])
        .args(["-o", &format!("type=local,dest={}", out.path().display())])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = succeeded(&output);
    assert_eq!(read(out.path(), "m"), marker);
    assert!(stderr.contains(&env.base_image), "{stderr}");

    // `default` is the Docker daemon, as in buildx.
    let output = cli()
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.docker_sock.display()),
        )
        .env_remove("BUILDKIT_HOST")
        .args(["build", "--progress", "quiet", "--builder", "default"])
        .args(["--network", "host"])
        .args(["-o", "type=cacheonly"])
        .arg(context.path())
        .output()
        .unwrap();
    succeeded(&output);
}
