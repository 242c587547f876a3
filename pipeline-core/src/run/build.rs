//! The build step: [`BuildOptions`] from a [`Pipeline`], a printable summary of them
//! ([`BuildPlan`]), and a progress sink that forwards BuildKit progress as run events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cicd_agents_buildkit::build::{BuildContext, BuildOptions, BuildTimings, CacheEntry};
use cicd_agents_buildkit::pool::Attempt;
use cicd_agents_buildkit::progress::{ProgressSink, StatusUpdate};
use cicd_agents_buildkit::RegistryAuth;
use cicd_agents_types::GitUrl;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::ahead::ActivityTracker;
use super::events::{RunEvent, Step};
use super::Recorder;
use crate::definition::{Pipeline, SourceLocation};
use crate::git::GitAuth;

/// What a build would do, for people (`Display`) and machines (`Serialize`). Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// The context: `URL#ref[:subdir]` or a directory.
    pub context: String,
    /// The Dockerfile (relative to the context for git, a path for local builds).
    pub dockerfile: String,
    /// Image names.
    pub images: Vec<String>,
    /// Whether the image is pushed.
    pub push: bool,
    /// Outputs in `--output` syntax.
    pub outputs: Vec<String>,
    /// Cache imports in `--cache-from` syntax.
    pub cache_from: Vec<String>,
    /// Cache exports in `--cache-to` syntax.
    pub cache_to: Vec<String>,
    /// Network mode of `RUN` steps.
    pub network: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Platforms.
    pub platforms: Vec<String>,
    /// Whether the cache is ignored.
    pub no_cache: bool,
    /// Whether base images are always resolved from the registry.
    pub pull: bool,
    /// Attestations in `--attest` syntax (a pushed image also gets `mode=min`
    /// provenance unless one of these sets provenance).
    pub attests: Vec<String>,
    /// Annotations in `--annotation` syntax.
    pub annotations: Vec<String>,
    /// `/dev/shm` size of `RUN` steps, in bytes.
    pub shm_size: Option<String>,
    /// Resource limits of `RUN` steps in `--ulimit` syntax.
    pub ulimits: Vec<String>,
    /// Parent cgroup of `RUN` steps.
    pub cgroup_parent: Option<String>,
    /// Where the git token for the source comes from (`None`: no token).
    pub git_auth: Option<String>,
    /// Where registry credentials come from.
    pub registry_auth: String,
    /// The daemons of `build.pool` (empty: the one daemon of the run).
    pub pool: Vec<String>,
    /// The pool's routing key for this build (with `build.pool`).
    pub pool_key: Option<String>,
}

impl fmt::Display for BuildPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "context:     {}", self.context)?;
        writeln!(f, "dockerfile:  {}", self.dockerfile)?;
        for image in &self.images {
            writeln!(f, "image:       {image}")?;
        }
        for output in &self.outputs {
            writeln!(f, "output:      {output}")?;
        }
        for c in &self.cache_from {
            writeln!(f, "cache-from:  {c}")?;
        }
        for c in &self.cache_to {
            writeln!(f, "cache-to:    {c}")?;
        }
        if let Some(n) = &self.network {
            writeln!(f, "network:     {n}")?;
        }
        for (k, v) in &self.build_args {
            writeln!(f, "build-arg:   {k}={v}")?;
        }
        for (k, v) in &self.labels {
            writeln!(f, "label:       {k}={v}")?;
        }
        if let Some(t) = &self.target {
            writeln!(f, "target:      {t}")?;
        }
        if !self.platforms.is_empty() {
            writeln!(f, "platforms:   {}", self.platforms.join(","))?;
        }
        if self.no_cache {
            writeln!(f, "no-cache:    true")?;
        }
        if self.pull {
            writeln!(f, "pull:        true")?;
        }
        for a in &self.attests {
            writeln!(f, "attest:      {a}")?;
        }
        for a in &self.annotations {
            writeln!(f, "annotation:  {a}")?;
        }
        if let Some(s) = &self.shm_size {
            writeln!(f, "shm-size:    {s}")?;
        }
        for u in &self.ulimits {
            writeln!(f, "ulimit:      {u}")?;
        }
        if let Some(c) = &self.cgroup_parent {
            writeln!(f, "cgroup:      {c}")?;
        }
        if let Some(a) = &self.git_auth {
            writeln!(f, "git auth:    {a}")?;
        }
        if !self.pool.is_empty() {
            writeln!(f, "pool:        {}", self.pool.join(", "))?;
        }
        if let Some(k) = &self.pool_key {
            writeln!(f, "pool-key:    {k}")?;
        }
        write!(f, "registry:    {}", self.registry_auth)
    }
}

