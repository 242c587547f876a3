use super::*;
use crate::values::{DigestPin, KeyPath};
use cicd_agents_buildkit::flags::{NetworkMode, Platform};

const FULL: &str = r#"# demo pipeline
name: demo
parameters:
  image-tag: latest
  registry: 127.0.0.1:5055
source:
  git: http://127.0.0.1:8418/demo-app.git
  context: app
  token-env: GIT_TOKEN
build:
  images:
    - ${registry}/demo/app:${image-tag}
    - ${registry}/mirror/app
  cache: ${registry}/demo/app:buildcache
  network: host
  build-args:
    BASE_IMAGE: ${registry}/base/busybox:1
    LITERAL: $HOME and $${registry}
chart:
  repo: http://127.0.0.1:8418/demo-chart.git
  token-file: secrets/token
  author: {name: bot, email: bot@example.com}
  message: "deploy {image}:{new_tag} (${image-tag})"
  retry-timeout: 5m
  values:
    - file: charts/demo/values.yaml
      images:
        - repository: image.repository
          tag: image.tag
          digest: image.digest
        - tag: mirror.tag
          image: ${registry}/mirror/app
          digest: in-tag
"#;

fn parse(text: &str) -> Result<PipelineDefinition, DefinitionError> {
    PipelineDefinition::parse(text, "p.yaml")
}

