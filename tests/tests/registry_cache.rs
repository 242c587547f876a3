//! Registry cache that really takes effect: export with `mode=max`, prune the
//! daemon's whole build cache, rebuild with `--cache-from` and see every step
//! come from the imported cache and the same image digest come out.
//!
//! This binary holds one test on purpose: pruning the daemon must not race
//! other builds (cargo runs test binaries one after another).

use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::build::{BuildOptions, CacheEntry};
use cicd_agents_buildkit::flags::{Attest, NetworkMode};
use cicd_agents_buildkit::progress::StatusUpdate;
use cicd_agents_buildkit::{Client, PruneOptions};
use cicd_agents_testenv::{context_dir, manifest_digest, TestEnv};

#[tokio::test]
async fn cache_exported_to_the_registry_is_used_after_a_prune() {
    let env = TestEnv::load().expect("test environment (run scripts/testenv.sh up)");
    let client = Client::connect(&env.docker_addr).await.unwrap();
    let marker = env.unique_name("cache");
    let context = context_dir(
        [
            (
                "Dockerfile",
                format!(
                    "FROM {base}\nRUN echo {marker} > /first\nCOPY app.txt /app.txt\nRUN cat /app.txt /first > /combined\n",
                    base = env.base_image
                )
                .as_str(),
            ),
            ("app.txt", "application\n"),
        ],
    );
    let repo = format!("tests/{marker}");
    let image = format!("{}/{repo}:1", env.registry);
    let cache = format!("{}/{repo}:buildcache", env.registry);
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .tag(&image)
        .push(true)
        .cache_to(CacheEntry::registry(&cache).attr("mode", "max"))
        .cache_from(CacheEntry::registry(&cache))
        // This daemon uses the containerd image store, so buildx's default provenance would be
        // added: it records the build's times, and the rebuild would push another digest.
        .attest(Attest::provenance("false").expect("provenance=false"));

    let first = client.build(&options).await.expect("first build");
    let digest = first.digest.clone().expect("digest");
    assert!(
        first.exporter_response.contains_key("cache.manifest")
            || manifest_digest(&env.registry, &repo, "buildcache")
                .unwrap()
                .is_some()
    );

    let freed = client
        .prune_all(&PruneOptions::default().all(true))
        .await
        .expect("prune");
    assert!(
        !freed.is_empty(),
        "the prune freed nothing, so the test would prove nothing"
    );

    let updates = Arc::new(Mutex::new(Vec::<StatusUpdate>::new()));
    let seen = updates.clone();
    let mut sink = move |update: &StatusUpdate| seen.lock().unwrap().push(update.clone());
    let second = client
        .build_with_progress(&options, &mut sink)
        .await
        .expect("second build");

    let updates = updates.lock().unwrap();
    let steps: Vec<(String, bool)> = updates
        .iter()
        .flat_map(|u| u.vertexes.iter())
        .filter(|v| v.name.contains("RUN") || v.name.contains("COPY"))
        .map(|v| (v.name.clone(), v.cached))
        .collect();
    for name in ["RUN echo", "COPY app.txt", "RUN cat"] {
        assert!(
            steps
                .iter()
                .any(|(step, cached)| step.contains(name) && *cached),
            "{name} was not taken from the imported cache: {steps:?}"
        );
    }
    assert_eq!(
        second.digest.as_deref(),
        Some(digest.as_str()),
        "the rebuild from cache gives the same image"
    );
    assert_eq!(
        manifest_digest(&env.registry, &repo, "1")
            .unwrap()
            .as_deref(),
        Some(digest.as_str())
    );
}