fn docker_config_dir(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|e| e == "json") {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

/// The host (no port) of a URL, for BuildKit's `GIT_AUTH_TOKEN.<host>` secret.
fn url_host(url: &str) -> Option<String> {
    GitUrl::new(url).ok()?.host().map(str::to_string)
}

impl BuildPlan {
    /// The plan of `pipeline`'s build: a summary of exactly the [`BuildOptions`] the run
    /// sends ([`build_options`]), plus where the credentials come from.
    pub fn of(pipeline: &Pipeline) -> BuildPlan {
        BuildPlan::of_options(pipeline, &build_options(pipeline, None))
    }

    fn of_options(pipeline: &Pipeline, options: &BuildOptions) -> BuildPlan {
        let b = &pipeline.build;
        let images = options.tags.clone();
        let context = match &options.context {
            BuildContext::Local(dir) => dir.display().to_string(),
            BuildContext::Remote(url) => url.clone(),
            BuildContext::Archive(_) | BuildContext::Empty => "-".to_string(),
        };
        let dockerfile = options
            .dockerfile
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut outputs: Vec<String> = options.outputs.iter().map(ToString::to_string).collect();
        if options.push && outputs.is_empty() {
            outputs.push(format!("type=image,name={},push=true", images.join(",")));
        }
        let git_auth = match (&pipeline.source.location, &pipeline.source.token) {
            (SourceLocation::Git { url, .. }, Some(token)) => Some(format!(
                "token from {token} for {} (secret GIT_AUTH_TOKEN.<host>, not in the URL)",
                url_host(url).unwrap_or_default()
            )),
            _ => None,
        };
        let registry_auth = match &b.docker_config {
            Some(p) => format!("docker config in {}", docker_config_dir(p).display()),
            None => "docker config ($DOCKER_CONFIG or ~/.docker)".into(),
        };
        BuildPlan {
            context,
            dockerfile,
            images,
            push: options.push,
            outputs,
            cache_from: options.cache_from.iter().map(ToString::to_string).collect(),
            cache_to: options.cache_to.iter().map(ToString::to_string).collect(),
            network: options.network.map(|n| n.to_string()),
            build_args: options.build_args.clone(),
            labels: options.labels.clone(),
            target: options.target.clone(),
            platforms: options.platforms.iter().map(ToString::to_string).collect(),
            no_cache: options.no_cache,
            pull: options.pull,
            attests: options.attests.iter().map(ToString::to_string).collect(),
            annotations: options
                .annotations
                .iter()
                .map(ToString::to_string)
                .collect(),
            shm_size: options.shm_size.map(|s| s.to_string()),
            ulimits: options.ulimits.iter().map(ToString::to_string).collect(),
            cgroup_parent: options.cgroup_parent.clone(),
            git_auth,
            registry_auth,
            pool: b
                .pool
                .as_ref()
                .map(|p| p.addresses.clone())
                .unwrap_or_default(),
            pool_key: b.pool.as_ref().map(|p| p.routing_key(options)),
        }
    }
}

/// The [`BuildOptions`] of `pipeline`'s build; `source_auth` is the source repository's token
/// (passed as `GIT_AUTH_TOKEN.<host>`, never in the URL).
///
/// ```
/// use cicd_agents_pipeline::definition::PipelineDefinition;
/// use cicd_agents_pipeline::git::GitAuth;
/// use cicd_agents_pipeline::run::build_options;
///
/// let text = "source: {git: 'https://git.example.com/app.git', token-env: T}\n\
///             build: {images: ['r.example.com/app'], cache: 'r.example.com/app:cache', network: host}\n";
/// let pipeline = text.parse::<PipelineDefinition>()?.resolve([("image-tag", "7")])?;
/// let options = build_options(&pipeline, Some(&GitAuth::token("t0k")));
/// assert_eq!(options.tags, ["r.example.com/app:7"]);
/// assert!(options.push);
/// assert!(options.git_auth_tokens.contains_key("git.example.com"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build_options(pipeline: &Pipeline, source_auth: Option<&GitAuth>) -> BuildOptions {
    let b = &pipeline.build;
    let mut options = match (
        &pipeline.source.location,
        pipeline.source.local_context_dir(),
    ) {
        (SourceLocation::Local { .. }, Some(dir)) => {
            let dockerfile = dir.join(&b.dockerfile);
            BuildOptions::local(dir).dockerfile(dockerfile)
        }
        _ => BuildOptions::remote(pipeline.source.buildkit_context()).dockerfile(&b.dockerfile),
    };
    if let (SourceLocation::Git { url, .. }, Some(auth)) = (&pipeline.source.location, source_auth)
    {
        if let Some(host) = url_host(url) {
            options = options.git_auth_token(host, auth.token.expose_secret());
        }
    }
    for image in &b.images {
        options = options.tag(image.to_string());
    }
    options = options.push(b.push);
    if let Some(c) = &b.cache {
        if c.import {
            options = options.cache_from(CacheEntry::registry(c.reference.as_str()));
        }
        if c.export {
            options =
                options.cache_to(CacheEntry::registry(c.reference.as_str()).attr("mode", &c.mode));
        }
    }
    options.network = b.network;
    options.build_args = b.build_args.clone();
    options.labels = b.labels.clone();
    options.target = b.target.clone();
    options.platforms = b.platforms.clone();
    options.no_cache = b.no_cache;
    options.pull = b.pull;
    options.attests = b.attests.clone();
    // A pipeline follows the original design's `buildctl build`, which adds no
    // attestation unless asked: a provenance records the build's start and end
    // times, so every rebuild of the same source would push a new digest and
    // commit it to the chart. `build.provenance` (or `attest`) turns it on.
    if !options
        .attests
        .iter()
        .any(|a| a.kind == cicd_agents_buildkit::flags::AttestKind::Provenance)
    {
        if let Ok(off) = cicd_agents_buildkit::flags::Attest::provenance("false") {
            options.attests.push(off);
        }
    }
    options.annotations = b.annotations.clone();
    options.shm_size = b.shm_size;
    options.ulimits = b.ulimits.clone();
    options.cgroup_parent = b.cgroup_parent.clone();
    if let Some(dir) = &b.docker_config {
        options =
            options.registry_auth(RegistryAuth::docker_config().config_dir(docker_config_dir(dir)));
    }
    options
}