fn err_of(text: &str) -> String {
    match parse(text).and_then(|d| d.resolve(Vec::<(String, String)>::new())) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn resolve(text: &str, overrides: &[(&str, &str)]) -> Pipeline {
    match parse(text).and_then(|d| d.resolve(overrides.iter().copied())) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

const MINIMAL: &str =
    "source:\n  git: https://git.example.com/app.git\nbuild:\n  images: [r.example.com/app]\n";

#[test]
fn full_definition_resolves() {
    let def = match parse(FULL) {
        Ok(d) => d.with_base_dir("/etc/pipelines"),
        Err(e) => panic!("{e}"),
    };
    let params = def.parameters();
    assert_eq!(params["git-ref"], "refs/heads/main");
    assert_eq!(params["dockerfile"], "Dockerfile");
    assert_eq!(params["registry"], "127.0.0.1:5055");
    let p = match def.resolve([("image-tag", "1.10")]) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(p.name, "demo");
    assert_eq!(
        p.source.buildkit_context(),
        "http://127.0.0.1:8418/demo-app.git#refs/heads/main:app"
    );
    assert_eq!(p.source.token, Some(TokenSource::Env("GIT_TOKEN".into())));
    let images: Vec<String> = p.build.images.iter().map(ToString::to_string).collect();
    assert_eq!(
        images,
        [
            "127.0.0.1:5055/demo/app:1.10",
            "127.0.0.1:5055/mirror/app:1.10"
        ]
    );
    assert_eq!(p.build.images[0].repository, "127.0.0.1:5055/demo/app");
    assert_eq!(p.build.dockerfile, "Dockerfile");
    assert!(p.build.push);
    let cache = p.build.cache.clone().unwrap_or_else(|| panic!("no cache"));
    assert_eq!(
        (
            cache.reference.as_str(),
            cache.mode.as_str(),
            cache.import,
            cache.export
        ),
        ("127.0.0.1:5055/demo/app:buildcache", "max", true, true)
    );
    assert_eq!(p.build.network, Some(NetworkMode::Host));
    assert_eq!(
        p.build.build_args["BASE_IMAGE"],
        "127.0.0.1:5055/base/busybox:1"
    );
    assert_eq!(p.build.build_args["LITERAL"], "$HOME and ${registry}");
    let chart = p.chart.clone().unwrap_or_else(|| panic!("no chart"));
    assert_eq!(chart.branch, "main");
    assert_eq!(
        chart.token,
        Some(TokenSource::File("/etc/pipelines/secrets/token".into()))
    );
    assert_eq!(chart.author.name, "bot");
    assert_eq!(
        chart.message.as_deref(),
        Some("deploy {image}:{new_tag} (1.10)")
    );
    assert_eq!(
        chart.retry_timeout,
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(
        chart.retry_policy().timeout,
        std::time::Duration::from_secs(300)
    );
    assert_eq!(chart.values[0].images[0].keys.tag.to_string(), "image.tag");
    assert_eq!(
        chart.values[0].images[0].keys.digest,
        DigestPin::Key(KeyPath::parse("image.digest").unwrap_or_else(|e| panic!("{e}")))
    );
    assert_eq!(chart.values[0].images[1].image, 1);
    assert_eq!(chart.values[0].images[1].keys.digest, DigestPin::InTag);
    // The report form serialises.
    let json = serde_json::to_string(&p).unwrap_or_default();
    assert!(json.contains("\"127.0.0.1:5055/demo/app:1.10\""), "{json}");
    assert!(json.contains("\"retry_timeout_seconds\":300.0"), "{json}");
}

#[test]
fn defaults_and_values_read_as_written() {
    let p = resolve(MINIMAL, &[]);
    assert_eq!(p.build.images[0].to_string(), "r.example.com/app:latest");
    assert_eq!(
        p.source.buildkit_context(),
        "https://git.example.com/app.git#refs/heads/main"
    );
    assert_eq!(p.name, "p");
    assert!(p.chart.is_none());
    // `1.10` in the file is the text 1.10, not the number 1.1.
    let text = format!("parameters:\n  image-tag: 1.10\n{MINIMAL}");
    assert_eq!(resolve(&text, &[]).build.images[0].tag.as_str(), "1.10");
    let p = resolve(
        MINIMAL,
        &[("git-ref", "v1.2"), ("dockerfile", "build/Dockerfile")],
    );
    assert_eq!(
        p.source.buildkit_context(),
        "https://git.example.com/app.git#v1.2"
    );
    assert_eq!(p.build.dockerfile, "build/Dockerfile");
}

#[test]
fn local_sources_are_relative_to_the_file() {
    let text = "source:\n  local: ./app\n  context: sub\nbuild:\n  images: [app]\n  push: false\n";
    let p = match parse(text)
        .map(|d| d.with_base_dir("/work/x"))
        .and_then(|d| d.resolve(Vec::<(&str, &str)>::new()))
    {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        p.source.local_context_dir(),
        Some(PathBuf::from("/work/x/./app/sub"))
    );
    assert!(!p.build.push);
}

/// Asserts that `err` names the key and the line (and the file).
fn assert_names(err: &str, key: &str, line: usize) {
    assert!(
        err.starts_with(&format!("p.yaml:{line}:")),
        "expected line {line}: {err}"
    );
    assert!(
        err.contains(&format!("`{key}`")),
        "expected key `{key}`: {err}"
    );
}

#[test]
fn unknown_keys_name_key_and_line() {
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  imgaes: [b]\n");
    assert_names(&err, "build.imgaes", 5);
    assert!(err.contains("expected one of: dockerfile, images"), "{err}");
    let err = err_of(&format!("{MINIMAL}chartt: {{}}\n"));
    assert_names(&err, "chartt", 5);
    let text = format!(
        "{MINIMAL}chart:\n  repo: https://h/c.git\n  values:\n    - file: v.yaml\n      images:\n        - tag: image.tag\n          tga: x\n"
    );
    assert_names(&err_of(&text), "chart.values[0].images[0].tga", 11);
}

#[test]
fn wrong_types_name_key_and_line() {
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  push: \"yes\"\n");
    assert_names(&err, "build.push", 5);
    assert!(
        err.contains("expected a boolean (true or false), found string"),
        "{err}"
    );
    let err = err_of("source:\n  git: {url: x}\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.git", 2);
    assert!(err.contains("expected a string, found mapping"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: a\n");
    assert_names(&err, "build.images", 4);
    assert!(err.contains("expected a list"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [[a]]\n");
    assert_names(&err, "build.images[0]", 4);
    let err = err_of("source: https://h/a.git\nbuild:\n  images: [a]\n");
    assert_names(&err, "source", 1);
    assert!(err.contains("expected a mapping, found string"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  no-cache: 1\n");
    assert!(err.contains("found integer"), "{err}");
}

#[test]
fn missing_and_duplicate_keys() {
    let err = err_of("source:\n  context: x\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.git (or source.local)", 2);
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  push: true\n");
    assert!(err.contains("missing required key `build.images`"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  images: [b]\n");
    assert_names(&err, "build.images", 5);
    assert!(err.contains("first at line 4"), "{err}");
    let err = err_of(&format!("{MINIMAL}chart:\n  repo: https://h/c.git\n"));
    assert!(err.contains("missing required key `chart.values`"), "{err}");
}

#[test]
fn inline_tokens_are_refused() {
    let err =
        err_of("source:\n  git: https://h/a.git\n  token: ghp_secret\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.token", 3);
    assert!(err.contains("inline tokens are not allowed"), "{err}");
    assert!(!err.contains("ghp_secret"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\n  token-env: A\n  token-file: /b\nbuild:\n  images: [a]\n");
    assert!(err.contains("not both"), "{err}");
    let err = err_of("source:\n  git: https://user:pw@h/a.git\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.git", 2);
    assert!(!err.contains("pw@"), "{err}");
    let err = err_of(
        "source:\n  git: https://h/a.git\n  token-env: 'NOT A VAR'\nbuild:\n  images: [a]\n",
    );
    assert_names(&err, "source.token-env", 3);
}

#[test]
fn parameters_and_overrides() {
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: ['r/app:${image_tag}']\n");
    assert_names(&err, "build.images[0]", 4);
    assert!(err.contains("unknown parameter `${image_tag}`"), "{err}");
    let def = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    let err = def
        .resolve([("imagetag", "1")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("unknown parameter `imagetag`"), "{err}");
    assert!(err.contains("dockerfile, git-ref, image-tag"), "{err}");
    let err = def
        .resolve([("image-tag", "bad tag")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("invalid override `image-tag=bad tag`"),
        "{err}"
    );
    let err = def
        .resolve([("git-ref", "main:evil")])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("git-ref"), "{err}");
    let err = err_of("parameters:\n  image-tag: 'no good'\nsource:\n  git: https://h/a.git\nbuild:\n  images: [a]\n");
    assert_names(&err, "parameters.image-tag", 2);
    assert!(parse_override("a=b=c").is_ok_and(|(n, v)| n == "a" && v == "b=c"));
    assert!(parse_override("=x").is_err());
}

#[test]
fn values_are_validated() {
    let err = err_of("source:\n  git: https://h/app\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.git", 2);
    assert!(err.contains(".git"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: ['R/App:1']\n");
    assert!(err.contains("lowercase"), "{err}");
    let err = err_of("source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  network: bridge\n");
    assert_names(&err, "build.network", 5);
    let err = err_of("source:\n  git: https://h/a.git\n  context: ../up\nbuild:\n  images: [a]\n");
    assert_names(&err, "source.context", 3);
    let chart = "chart:\n  repo: https://h/c.git\n  values:\n    - file: v.yaml\n      images:\n        - tag: 'image..tag'\n";
    let err = err_of(&format!("{MINIMAL}{chart}"));
    assert_names(&err, "chart.values[0].images[0].tag", 10);
    let chart = "chart:\n  repo: https://h/c.git\n  message: 'x {nope}'\n  values:\n    - file: v.yaml\n      images: [{tag: image.tag}]\n";
    assert_names(&err_of(&format!("{MINIMAL}{chart}")), "chart.message", 7);
    let chart = "chart:\n  repo: https://h/c.git\n  values:\n    - file: v.yaml\n      images: [{tag: image.tag, image: other}]\n";
    assert_names(
        &err_of(&format!("{MINIMAL}{chart}")),
        "chart.values[0].images[0].image",
        9,
    );
    let chart = "chart:\n  repo: https://h/c.git\n  retry-timeout: soon\n  values:\n    - file: v.yaml\n      images: [{tag: image.tag}]\n";
    let err = err_of(&format!("{MINIMAL}{chart}"));
    assert_names(&err, "chart.retry-timeout", 7);
    assert!(err.contains("\"soon\" is not a duration"), "{err}");
    let chart = chart.replace("soon", "0s");
    let err = err_of(&format!("{MINIMAL}{chart}"));
    assert_names(&err, "chart.retry-timeout", 7);
    assert!(err.contains("longer than zero"), "{err}");
    let chart = chart.replace("  retry-timeout: 0s\n", "");
    let p = resolve(&format!("{MINIMAL}{chart}"), &[]);
    let chart = p.chart.unwrap_or_else(|| panic!("no chart"));
    assert_eq!(chart.retry_timeout, None);
    assert_eq!(chart.retry_policy(), crate::git::RetryPolicy::default());
    let no_push = "source:\n  git: https://h/a.git\nbuild:\n  images: [a]\n  push: false\nchart:\n  repo: https://h/c.git\n  values:\n    - file: v.yaml\n      images: [{tag: image.tag}]\n";
    assert_names(&err_of(no_push), "build.push", 5);
}

#[test]
fn syntax_errors_have_a_line() {
    let err = err_of("source:\n  git: [unclosed\nbuild:\n  images: [a]\n");
    assert!(err.starts_with("p.yaml:"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
    let err = err_of("");
    assert!(err.contains("missing required key `source`"), "{err}");
}

/// The pipeline definition's `chart.branch` / `chart.push-branch` and the write-back accept
/// exactly the same branch names (they once disagreed on `deploy.lock`, `.hidden/x`, `a#b`).
#[test]
fn definition_and_write_back_accept_the_same_branches() {
    use crate::git::{Author, WriteBack, WriteBackConfig};
    let names = [
        "main",
        "a#b",
        "deploy.lock",
        ".hidden/x",
        "release/1.2",
        "feature/x-y_z",
        "ünïcode",
        "a@b",
        "x.lock.y",
        "a..b",
        "a b",
        "a\tb",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "x@{1}",
        "@",
        "a/",
        "/a",
        "a//b",
        "a.",
        "-a",
        "HEAD",
        "refs/heads/main",
        "x/y.lock",
        "x/.y",
    ];
    let (mut accepted, mut refused) = (0, 0);
    for name in names {
        let quoted = serde_json::to_string(name).unwrap_or_default();
        let chart = format!(
            "chart:\n  repo: https://h/c.git\n  branch: {quoted}\n  push-branch: {quoted}\n  values:\n    - file: v.yaml\n      images: [{{tag: image.tag}}]\n"
        );
        let definition = parse(&format!("{MINIMAL}{chart}"))
            .and_then(|d| d.resolve(Vec::<(String, String)>::new()));
        let author = Author {
            name: "bot".into(),
            email: "bot@example.com".into(),
        };
        let mut config = WriteBackConfig::new("https://h/c.git", name, author);
        config.push_branch = Some(name.to_string());
        let write_back = WriteBack::new(config);
        assert_eq!(
            definition.is_ok(),
            write_back.is_ok(),
            "{name:?}: definition {:?}, write-back {:?}",
            definition.err().map(|e| e.to_string()),
            write_back.err().map(|e| e.to_string()),
        );
        if write_back.is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        accepted >= 5 && refused >= 20,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn buildx_flags_are_read_typed_and_reach_the_build() {
    let text = "source:\n  git: https://h/a.git\nbuild:\n  images: [r.example.com/app]\n  pull: true\n  provenance: mode=max\n  sbom: 'generator=r.example.com/scanner:1'\n  annotations:\n    - 'index:org.example.note=${image-tag}'\n  shm-size: 128m\n  ulimits: ['nofile=1024:2048']\n  cgroup-parent: /ci\n";
    let p = resolve(text, &[("image-tag", "7")]);
    let b = &p.build;
    assert!(b.pull);
    assert_eq!(b.attests.len(), 2);
    assert_eq!(b.attests[0].to_string(), "type=provenance,mode=max");
    assert_eq!(b.annotations[0].value, "7");
    assert_eq!(b.shm_size.map(|s| s.bytes()), Some(128 << 20));
    assert_eq!(b.ulimits[0].to_string(), "nofile=1024:2048");
    assert_eq!(b.cgroup_parent.as_deref(), Some("/ci"));
    let options = crate::run::build_options(&p, None);
    assert!(options.pull);
    assert_eq!(options.attests, b.attests);
    assert_eq!(options.ulimits, b.ulimits);
    let plan = crate::run::BuildPlan::of(&p).to_string();
    for line in [
        "pull:        true",
        "attest:      type=provenance,mode=max",
        "attest:      type=sbom,generator=r.example.com/scanner:1",
        "annotation:  index:org.example.note=7",
        "shm-size:    134217728",
        "ulimit:      nofile=1024:2048",
        "cgroup:      /ci",
    ] {
        assert!(plan.contains(line), "{line:?} in\n{plan}");
    }
    let off = resolve(&format!("{MINIMAL}  provenance: false\n"), &[]);
    assert!(off.build.attests[0].disabled);
}

#[test]
fn platforms_are_typed_normalised_and_sent_once() {
    let text = format!(
        "{MINIMAL}  platforms: [linux/x86_64, 'linux/arm64,linux/armhf', linux/amd64, '${{extra}}']\nparameters:\n  extra: linux/arm/v7\n"
    );
    let p = resolve(&text, &[]);
    let shown: Vec<String> = p.build.platforms.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    let options = crate::run::build_options(&p, None);
    assert_eq!(options.platforms, p.build.platforms);
    let plan = crate::run::BuildPlan::of(&p).to_string();
    assert!(
        plan.contains("platforms:   linux/amd64,linux/arm64,linux/arm/v7"),
        "{plan}"
    );
    let local = resolve(&format!("{MINIMAL}  platforms: [local]\n"), &[]);
    assert_eq!(local.build.platforms, [Platform::local()]);
}

#[test]
fn bad_buildx_values_name_key_and_line() {
    for (tail, key, line, needle) in [
        ("  provenance: mode=huge\n", "build.provenance", 5, "huge"),
        ("  sbom: ''\n", "build.sbom", 5, "empty"),
        ("  attest: ['type=slsa']\n", "build.attest[0]", 5, "slsa"),
        (
            "  provenance: true\n  attest: ['type=provenance,mode=max']\n",
            "build.attest[0]",
            6,
            "second provenance",
        ),
        (
            "  annotations: ['layer:a=1']\n",
            "build.annotations[0]",
            5,
            "layer",
        ),
        ("  shm-size: lots\n", "build.shm-size", 5, "lots"),
        (
            "  ulimits: ['nofile=9:1']\n",
            "build.ulimits[0]",
            5,
            "hard limit",
        ),
        (
            "  cgroup-parent: ' '\n",
            "build.cgroup-parent",
            5,
            "cgroup path",
        ),
        (
            "  platforms: [linux/amd64, linux/amd65]\n",
            "build.platforms[1]",
            5,
            "`linux/amd65`: unknown architecture",
        ),
        (
            "  platforms:\n    - linux/arm64\n    - 'linux/arm64,'\n",
            "build.platforms[1]",
            7,
            "empty platform",
        ),
        (
            "  platforms: ['linux/arm/v7/x']\n",
            "build.platforms[0]",
            5,
            "linux/arm/v7/x",
        ),
    ] {
        let err = err_of(&format!("{MINIMAL}{tail}"));
        assert_names(&err, key, line);
        assert!(err.contains(needle), "{needle:?}: {err}");
        assert!(!err.contains("--"), "names a flag: {err}");
    }
}

/// `build.cache` and `build.images` are read with the shared `ImageRef` (distribution's rules,
/// as buildx). The table records what the definition's own checks accepted before (`cache`:
/// non-empty, no spaces, control characters or commas; `images`: lowercase repository path and a
/// valid tag, nothing else) and what it accepts now.
#[test]
fn image_references_follow_the_shared_type() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let long = format!("r.example.com/{}", "a".repeat(250));
    // (reference, cache before, images before, cache now, images now)
    let table: Vec<(String, bool, bool, bool, bool)> = vec![
        ("r.example.com/app:cache".into(), true, true, true, true),
        (
            "127.0.0.1:5055/demo/app:buildcache".into(),
            true,
            true,
            true,
            true,
        ),
        ("app".into(), true, true, true, true),
        ("localhost/app".into(), true, true, true, true),
        ("a/b/c/d:1".into(), true, true, true, true),
        ("Upper.example.com/app:1".into(), true, true, true, true),
        ("[::1]:5000/app".into(), true, true, true, true),
        // A digest: a cache may be imported from one, an image to build cannot have one.
        (
            format!("r.example.com/app@{digest}"),
            true,
            false,
            true,
            false,
        ),
        (
            format!("r.example.com/app:1@{digest}"),
            true,
            false,
            true,
            false,
        ),
        // Refused by both before and now.
        ("".into(), false, false, false, false),
        (
            "r.example.com/app:Bad Tag".into(),
            false,
            false,
            false,
            false,
        ),
        // Accepted before by the cache check only; refused now.
        ("R/App:1".into(), true, false, false, false),
        ("r.example.com/App:1".into(), true, false, false, false),
        ("r.example.com/app:-x".into(), true, false, false, false),
        ("r.example.com/app:".into(), true, false, false, false),
        (
            "r.example.com/app@sha256:abc".into(),
            true,
            false,
            false,
            false,
        ),
        // Accepted before by both; refused now.
        ("r.example.com/a!pp".into(), true, true, false, false),
        ("r..example.com/app".into(), true, true, false, false),
        ("r.example.com//app".into(), true, true, false, false),
        ("https://r.example.com/app".into(), true, true, false, false),
        ("r.example.com/app-".into(), true, true, false, false),
        (long, true, true, false, false),
        // Accepted before by the image check only (it never looked for commas); refused now.
        ("r.example.com/app,x".into(), false, true, false, false),
    ];
    let head = "source:\n  git: https://git.example.com/app.git\nbuild:\n";
    let mut changed = Vec::new();
    for (reference, cache_before, images_before, cache_now, images_now) in &table {
        let cache = format!("{head}  images: [r.example.com/app]\n  cache: '{reference}'\n");
        let images = format!("{head}  images: ['{reference}']\n");
        for (what, text, line, before, now) in [
            ("build.cache", cache, 5, cache_before, cache_now),
            ("build.images[0]", images, 4, images_before, images_now),
        ] {
            let result = parse(&text).and_then(|d| d.resolve(Vec::<(String, String)>::new()));
            match (&result, now) {
                (Ok(_), true) => {}
                (Err(err), false) => assert_names(&err.to_string(), what, line),
                (Ok(_), false) => panic!("{what}: {reference:?} accepted"),
                (Err(err), true) => panic!("{what}: {reference:?} refused: {err}"),
            }
            if before != now {
                changed.push(format!("{what} {reference:?}"));
            }
        }
    }
    // Only ever stricter, never looser.
    assert!(table
        .iter()
        .all(|(_, cb, ib, cn, inow)| (cb >= cn) && (ib >= inow)));
    assert_eq!(changed.len(), 18, "{changed:#?}");
    // The error says what the shared type says.
    let err = err_of(&format!(
        "{head}  images: [r.example.com/app]\n  cache: 'r.example.com/App:1'\n"
    ));
    assert!(
        err.contains("is not an image reference") && err.contains("lowercase"),
        "{err}"
    );
}

const POOL: &str =
    "source:\n  git: https://git.example.com/org/app.git\nbuild:\n  images: [r.example.com/app]\n";

#[test]
fn build_pool_is_a_list_or_one_address() {
    let text = format!(
        "{POOL}  pool:\n    - tcp://buildkitd-0.example:1234\n    - ${{second}}\n  pool-key: team-a\nparameters:\n  second: unix:///run/buildkit/buildkitd.sock\n"
    );
    let pool = resolve(&text, &[]).build.pool.unwrap();
    assert_eq!(
        pool.addresses,
        [
            "tcp://buildkitd-0.example:1234",
            "unix:///run/buildkit/buildkitd.sock"
        ]
    );
    assert_eq!(pool.key.as_deref(), Some("team-a"));

    // One `dns+tcp://` address (a headless Service), normalized as the pool names it.
    let text = format!("{POOL}  pool: dns+tcp://BuildKitd.CI.svc:1234\n");
    let p = resolve(&text, &[]);
    let pool = p.build.pool.clone().unwrap();
    assert_eq!(pool.addresses, ["dns+tcp://buildkitd.ci.svc:1234"]);
    assert_eq!(pool.key, None);
    // The default routing key is the library's: the repository URL without `#ref`.
    let options = crate::run::build_options(&p, None);
    assert_eq!(
        pool.routing_key(&options),
        "https://git.example.com/org/app.git"
    );
    assert!(pool.builder_pool(Default::default()).is_ok());

    // Without `pool` there is none, and the serialized build says nothing of one.
    let p = resolve(POOL, &[]);
    assert!(p.build.pool.is_none());
    assert!(serde_json::to_value(&p.build)
        .unwrap()
        .get("pool")
        .is_none());
}

#[test]
fn build_pool_tls_gives_the_pools_tls_options() {
    let text = format!(
        "{POOL}  pool: [tcp://buildkitd-0.example:1234]\n  pool-tls:\n    ca: certs/ca.pem\n    cert: /etc/ci/${{who}}.pem\n    key: certs/${{who}}-key.pem\n    server-name: buildkitd.example\nparameters:\n  who: client\n"
    );
    let definition = parse(&text).unwrap().with_base_dir("/defs");
    let pool = definition
        .resolve(Vec::<(String, String)>::new())
        .unwrap()
        .build
        .pool
        .unwrap();
    // Relative paths are relative to the definition's directory, as every path in it.
    let expected = cicd_agents_buildkit::TlsOptions::default()
        .ca_cert("/defs/certs/ca.pem")
        .client_cert("/etc/ci/client.pem", "/defs/certs/client-key.pem")
        .server_name("buildkitd.example");
    assert_eq!(pool.tls.as_ref(), Some(&expected));
    assert_eq!(pool.tls_options(), expected);
    let shown = serde_json::to_value(&pool).unwrap();
    assert_eq!(shown["tls"]["server_name"], "buildkitd.example");

    // skip-verify alone turns TLS on, unverified.
    let text = format!("{POOL}  pool: [tcp://a.example:1234]\n  pool-tls: {{skip-verify: true}}\n");
    let pool = resolve(&text, &[]).build.pool.unwrap();
    assert!(pool.tls_options().insecure_skip_verify && pool.tls_options().is_enabled());

    // Without `pool-tls`, no TLS and nothing serialized.
    let pool = resolve(&format!("{POOL}  pool: [tcp://a.example:1234]\n"), &[])
        .build
        .pool
        .unwrap();
    assert_eq!(pool.tls, None);
    assert!(!pool.tls_options().is_enabled());
    assert!(serde_json::to_value(&pool).unwrap().get("tls").is_none());
}

#[test]
fn bad_pool_tls_names_file_and_line() {
    let head = format!("{POOL}  pool: [tcp://a.example:1234]\n  pool-tls:\n");
    for (tls, key, line, says) in [
        (
            "    cert: c.pem\n",
            "build.pool-tls.cert",
            7,
            "without its key",
        ),
        (
            "    ca: ca.pem\n    key: k.pem\n",
            "build.pool-tls.key",
            8,
            "without its certificate",
        ),
        (
            "    server-name: 'not a name'\n",
            "build.pool-tls.server-name",
            7,
            "server name",
        ),
        ("    ca: ''\n", "build.pool-tls.ca", 7, "PEM file"),
        (
            "    skip-verify: maybe\n",
            "build.pool-tls.skip-verify",
            7,
            "boolean",
        ),
        (
            "    tlscacert: ca.pem\n",
            "build.pool-tls.tlscacert",
            7,
            "ca",
        ),
    ] {
        let err = err_of(&format!("{head}{tls}"));
        assert_names(&err, key, line);
        assert!(err.contains(says), "{tls}: {err}");
    }
    // An empty block, a scalar, and the block without a pool.
    let err = err_of(&format!(
        "{POOL}  pool: [tcp://a.example:1234]\n  pool-tls: {{}}\n"
    ));
    assert_names(&err, "build.pool-tls", 6);
    assert!(err.contains("at least one of"), "{err}");
    let err = err_of(&format!(
        "{POOL}  pool: [tcp://a.example:1234]\n  pool-tls: ca.pem\n"
    ));
    assert_names(&err, "build.pool-tls", 6);
    let err = err_of(&format!("{POOL}  pool-tls:\n    ca: ca.pem\n"));
    assert_names(&err, "build.pool-tls", 5);
    assert!(err.contains("only applies with `pool`"), "{err}");
    // A parameter that makes a bad value is refused where it is used.
    let err = err_of(&format!(
        "parameters:\n  name: 'a b'\n{head}    server-name: ${{name}}\n"
    ));
    assert_names(&err, "build.pool-tls.server-name", 9);
}

#[test]
fn bad_pool_addresses_name_file_and_line() {
    // A bad address in the list: its own line.
    let err = err_of(&format!(
        "{POOL}  pool:\n    - tcp://a.example:1234\n    - ftp://b.example:1234\n"
    ));
    assert_names(&err, "build.pool[1]", 7);
    assert!(err.contains("ftp://b.example:1234"), "{err}");
    assert!(err.contains("not a BuildKit address"), "{err}");
    // The schemes it lists are a pool's: the discovery form among them.
    assert!(
        err.contains("supported are unix://, tcp://, docker:// and dns+tcp://"),
        "{err}"
    );

    // A bad DNS address written alone.
    let err = err_of(&format!("{POOL}  pool: dns+tcp://buildkitd.ci.svc\n"));
    assert_names(&err, "build.pool", 5);
    assert!(err.contains("port"), "{err}");

    // A parameter that makes a bad address is refused where it is used.
    let err = err_of(&format!(
        "parameters:\n  pool: 'tcp://'\n{POOL}  pool: ['${{pool}}']\n"
    ));
    assert_names(&err, "build.pool[0]", 7);

    // No userinfo of a refused address is shown.
    let err = err_of(&format!("{POOL}  pool: ['tcp://user:s3cr3t@host']\n"));
    assert!(!err.contains("s3cr3t"), "{err}");

    // Empty, twice, wrong type, a key without a pool.
    let err = err_of(&format!("{POOL}  pool: []\n"));
    assert_names(&err, "build.pool", 5);
    assert!(err.contains("at least one address"), "{err}");
    let err = err_of(&format!(
        "{POOL}  pool:\n    - tcp://a.example:1234\n    - tcp://a.example:1234\n"
    ));
    assert!(err.contains("listed twice"), "{err}");
    let err = err_of(&format!("{POOL}  pool: {{a: b}}\n"));
    assert_names(&err, "build.pool", 5);
    let err = err_of(&format!("{POOL}  pool-key: k\n"));
    assert_names(&err, "build.pool-key", 5);
    let err = err_of(&format!(
        "{POOL}  pool: [tcp://a.example:1234]\n  pool-key: ''\n"
    ));
    assert_names(&err, "build.pool-key", 6);
}

#[test]
fn the_build_plan_shows_the_pool() {
    let text = format!("{POOL}  pool: [tcp://a.example:1234, tcp://b.example:1234]\n");
    let plan = crate::run::Runner::new(resolve(&text, &[])).build_plan();
    assert_eq!(plan.pool, ["tcp://a.example:1234", "tcp://b.example:1234"]);
    assert_eq!(
        plan.pool_key.as_deref(),
        Some("https://git.example.com/org/app.git")
    );
    let shown = plan.to_string();
    assert!(
        shown.contains("pool:        tcp://a.example:1234, tcp://b.example:1234"),
        "{shown}"
    );
    assert!(
        shown.contains("pool-key:    https://git.example.com/org/app.git"),
        "{shown}"
    );
}
