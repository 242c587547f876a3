//! Bad input to the real `cicd-agents` binary: malformed addresses, flags, specs, platforms,
//! pipeline definitions, values files and key paths; missing or odd contexts and Dockerfiles.
//!
//! Every case asserts the exit code (2 for bad usage, 1 for a failed build or operation), that
//! nothing panicked, and that stderr names what is wrong (the flag, the value, the file, the
//! line). Contexts whose names have spaces, non-ASCII letters and line breaks must build.
//!
//! Build the binary first: `cargo build -p cicd-agents-cli`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

use cicd_agents_testenv::{cli, write_context, Relay, TestEnv};

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run scripts/testenv.sh up)")
}

/// One bad invocation: its arguments, the exit code it must end with and the texts stderr must
/// contain.
struct Case {
    args: Vec<OsString>,
    envs: Vec<(&'static str, Option<String>)>,
    code: i32,
    needles: Vec<String>,
}

fn case<A: Into<OsString>>(code: i32, args: impl IntoIterator<Item = A>, needles: &[&str]) -> Case {
    Case {
        args: args.into_iter().map(Into::into).collect(),
        envs: Vec::new(),
        code,
        needles: needles.iter().map(|n| n.to_string()).collect(),
    }
}

impl Case {
    fn env(mut self, name: &'static str, value: Option<&str>) -> Case {
        self.envs.push((name, value.map(String::from)));
        self
    }
}

fn run(case: &Case) -> Output {
    let mut command = cli();
    command
        .args(&case.args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("BUILDKIT_HOST");
    for (name, value) in &case.envs {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.output().expect("run cicd-agents")
}

/// Runs every case and reports all failures at once.
fn check_all(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let output = run(case);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!("{:?}", case.args);
        let code = output.status.code();
        if code != Some(case.code) {
            failures.push(format!(
                "{shown}: exit {code:?}, expected {}\n{stderr}",
                case.code
            ));
            continue;
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            failures.push(format!("{shown}: panicked\n{stderr}"));
            continue;
        }
        for needle in &case.needles {
            if !stderr.contains(needle.as_str()) {
                failures.push(format!(
                    "{shown}: stderr does not name {needle:?}\n{stderr}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    context: String,
    file: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write_context(
        &root.join("ctx"),
        [("Dockerfile", "FROM scratch\nCOPY . /\n"), ("a.txt", "a")],
    )
    .unwrap();
    write_context(&root.join("no-dockerfile"), [("a.txt", "a")]).unwrap();
    std::fs::write(root.join("plain-file"), "not a directory").unwrap();
    Fixture {
        context: s(&root.join("ctx")),
        file: s(&root.join("plain-file")),
        root,
        _dir: dir,
    }
}

#[test]
fn malformed_addresses_exit_2_and_name_the_address() {
    let mut cases = Vec::new();
    for address in [
        "bogus",
        "unix://",
        "unix://relative.sock",
        "tcp://host",
        "tcp://:12",
        "tcp://h:99999",
        "tcp://h:0",
        "tcp://h:x",
        "tcp://::1:80",
        "tcp://[::1",
        "tcp://[zz]:1",
        "tcp://h:1/path",
        "http://h:1",
        "docker://docker.sock",
        "tcp://ho st:1",
        "tcp://höst:1",
        "tcp://-bad-:1",
        "tcp://a..b:1",
        "npipe:////./pipe/x",
        "kube-pod://x",
        "docker://tcp://",
        "docker://unix://",
    ] {
        cases.push(case(
            2,
            ["debug", "info", "--addr", address],
            &[&format!("{address:?}")],
        ));
    }
    // User info is refused and never echoed, whatever the scheme.
    cases.push(case(
        2,
        ["debug", "info", "--addr", "ssh://me@host"],
        &["\"ssh://***@host\"", "not supported"],
    ));
    cases.push(case(
        2,
        [
            "debug",
            "info",
            "--addr",
            "tcp://ci:s3cr3tpw@127.0.0.1:1234",
        ],
        &["***@127.0.0.1:1234", "no user name or password"],
    ));
    cases.push(
        case(
            2,
            ["debug", "workers"],
            &["BUILDKIT_HOST", "\"not-an-address\""],
        )
        .env("BUILDKIT_HOST", Some("not-an-address")),
    );
    cases.push(case(2, ["du"], &["DOCKER_HOST"]).env("DOCKER_HOST", Some("tcp://h:x")));
    cases.push(case(
        2,
        [
            "debug",
            "info",
            "--addr",
            "tcp://127.0.0.1:1",
            "--tlscacert",
            "/nonexistent/ca.pem",
        ],
        &["/nonexistent/ca.pem"],
    ));
    // --keepalive INTERVAL,TIMEOUT: malformed, zero, or below the library's 100 ms minimum.
    cases.push(case(
        2,
        ["debug", "info", "--keepalive", "15s"],
        &["--keepalive", "INTERVAL,TIMEOUT"],
    ));
    cases.push(case(
        2,
        ["debug", "info", "--keepalive", "15s,0"],
        &["--keepalive", "longer than zero"],
    ));
    cases.push(case(
        2,
        ["debug", "info", "--keepalive", "soon,1s"],
        &["--keepalive", "\"soon\""],
    ));
    cases.push(case(
        2,
        ["debug", "info", "--keepalive", "50ms,1s"],
        &["keepalive interval", "minimum"],
    ));
    check_all(&cases);
    let leaked = run(&case(
        2,
        [
            "debug",
            "info",
            "--addr",
            "tcp://ci:s3cr3tpw@127.0.0.1:1234",
        ],
        &[],
    ));
    assert!(
        !String::from_utf8_lossy(&leaked.stderr).contains("s3cr3tpw"),
        "the password was echoed"
    );
}

#[test]
fn malformed_build_flags_exit_2_and_name_the_flag_and_value() {
    let env = env();
    let fx = fixture();
    let ctx = fx.context.as_str();
    let root = &fx.root;
    let build = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["build".into(), "--addr".into(), env.docker_addr.clone()];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let with_ctx = |extra: &[&str]| -> Vec<String> {
        let mut args = build(extra);
        args.push(ctx.to_string());
        args
    };
    let nested_dir = s(root);
    let missing_secret = s(&root.join("missing-secret"));
    let missing_agent = s(&root.join("missing-agent.sock"));
    let mut cases = vec![
        // standard input for both the context and the Dockerfile, or a Dockerfile on stdin
        // (stdin is empty here, so not an archive) and --file, as buildx refuses them
        case(2, build(&["-f", "-", "-"]), &["stdin", "--file"]),
        case(
            2,
            build(&["-f", "Dockerfile", "-"]),
            &["ambiguous", "--file"],
        ),
        // --build-arg, --label, --opt
        case(
            2,
            with_ctx(&["--build-arg", "=1"]),
            &["--build-arg", "\"=1\""],
        ),
        case(2, with_ctx(&["--build-arg", ""]), &["--build-arg"]),
        case(2, with_ctx(&["--build-arg", " =x"]), &["--build-arg"]),
        case(2, with_ctx(&["--label", "=x"]), &["--label", "\"=x\""]),
        case(2, with_ctx(&["--opt", "=x"]), &["--opt"]),
        // --platform
        case(
            2,
            with_ctx(&["--platform", "amd65"]),
            &[
                "--platform",
                "\"amd65\"",
                "operating system or architecture",
            ],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux/amd64,"]),
            &["--platform", "empty platform"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux/arm64", "--platform", "linux/*"]),
            &["--platform", "\"linux/*\"", "wildcards"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux/amd65"]),
            &["--platform", "\"linux/amd65\"", "amd65"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linuks/amd64"]),
            &["--platform", "linuks"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux/arm/v7/x"]),
            &["--platform", "linux/arm/v7/x"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux/arm/v-7"]),
            &["--platform", "v-7"],
        ),
        case(
            2,
            with_ctx(&["--platform", "linux amd64"]),
            &["--platform", "\"linux amd64\""],
        ),
        case(2, with_ctx(&["--platform", "linux/ämd64"]), &["--platform"]),
        case(2, with_ctx(&["--platform", "/"]), &["--platform", "\"/\""]),
        case(
            2,
            with_ctx(&["--platform", "linux/amd64,darwin/arm65"]),
            &["--platform", "darwin/arm65"],
        ),
        // --network, --add-host
        case(
            2,
            with_ctx(&["--network", "bridge2"]),
            &["--network", "bridge2"],
        ),
        case(
            2,
            with_ctx(&["--add-host", "nohost"]),
            &["--add-host", "\"nohost\""],
        ),
        case(
            2,
            with_ctx(&["--add-host", ":1.2.3.4"]),
            &["--add-host", ":1.2.3.4"],
        ),
        // --build-context
        case(
            2,
            with_ctx(&["--build-context", "noequals"]),
            &["--build-context", "noequals"],
        ),
        case(
            2,
            with_ctx(&["--build-context", "x="]),
            &["--build-context", "empty value"],
        ),
        case(
            2,
            with_ctx(&["--build-context", "x=oci-layout://foo"]),
            &["--build-context", "oci-layout://foo"],
        ),
        case(
            2,
            with_ctx(&["--build-context", "x=docker-image://"]),
            &["--build-context", "docker-image://"],
        ),
        case(
            2,
            with_ctx(&["--build-context", "x=/nonexistent/named"]),
            &["--build-context", "/nonexistent/named"],
        ),
        case(
            2,
            with_ctx(&["--build-context", &format!("x={}", fx.file)]),
            &["--build-context", "not a directory"],
        ),
        case(
            2,
            with_ctx(&["--build-context", "x=https://u:tok@h/r.git"]),
            &["--build-context", "credentials"],
        ),
        // --secret
        case(
            2,
            with_ctx(&["--secret", &format!("id=npmrc,src={missing_secret}")]),
            &["--secret", "\"npmrc\"", &missing_secret],
        ),
        case(
            2,
            with_ctx(&["--secret", &format!("id=d,src={nested_dir}")]),
            &["--secret", "\"d\"", "is a directory"],
        ),
        case(
            2,
            with_ctx(&["--secret", &format!("id=x,src={},env=Y", fx.file)]),
            &["--secret", "both src= and env="],
        ),
        case(
            2,
            with_ctx(&["--secret", "id=x,type=bogus"]),
            &["--secret", "bogus"],
        ),
        case(
            2,
            with_ctx(&["--secret", "id=x,colour=red"]),
            &["--secret", "colour"],
        ),
        case(
            2,
            with_ctx(&["--secret", "justtext"]),
            &["--secret", "justtext"],
        ),
        case(
            2,
            with_ctx(&["--secret", "id=x,src="]),
            &["--secret", "\"x\""],
        ),
        // --ssh
        case(2, with_ctx(&["--ssh", "=/x.sock"]), &["--ssh", "no ID"]),
        case(
            2,
            with_ctx(&["--ssh", &format!("default={missing_agent}")]),
            &["--ssh", "\"default\"", &missing_agent],
        ),
        case(
            2,
            with_ctx(&["--ssh", &format!("default={}", fx.file)]),
            &["--ssh", "is a file"],
        ),
        case(
            2,
            with_ctx(&["--ssh", &format!("default={nested_dir}")]),
            &["--ssh", "not a unix socket"],
        ),
        case(
            2,
            with_ctx(&["--ssh", "a=/x.sock,/y.sock"]),
            &["--ssh", "one agent socket"],
        ),
        case(
            2,
            with_ctx(&["--ssh", "default"]),
            &["--ssh", "SSH_AUTH_SOCK"],
        )
        .env("SSH_AUTH_SOCK", None),
        // -o/--output
        case(2, with_ctx(&["-o", "type="]), &["--output", "empty type="]),
        case(
            2,
            with_ctx(&["-o", "type=nonsense"]),
            &["--output", "nonsense"],
        ),
        case(
            2,
            with_ctx(&["-o", "type=local"]),
            &["--output", "dest=DIR"],
        ),
        case(
            2,
            with_ctx(&["-o", "type=local,dest=-"]),
            &["--output", "stdout"],
        ),
        case(2, with_ctx(&["-o", "type=tar"]), &["--output", "dest=FILE"]),
        case(
            2,
            with_ctx(&["-o", "-", "-o", "type=tar,dest=-"]),
            &["--output", "only one output"],
        ),
        case(2, with_ctx(&["-o", "name=x"]), &["--output", "no type="]),
        case(
            2,
            with_ctx(&["-o", "type=image"]),
            &["--output", "type=image needs name="],
        ),
        case(
            2,
            with_ctx(&["-o", "type=image,name=x,push=maybe"]),
            &["--output", "push=\"maybe\""],
        ),
        case(
            2,
            with_ctx(&["-o", "type=tar,dest=a,dest=b"]),
            &["--output", "dest is given twice"],
        ),
        case(2, with_ctx(&["-o", ""]), &["--output", "empty value"]),
        case(
            2,
            with_ctx(&["-o", "type=local,=x"]),
            &["--output", "empty key"],
        ),
        case(2, with_ctx(&["--push"]), &["--push", "image name"]),
        // the flags buildx 0.13 has: --attest, --provenance, --sbom, --annotation,
        // --shm-size, --ulimit, --cgroup-parent, --builder
        case(
            2,
            with_ctx(&["--attest", "mode=max"]),
            &["--attest", "no type="],
        ),
        case(
            2,
            with_ctx(&["--attest", "type=slsa"]),
            &["--attest", "slsa"],
        ),
        case(
            2,
            with_ctx(&["--provenance", "mode=huge"]),
            &["--attest", "huge"],
        ),
        case(
            2,
            with_ctx(&["--sbom", "true", "--attest", "type=sbom"]),
            &["--attest", "second sbom"],
        ),
        case(
            2,
            with_ctx(&["--annotation", "layer:a=1"]),
            &["--annotation", "layer"],
        ),
        case(
            2,
            with_ctx(&["--annotation", "novalue"]),
            &["--annotation", "key=value"],
        ),
        case(
            2,
            with_ctx(&["--shm-size", "lots"]),
            &["--shm-size", "lots"],
        ),
        case(
            2,
            with_ctx(&["--ulimit", "files=1"]),
            &["--ulimit", "files"],
        ),
        case(
            2,
            with_ctx(&["--ulimit", "nofile=5:2"]),
            &["--ulimit", "exceeds the hard limit"],
        ),
        case(2, with_ctx(&["--cgroup-parent", " "]), &["--cgroup-parent"]),
        case(
            2,
            with_ctx(&["--builder", "mybuilder"]),
            &["--builder", "mybuilder", "--addr"],
        ),
        // --cache-to / --cache-from
        case(
            2,
            with_ctx(&["--cache-to", "type=registry"]),
            &["--cache-to", "ref="],
        ),
        case(
            2,
            with_ctx(&["--cache-to", "type=registry,ref=r/a:c,mode=huge"]),
            &["--cache-to", "huge"],
        ),
        case(
            2,
            with_ctx(&["--cache-to", "type=floppy"]),
            &["--cache-to", "floppy"],
        ),
        case(
            2,
            with_ctx(&["--cache-to", "type=local,dest=/tmp/c"]),
            &["--cache-to", "type=local"],
        ),
        case(
            2,
            with_ctx(&["--cache-to", ""]),
            &["--cache-to", "empty value"],
        ),
        case(
            2,
            with_ctx(&[
                "--cache-to",
                "type=registry,ref=a",
                "--cache-to",
                "type=registry,ref=b",
            ]),
            &["--cache-to", "two cache exports"],
        ),
        case(
            2,
            with_ctx(&["--cache-from", "type=floppy"]),
            &["--cache-from", "floppy"],
        ),
        case(
            2,
            with_ctx(&["--cache-from", "type=registry"]),
            &["--cache-from", "ref="],
        ),
        case(
            2,
            with_ctx(&["--cache-from", "type=registry,ref=x,ref=y"]),
            &["--cache-from", "twice"],
        ),
        // --progress
        case(
            2,
            with_ctx(&["--progress", "bogus"]),
            &["--progress", "bogus"],
        ),
        // the context and the Dockerfile
        case(
            2,
            build(&["/nonexistent/context"]),
            &["context", "/nonexistent/context", "no such directory"],
        ),
        case(
            2,
            build(&[&fx.file]),
            &["context", &fx.file, "not a directory"],
        ),
        case(
            2,
            build(&[&s(&root.join("no-dockerfile"))]),
            &["--file", "no-dockerfile/Dockerfile", "no such Dockerfile"],
        ),
        case(
            2,
            with_ctx(&["-f", "/nonexistent/Dockerfile.dev"]),
            &["--file", "/nonexistent/Dockerfile.dev"],
        ),
        case(
            2,
            with_ctx(&["-f", &nested_dir]),
            &["--file", "is a directory"],
        ),
        // an empty standard input is an empty Dockerfile
        case(2, with_ctx(&["-f", "-"]), &["--file", "empty"]),
        case(
            2,
            build(&["https://user:tok@example.invalid/app.git"]),
            &["context", "credentials"],
        ),
        // clap's own usage errors
        case(2, ["build"], &["<CONTEXT>"]),
        case(2, with_ctx(&["--no-such-flag"]), &["--no-such-flag"]),
        case(2, build(&["--platform"]), &["--platform"]),
        case(2, ["no-such-command"], &["no-such-command"]),
        case(2, ["prune", "--keep-duration"], &["--keep-duration"]),
        case(
            2,
            ["prune", "--keep-duration", "5x"],
            &["--keep-duration", "5x"],
        ),
        case(
            2,
            ["prune", "--keep-duration", "99999999999999999999999d"],
            &["--keep-duration", "too long"],
        ),
        case(
            2,
            ["prune", "--keep-storage", "10QB"],
            &["--keep-storage", "10QB"],
        ),
        case(2, ["prune", "--keep-storage", "1e999"], &["--keep-storage"]),
        case(2, ["du", "--format", "yaml"], &["--format", "yaml"]),
    ];
    // Arguments that are not UTF-8.
    {
        use std::os::unix::ffi::OsStringExt;
        let not_utf8 = OsString::from_vec(b"ctx-\xff".to_vec());
        cases.push(case(
            2,
            [OsString::from("build"), not_utf8.clone()],
            &["UTF-8"],
        ));
        cases.push(case(
            2,
            [
                OsString::from("build"),
                "--platform".into(),
                not_utf8,
                ctx.into(),
            ],
            &["UTF-8"],
        ));
    }
    // Unknown flags of other commands.
    for command in [
        ["du", "--bogus"],
        ["debug", "--bogus"],
        ["chart", "--bogus"],
        ["pipeline", "--bogus"],
    ] {
        cases.push(case(2, command, &["--bogus"]));
    }
    check_all(&cases);
}

const PIPELINE: &str = "name: demo\nsource:\n  git: https://git.example.com/app.git\nbuild:\n  images:\n    - r.example.com/app:${image-tag}\nparameters:\n  image-tag: latest\n";

#[test]
fn bad_pipeline_definitions_exit_2_with_file_and_line() {
    let fx = fixture();
    let write = |name: &str, text: &[u8]| -> String {
        let path = fx.root.join(name);
        std::fs::write(&path, text).unwrap();
        s(&path)
    };
    let good = write("good.yaml", PIPELINE.as_bytes());
    let check = |file: &str| vec!["pipeline".to_string(), "check".into(), file.to_string()];
    let cases = vec![
        case(
            2,
            check("/nonexistent/pipeline.yaml"),
            &["/nonexistent/pipeline.yaml"],
        ),
        case(2, check(&s(&fx.root)), &[&s(&fx.root)]),
        case(
            2,
            check(&write("syntax.yaml", b"name: demo\nbuild: [x\n")),
            &["syntax.yaml:3", "not valid YAML"],
        ),
        case(
            2,
            check(&write(
                "typo.yaml",
                PIPELINE.replace("  images:", "  imgaes:").as_bytes(),
            )),
            &["typo.yaml:5:3", "build.imgaes"],
        ),
        case(
            2,
            check(&write(
                "dup.yaml",
                format!("{PIPELINE}name: again\n").as_bytes(),
            )),
            &["dup.yaml:9", "duplicate key `name`"],
        ),
        case(
            2,
            check(&write(
                "nosource.yaml",
                b"name: demo\nbuild:\n  images: [r/a]\n",
            )),
            &["nosource.yaml", "source"],
        ),
        case(2, check(&write("empty.yaml", b"")), &["empty.yaml"]),
        case(
            2,
            check(&write("binary.yaml", b"name: \xff\xfe\x00\n")),
            &["binary.yaml"],
        ),
        case(
            2,
            check(&write(
                "tabs.yaml",
                b"name: demo\nbuild:\n\timages: [r/a]\n",
            )),
            &["tabs.yaml:3"],
        ),
        case(
            2,
            check(&write(
                "param.yaml",
                PIPELINE.replace("${image-tag}", "${nope}").as_bytes(),
            )),
            &["param.yaml:6", "nope"],
        ),
        case(
            2,
            check(&write("list.yaml", b"- a\n- b\n")),
            &["list.yaml:1"],
        ),
        case(
            2,
            check(&write(
                "badtype.yaml",
                PIPELINE
                    .replace(
                        "  images:\n    - r.example.com/app:${image-tag}",
                        "  images: {a: b}",
                    )
                    .as_bytes(),
            )),
            &["badtype.yaml:5", "build.images"],
        ),
        case(
            2,
            ["pipeline", "check", &good, "--set", "noequals"],
            &["noequals"],
        ),
        case(
            2,
            [
                "pipeline",
                "run",
                &good,
                "--dry-run",
                "--retry-timeout",
                "2w",
            ],
            &["--retry-timeout", "unknown unit"],
        ),
        case(
            2,
            ["pipeline", "check", &good, "--set", "unknown-param=1"],
            &["unknown-param"],
        ),
        case(
            2,
            ["pipeline", "check", &good, "--set", "image-tag=bad tag!"],
            &["bad tag!"],
        ),
        case(
            2,
            ["pipeline", "run", "/nonexistent/run.yaml", "--dry-run"],
            &["/nonexistent/run.yaml"],
        ),
        case(
            2,
            [
                "pipeline",
                "run",
                &good,
                "--dry-run",
                "--progress",
                "sideways",
            ],
            &["--progress", "sideways"],
        ),
        case(2, ["pipeline", "check"], &["<FILE>"]),
    ];
    let mut cases = cases;
    let wrong_type = write(
        "wrongtype.yaml",
        PIPELINE
            .replace("build:\n", "build:\n  push: maybe\n")
            .as_bytes(),
    );
    cases.push(case(
        2,
        check(&wrong_type),
        &["wrongtype.yaml:5", "build.push"],
    ));
    check_all(&cases);
}

#[test]
fn bad_values_files_and_key_paths_exit_2() {
    let fx = fixture();
    let write = |name: &str, text: &[u8]| -> String {
        let path = fx.root.join(name);
        std::fs::write(&path, text).unwrap();
        s(&path)
    };
    let values = write(
        "values.yaml",
        b"image:\n  repository: r/app\n  tag: \"1.0\"\nlist: [a, b]\n",
    );
    let set = |file: &str, key: &str, value: &str| {
        vec![
            "chart".to_string(),
            "set-image".into(),
            "--file".into(),
            file.to_string(),
            "--key".into(),
            key.into(),
            "--value".into(),
            value.into(),
        ]
    };
    let cases = vec![
        case(
            2,
            set("/nonexistent/values.yaml", "image.tag", "2"),
            &["/nonexistent/values.yaml"],
        ),
        case(
            2,
            set(
                &write("broken.yaml", b"image:\n  tag: [1\n"),
                "image.tag",
                "2",
            ),
            &["broken.yaml", "line 3"],
        ),
        case(
            2,
            set(
                &write("latin1.yaml", b"image:\n  tag: \xe9\n"),
                "image.tag",
                "2",
            ),
            &["latin1.yaml", "UTF-8"],
        ),
        case(
            2,
            set(&values, "image.nope", "2"),
            &["image.nope", "`nope` not found", "line 2"],
        ),
        case(
            2,
            set(&values, "image", "2"),
            &["`image`", "mapping", "not a scalar"],
        ),
        case(
            2,
            set(&values, "list[5]", "2"),
            &["list[5]", "out of range"],
        ),
        case(
            2,
            set(&values, "image..tag", "2"),
            &["invalid key path `image..tag`"],
        ),
        case(2, set(&values, "", "2"), &["invalid key path"]),
        case(2, set(&values, "image.tag[", "2"), &["image.tag["]),
        case(
            2,
            set(&values, "image.repository.deeper", "2"),
            &["image.repository.deeper", "scalar"],
        ),
        case(
            2,
            set(&values, "image.tag", "two\nlines"),
            &["image.tag", "invalid image tag"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                &values,
                "--key",
                "image.tag",
                "--key",
                "image.repository",
                "--value",
                "1",
            ],
            &["2 --key but 1 --value"],
        ),
        case(
            2,
            ["chart", "set-image", "--file", &values, "--set", "noequals"],
            &["--set", "noequals"],
        ),
        case(
            2,
            ["chart", "set-image", "--file", &values],
            &["nothing to set"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                &values,
                "--set",
                "image.tag=1",
                "--branch",
                "main",
            ],
            &["--repo"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                "values.yaml",
                "--set",
                "image.tag=1",
                "--repo",
                "ftp://example.invalid/c.git",
            ],
            &["ftp://example.invalid/c.git"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                "values.yaml",
                "--set",
                "image.tag=1",
                "--repo",
                "http://127.0.0.1:9/c.git",
                "--branch",
                "bad..branch",
            ],
            &["bad..branch"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                "values.yaml",
                "--set",
                "image.tag=1",
                "--repo",
                "http://127.0.0.1:9/c.git",
                "--message",
                "deploy {unknown",
            ],
            &["template"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                "values.yaml",
                "--set",
                "image.tag=1",
                "--repo",
                "http://127.0.0.1:9/c.git",
                "--retry-timeout",
                "0",
            ],
            &["--retry-timeout", "longer than zero"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                "values.yaml",
                "--set",
                "image.tag=1",
                "--repo",
                "http://127.0.0.1:9/c.git",
                "--retry-timeout",
                "soon",
            ],
            &["--retry-timeout", "\"soon\" is not a duration"],
        ),
        case(2, ["chart", "set-image"], &["--file"]),
        case(2, ["k8s", "run", "-n", "ci"], &["--git-url"]),
        case(
            2,
            [
                "k8s",
                "render",
                "github-runner",
                "-n",
                "ci",
                "--jit-config-secret",
                "no-colon",
            ],
            &["--jit-config-secret", "no-colon"],
        ),
    ];
    check_all(&cases);
}

/// Builds `context` through the real daemon (docker://, so the shared key travels as an HTTP
/// header) into a local directory and returns the exported marker.
fn build_and_read(env: &TestEnv, context: &Path, dockerfile: Option<&Path>, out: &Path) -> Output {
    let mut command = cli();
    command.args(["build", "--addr", &env.docker_addr, "--progress", "plain"]);
    if let Some(file) = dockerfile {
        command.arg("-f").arg(file);
    }
    command
        .arg("-o")
        .arg(format!("type=local,dest={}", out.display()))
        .arg(context);
    command.output().expect("run cicd-agents")
}

#[test]
fn contexts_named_with_spaces_non_ascii_and_newlines_build() {
    let env = env();
    let root = tempfile::tempdir().unwrap();
    for (index, name) in [
        "with space",
        "ünïcödé-ctx",
        "line\nbreak",
        "tab\tand \"quotes\" 'ü'",
    ]
    .into_iter()
    .enumerate()
    {
        let context = root.path().join(name);
        let marker = env.unique_name("odd-name");
        write_context(
            &context,
            [
                (
                    "Dockerfile",
                    "FROM scratch\nCOPY [\"file with space.txt\", \"/marker\"]\n",
                ),
                ("file with space.txt", marker.as_str()),
            ],
        )
        .unwrap();
        // (`-o` is CSV: a destination with quotes would need CSV quoting, so it is plain.)
        let out = root.path().join(format!("out {index}"));
        let output = build_and_read(&env, &context, None, &out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name:?}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(out.join("marker")).ok(),
            Some(marker),
            "{name:?}: {stderr}"
        );
    }
    // A Dockerfile with a non-ASCII name outside the context.
    let context = root.path().join("plain");
    let marker = env.unique_name("odd-dockerfile");
    write_context(&context, [("m", marker.as_str())]).unwrap();
    let dockerfile = root.path().join("dockerfiles ä\nb").join("Dockerfile.ünï");
    write_context(
        dockerfile.parent().unwrap(),
        [("Dockerfile.ünï", "FROM scratch\nCOPY m /m\n")],
    )
    .unwrap();
    let out = root.path().join("out-dockerfile");
    let output = build_and_read(&env, &context, Some(&dockerfile), &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read_to_string(out.join("m")).ok(), Some(marker));
}

#[test]
fn a_failing_build_exits_1_and_names_the_dockerfile_line() {
    let env = env();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("fails");
    write_context(
        context.path(),
        [(
            "Dockerfile",
            format!("FROM scratch\nCOPY {marker} /nowhere\n").as_str(),
        )],
    )
    .unwrap();
    let output = cli()
        .args([
            "build",
            "--addr",
            &env.docker_addr,
            "--progress",
            "quiet",
            "-o",
            "type=cacheonly",
        ])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&marker) && stderr.contains("Dockerfile:2"),
        "{stderr}"
    );
    // A daemon that is not there is a failure, not bad usage.
    let output = cli()
        .args([
            "debug",
            "info",
            "--addr",
            "unix:///nonexistent/buildkitd.sock",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An unreadable file inside the context. We run as root, which reads any file whatever its
/// mode, so the client runs as `nobody` (setpriv) and reaches the daemon through a TCP relay
/// in front of the Docker daemon's BuildKit (whose socket `nobody` may not open).
#[test]
fn an_unreadable_file_in_the_context_fails_the_build_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let env = env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(1)
        .build()
        .unwrap();
    let relay = runtime
        .block_on(Relay::tcp(&env.docker_sock))
        .expect("tcp relay to the docker socket");
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let context = root.path().join("ctx");
    let marker = env.unique_name("unreadable");
    write_context(
        &context,
        [
            ("Dockerfile", "FROM scratch\nCOPY . /\n"),
            ("secret.txt", marker.as_str()),
        ],
    )
    .unwrap();
    std::fs::set_permissions(&context, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        context.join("Dockerfile"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        context.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    // The relay speaks gRPC to the client and upgrades to the Docker socket's /grpc itself.
    let addr = relay.addr().to_string();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(cicd_agents_testenv::cli_binary())
        .args([
            "build",
            "--addr",
            &addr,
            "--progress",
            "plain",
            "-o",
            "type=cacheonly",
        ])
        .arg(&context)
        .env("HOME", root.path())
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("secret.txt"),
        "the error does not name the unreadable file:\n{stderr}"
    );
    drop(relay);
}

/// Bad values for every subcommand of the real binary: each exits 2 (the exit code comes from
/// the error's kind alone) and names the flag or the key; none echoes user information.
#[test]
fn every_subcommand_refuses_bad_values_with_exit_2_naming_the_flag() {
    let f = fixture();
    let values = f.root.join("values.yaml");
    std::fs::write(&values, "image:\n  tag: \"1\"\n").unwrap();
    let definition = f.root.join("pipeline.yaml");
    std::fs::write(
        &definition,
        "source:\n  git: https://git.example.com/app.git\nbuild:\n  images: [r.example.com/app]\n\
         chart:\n  repo: https://h/c.git\n  branch: deploy.lock\n  values:\n    - file: v.yaml\n      images: [{tag: image.tag}]\n",
    )
    .unwrap();
    let values = s(&values);
    let definition = s(&definition);
    let missing = s(&f.root.join("missing.yaml"));
    let ctx = f.context.as_str();
    let job = [
        "k8s",
        "render",
        "job",
        "--git-url",
        "https://h/r.git",
        "--image",
        "r/app",
    ];
    let k8s_run = [
        "k8s",
        "run",
        "--git-url",
        "https://h/r.git",
        "--image",
        "r/app",
    ];
    let set = [
        "chart",
        "set-image",
        "--file",
        values.as_str(),
        "--key",
        "image.tag",
    ];
    let remote = [&set[..], &["--value", "1", "--repo", "https://h/c.git"]].concat();
    let workflow = [
        "k8s",
        "render",
        "workflow-template",
        "--git-url",
        "https://h/r.git",
        "--image",
        "r/app",
        "--chart-repo",
        "https://h/c.git",
        "--chart-file",
        "v.yaml",
        "--tool-image",
        "t/x:1",
    ];
    let with = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let cases = vec![
        // build
        case(
            2,
            ["build", "-t", "Bad Tag!!", ctx],
            &["--tag", "\"Bad Tag!!\""],
        ),
        case(2, ["build", "-t", "r/App:1", ctx], &["--tag", "lowercase"]),
        case(2, ["build", "-t", "r/a:-1", ctx], &["--tag", "r/a:-1"]),
        case(
            2,
            ["build", "--network", "bridge2", ctx],
            &["--network", "bridge2"],
        ),
        // du, prune, debug
        case(
            2,
            ["du", "--addr", "tcp://user:se/Q7Zx@host:1234"],
            &["\"tcp://***@host:1234\""],
        ),
        case(
            2,
            ["du", "--addr", "tcp://user:se://Q7Zx@host"],
            &["\"tcp://***@host\""],
        ),
        case(2, ["du", "--format", "yaml"], &["--format"]),
        case(2, ["du", "--keepalive", "1"], &["--keepalive"]),
        case(2, ["prune", "--keep-storage", "10XB"], &["--keep-storage"]),
        case(
            2,
            ["prune", "--keep-duration", "soon"],
            &["--keep-duration"],
        ),
        case(
            2,
            ["prune", "--addr", "tcp://u:p/Q7Zx@h:1"],
            &["\"tcp://***@h:1\""],
        ),
        case(
            2,
            ["debug", "info", "--addr", "bogus"],
            &["BuildKit address \"bogus\""],
        ),
        case(2, ["debug", "workers", "--format", "xml"], &["--format"]),
        // chart
        case(
            2,
            with(&set, &["--value", "1", "--set", "novalue"]),
            &["--set"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                &values,
                "--key",
                "image..tag",
                "--value",
                "1",
            ],
            &["key path", "image..tag"],
        ),
        case(
            2,
            [
                "chart",
                "set-image",
                "--file",
                &missing,
                "--key",
                "image.tag",
                "--value",
                "1",
            ],
            &["missing.yaml"],
        ),
        case(
            2,
            with(&remote, &["--branch", "deploy.lock"]),
            &["--branch", "deploy.lock"],
        ),
        case(
            2,
            with(&remote, &["--push-branch", "a..b"]),
            &["--push-branch", "a..b"],
        ),
        case(
            2,
            with(
                &set,
                &["--value", "1", "--repo", "https://u:se/Q7Zx@h/c.git"],
            ),
            &["repository URL", "***@h/c.git"],
        ),
        case(
            2,
            with(&remote, &["--message", "{nope}"]),
            &["template", "{nope}"],
        ),
        // pipeline
        case(2, ["pipeline", "check", &missing], &["missing.yaml"]),
        case(
            2,
            ["pipeline", "check", &definition],
            &["chart.branch", "deploy.lock"],
        ),
        case(
            2,
            ["pipeline", "check", &definition, "--set", "novalue"],
            &["novalue"],
        ),
        case(
            2,
            ["pipeline", "run", &definition],
            &["chart.branch", "deploy.lock"],
        ),
        // k8s render
        case(2, with(&job, &["--tag", "$(id)"]), &["--tag", "$(id)"]),
        case(
            2,
            with(&job, &["--name", "Bad_Name"]),
            &["--name", "Bad_Name"],
        ),
        case(
            2,
            with(&job, &["--git-ref", "a..b"]),
            &["--git-ref", "a..b"],
        ),
        case(
            2,
            ["k8s", "render", "deployment", "--replicas", "0"],
            &["--replicas"],
        ),
        case(
            2,
            ["k8s", "render", "deployment", "--port", "0"],
            &["--port"],
        ),
        case(
            2,
            ["k8s", "render", "pool", "--cache-size", "1.2.3Gi"],
            &["--cache-size", "1.2.3Gi"],
        ),
        case(
            2,
            ["k8s", "render", "pool", "--name", "1pool"],
            &["--name", "1pool"],
        ),
        case(
            2,
            ["k8s", "render", "deployment", "--image", "a b"],
            &["--image", "a b"],
        ),
        case(
            2,
            with(&workflow, &["--chart-branch", "deploy.lock"]),
            &["--chart-branch", "deploy.lock"],
        ),
        case(
            2,
            with(&workflow, &["--default-tag", "$(id)"]),
            &["--default-tag", "$(id)"],
        ),
        case(
            2,
            [
                "k8s",
                "render",
                "github-runner",
                "--jit-config-secret",
                "nokey",
            ],
            &["--jit-config-secret"],
        ),
        case(
            2,
            [
                "k8s",
                "render",
                "github-runner",
                "--jit-config-secret",
                "s:k",
                "--workspace-size",
                "10Q",
            ],
            &["--workspace-size", "10Q"],
        ),
        case(
            2,
            [
                "k8s",
                "render",
                "circleci-runner",
                "--token-secret",
                "s:k",
                "--storage-driver",
                "zfs",
            ],
            &["--storage-driver", "zfs"],
        ),
        case(
            2,
            [
                "k8s",
                "render",
                "circleci-runner",
                "--token-secret",
                "s:k",
                "--ttl",
                "forever",
            ],
            &["--ttl"],
        ),
        // k8s run (refused before any cluster is contacted)
        case(
            2,
            ["k8s", "run", "-f", &missing],
            &["--file", "missing.yaml"],
        ),
        case(2, with(&k8s_run, &["--tag", "$(id)"]), &["--tag", "$(id)"]),
        case(2, with(&k8s_run, &["--timeout", "0s"]), &["--timeout"]),
        case(
            2,
            with(&k8s_run, &["--cleanup", "sometimes"]),
            &["--cleanup"],
        ),
    ];
    check_all(&cases);
    for case in &cases {
        let stderr = String::from_utf8_lossy(&run(case).stderr).into_owned();
        assert!(!stderr.contains("Q7Zx"), "{:?}: {stderr}", case.args);
    }
}

/// The files a build writes (`--metadata-file`, `--iidfile`, `-o type=tar|local,dest=…`) are
/// checked before anything is sent: an unusable one exits 2 naming the flag even though the
/// daemon address cannot be reached (a build that ran first would fail to connect, exit 1).
#[test]
fn unusable_output_destinations_exit_2_before_dialling() {
    let fx = fixture();
    let ctx = fx.context.as_str();
    let under_file = format!("{}/sub/out", fx.file);
    let dir = s(&fx.root);
    let build = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "build".into(),
            "--addr".into(),
            "unix:///nonexistent/cicd-agents-no-daemon.sock".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(ctx.to_string());
        args
    };
    check_all(&[
        case(
            2,
            build(&["--metadata-file", &under_file]),
            &["--metadata-file", "is not a directory"],
        ),
        case(
            2,
            build(&["--metadata-file", &dir]),
            &["--metadata-file", "is a directory"],
        ),
        case(
            2,
            build(&["--iidfile", &dir]),
            &["--iidfile", "is a directory"],
        ),
        case(
            2,
            build(&["-o", &format!("type=tar,dest={dir}")]),
            &["--output", "is a directory"],
        ),
        case(
            2,
            build(&["-o", &format!("type=local,dest={under_file}")]),
            &["--output", "is not a directory"],
        ),
        case(
            2,
            build(&["-o", &format!("type=local,dest={}", fx.file)]),
            &["--output", "is not a directory"],
        ),
    ]);
}

/// `--progress tty` where standard error is not a terminal (here a pipe) is refused as buildx
/// refuses it ("failed to get console: provided file is not a console"), before dialling: exit
/// 2 naming the flag, although the daemon address cannot be reached. `auto` falls back to plain.
#[test]
fn progress_tty_without_a_terminal_exits_2_before_dialling() {
    let fx = fixture();
    let pipeline = fx.root.join("tty.yaml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let no_daemon = "unix:///nonexistent/cicd-agents-no-daemon.sock";
    let needles = &["--progress \"tty\"", "not a terminal", "plain"];
    check_all(&[
        case(
            2,
            [
                "build",
                "--addr",
                no_daemon,
                "--progress",
                "tty",
                fx.context.as_str(),
            ],
            needles,
        ),
        case(
            2,
            [
                "pipeline",
                "run",
                &s(&pipeline),
                "--addr",
                no_daemon,
                "--progress",
                "tty",
            ],
            needles,
        ),
        // `auto` is plain here: the build gets as far as dialling (exit 1, no daemon).
        case(
            1,
            [
                "build",
                "--addr",
                no_daemon,
                "--progress",
                "auto",
                fx.context.as_str(),
            ],
            &["nonexistent"],
        ),
    ]);
}