/// What the caller's sink is given later, in order.
enum Held {
    Update(StatusUpdate),
    Builder(String, Vec<Attempt>),
}

/// Passes BuildKit progress to the caller's sink and reports every finished build step as a
/// [`RunEvent::StepProgress`] of [`Step::Build`].
///
/// While the recorder holds the build's events back (the build runs ahead of the end of
/// `prepare`), the caller's sink is held back too: updates wait here, in order, and reach it
/// at the next call after the release, or at [`Forward::flush`] once the build is over.
pub(crate) struct Forward<'a> {
    inner: Option<&'a mut (dyn ProgressSink + 'static)>,
    recorder: Arc<Recorder>,
    names: HashMap<String, String>,
    done: HashSet<String>,
    pending: Vec<Held>,
    timings: Option<BuildTimings>,
    finished: bool,
    activity: ActivityTracker,
}

impl<'a> Forward<'a> {
    pub(crate) fn new(
        inner: Option<&'a mut (dyn ProgressSink + 'static)>,
        recorder: Arc<Recorder>,
        activity: ActivityTracker,
    ) -> Self {
        Self {
            inner,
            recorder,
            names: HashMap::new(),
            done: HashSet::new(),
            pending: Vec::new(),
            timings: None,
            finished: false,
            activity,
        }
    }

    /// Whether the caller's sink must wait (and gets nothing yet).
    fn waiting(&self) -> bool {
        self.inner.is_some() && self.recorder.holds_build()
    }

    /// Gives the caller's sink what waited: the updates, then the timings and the end
    /// of the build if they came while it waited.
    pub(crate) fn flush(&mut self) {
        let Some(inner) = self.inner.as_deref_mut() else {
            return;
        };
        for held in self.pending.drain(..) {
            match held {
                Held::Update(update) => inner.update(&update),
                Held::Builder(address, passed_over) => inner.builder(&address, &passed_over),
            }
        }
        if let Some(timings) = self.timings.take() {
            inner.timings(&timings);
        }
        if std::mem::take(&mut self.finished) {
            inner.finish();
        }
    }

    fn report_finished_steps(&mut self, update: &StatusUpdate) {
        for v in &update.vertexes {
            if !v.name.is_empty() {
                self.names.insert(v.digest.clone(), v.name.clone());
            }
            let finished = v.completed.is_some() || !v.error.is_empty();
            if !finished || !self.done.insert(v.digest.clone()) {
                continue;
            }
            let name = self.names.get(&v.digest).cloned().unwrap_or_default();
            let message = if !v.error.is_empty() {
                format!("ERROR {name}: {}", v.error)
            } else if v.cached {
                format!("CACHED {name}")
            } else {
                let secs = match (v.started, v.completed) {
                    (Some(s), Some(c)) => {
                        c.duration_since(s).map(|d| d.as_secs_f64()).unwrap_or(0.0)
                    }
                    _ => 0.0,
                };
                format!("DONE {secs:.1}s {name}")
            };
            self.recorder.emit(RunEvent::StepProgress {
                step: Step::Build,
                message,
            });
        }
    }
}

impl ProgressSink for Forward<'_> {
    fn timings(&mut self, timings: &BuildTimings) {
        if self.waiting() {
            self.timings = Some(*timings);
            return;
        }
        self.flush();
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.timings(timings);
        }
    }

    fn update(&mut self, update: &StatusUpdate) {
        self.activity.update(update);
        self.report_finished_steps(update);
        if self.waiting() {
            self.pending.push(Held::Update(update.clone()));
            return;
        }
        self.flush();
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.update(update);
        }
    }

    fn builder(&mut self, address: &str, passed_over: &[Attempt]) {
        if self.waiting() {
            self.pending
                .push(Held::Builder(address.to_string(), passed_over.to_vec()));
            return;
        }
        self.flush();
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.builder(address, passed_over);
        }
    }

    fn idle(&mut self) {
        if self.waiting() {
            return;
        }
        self.flush();
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.idle();
        }
    }

    fn finish(&mut self) {
        if self.waiting() {
            self.finished = true;
            return;
        }
        self.flush();
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            url_host("http://127.0.0.1:8418/a.git").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("https://[::1]:443/a.git").as_deref(), Some("::1"));
        assert_eq!(
            url_host("https://git.example.com/a.git").as_deref(),
            Some("git.example.com")
        );
        assert_eq!(
            docker_config_dir(Path::new("/x/config.json")),
            PathBuf::from("/x")
        );
        assert_eq!(
            docker_config_dir(Path::new("/x/.docker")),
            PathBuf::from("/x/.docker")
        );
    }
}
