//! `moby.filesync.v1.Auth`: registry credentials for pulls, pushes and cache.
//!
//! The daemon first asks for a token authority; we answer `Unimplemented`, so
//! it asks for `Credentials{host}` and fetches registry tokens itself.
//! Credentials come from explicit entries given through the API, then the
//! Docker configuration (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `credHelpers`, `auths` (`auth`, or
//! `username`/`password`, or `identitytoken`) and `credsStore`, in the order
//! the Docker CLI uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine;
use cicd_agents_proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use cicd_agents_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status};

/// The key Docker Hub credentials are stored under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A registry login.
#[derive(Clone)]
pub struct Credentials {
    /// User name; empty with an identity token.
    pub username: String,
    /// Password, access token or identity token.
    pub secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Where registry credentials come from.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    explicit: BTreeMap<String, Credentials>,
    config_dir: Option<PathBuf>,
    use_docker_config: bool,
}

impl RegistryAuth {
    /// Credentials from the Docker configuration (`DOCKER_CONFIG` or `~/.docker`).
    pub fn docker_config() -> Self {
        RegistryAuth {
            explicit: BTreeMap::new(),
            config_dir: None,
            use_docker_config: true,
        }
    }

    /// No credentials at all (anonymous pulls and pushes).
    pub fn anonymous() -> Self {
        RegistryAuth::default()
    }

    /// Reads the Docker configuration from this directory instead.
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self.use_docker_config = true;
        self
    }

    /// Adds explicit credentials for `host` (`registry.example.com`, `docker.io`);
    /// they win over the Docker configuration.
    pub fn with_credentials(
        mut self,
        host: &str,
        username: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.explicit.insert(
            normalize_host(host),
            Credentials {
                username: username.into(),
                secret: SecretString::from(secret.into()),
            },
        );
        self
    }

    fn config_path(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.config_dir {
            return Some(dir.join("config.json"));
        }
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
    }

    /// Looks up credentials for a registry host. `Ok(None)` means anonymous.
    pub async fn lookup(&self, host: &str) -> Result<Option<Credentials>, String> {
        let key = normalize_host(host);
        if let Some(found) = self.explicit.get(&key) {
            return Ok(Some(found.clone()));
        }
        if !self.use_docker_config {
            return Ok(None);
        }
        let Some(path) = self.config_path() else {
            return Ok(None);
        };
        let config = match DockerConfig::read(&path)? {
            Some(config) => config,
            None => return Ok(None),
        };
        config.lookup(&key, &path).await
    }
}

/// Registry host as the Docker configuration keys it: scheme and path dropped,
/// Docker Hub's aliases mapped to its historical key.
pub fn normalize_host(host: &str) -> String {
    let without_scheme = host.split_once("://").map(|(_, rest)| rest).unwrap_or(host);
    let bare = without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase();
    match bare.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_KEY.to_string()
        }
        _ => bare,
    }
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl DockerConfig {
    fn read(path: &Path) -> Result<Option<DockerConfig>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("{}: {err}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| format!("{}: not a Docker config file: {err}", path.display()))
    }

    async fn lookup(&self, key: &str, path: &Path) -> Result<Option<Credentials>, String> {
        let helper_key = |map: &BTreeMap<String, String>| {
            map.iter()
                .find(|(host, _)| normalize_host(host) == key)
                .map(|(_, helper)| helper.clone())
        };
        if let Some(helper) = helper_key(&self.cred_helpers) {
            return run_helper(&helper, key).await;
        }
        if let Some(entry) = self
            .auths
            .iter()
            .find(|(host, _)| normalize_host(host) == key)
            .map(|(_, e)| e)
        {
            if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
                let username = entry.username.clone().unwrap_or_default();
                return Ok(Some(Credentials {
                    username,
                    secret: SecretString::from(token.to_string()),
                }));
            }
            if let (Some(user), Some(pass)) = (&entry.username, &entry.password) {
                return Ok(Some(Credentials {
                    username: user.clone(),
                    secret: SecretString::from(pass.clone()),
                }));
            }
            if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| {
                        format!("{}: the auth entry for {key} is not base64", path.display())
                    })?;
                let text = String::from_utf8(decoded).map_err(|_| {
                    format!("{}: the auth entry for {key} is not text", path.display())
                })?;
                let (user, pass) = text.split_once(':').ok_or_else(|| {
                    format!(
                        "{}: the auth entry for {key} is not user:password",
                        path.display()
                    )
                })?;
                return Ok(Some(Credentials {
                    username: user.to_string(),
                    secret: SecretString::from(pass.to_string()),
                }));
            }
        }
        if let Some(store) = self.creds_store.as_deref().filter(|s| !s.is_empty()) {
            return run_helper(store, key).await;
        }
        Ok(None)
    }
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials.
async fn run_helper(helper: &str, host: &str) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("cannot run the credential helper {program}: {err}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(host.as_bytes())
            .await
            .map_err(|err| format!("{program}: {err}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|err| format!("{program}: {err}"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout);
        if message.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!("{program} get {host} failed ({})", output.status));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("{program} answered something unreadable: {err}"))?;
    let username = if answer.username == "<token>" {
        String::new()
    } else {
        answer.username
    };
    Ok(Some(Credentials {
        username,
        secret: SecretString::from(answer.secret),
    }))
}

/// The Auth service of one session.
#[derive(Debug, Clone)]
pub(crate) struct AuthService {
    auth: Arc<RegistryAuth>,
}

impl AuthService {
    pub(crate) fn server(auth: RegistryAuth) -> AuthServer<AuthService> {
        AuthServer::new(AuthService {
            auth: Arc::new(auth),
        })
    }
}

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &[
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
];

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        match self.auth.lookup(&host).await {
            Ok(Some(found)) => {
                tracing::debug!(%host, username = %found.username, "registry credentials provided");
                Ok(Response::new(CredentialsResponse {
                    username: found.username,
                    secret: found.secret.expose_secret().to_string(),
                }))
            }
            Ok(None) => {
                tracing::debug!(%host, "no registry credentials; anonymous");
                Ok(Response::new(CredentialsResponse::default()))
            }
            Err(reason) => {
                tracing::warn!(%host, %reason, "registry credentials lookup failed");
                Err(Status::unavailable(reason))
            }
        }
    }

    async fn fetch_token(
        &self,
        _request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("tokens are fetched by the daemon"))
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) -> RegistryAuth {
        std::fs::write(dir.join("config.json"), json).unwrap();
        RegistryAuth::docker_config().config_dir(dir)
    }

    #[tokio::test]
    async fn reads_docker_config_forms() {
        let dir = tempfile::tempdir().unwrap();
        let auth = config(
            dir.path(),
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "reg.example:5000":{"username":"u2","password":"p2"},
                "https://tok.example/v2/":{"identitytoken":"idtok"}
            }}"#,
        );
        let hub = auth.lookup("registry-1.docker.io").await.unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.secret.expose_secret()),
            ("user", "pass")
        );
        let reg = auth.lookup("reg.example:5000").await.unwrap().unwrap();
        assert_eq!(
            (reg.username.as_str(), reg.secret.expose_secret()),
            ("u2", "p2")
        );
        let tok = auth.lookup("tok.example").await.unwrap().unwrap();
        assert_eq!(tok.secret.expose_secret(), "idtok");
        assert!(auth.lookup("other.example").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn explicit_credentials_win_and_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let auth = config(
            dir.path(),
            r#"{"auths":{"r.example":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .with_credentials("r.example", "bot", "s3cret");
        let found = auth.lookup("r.example").await.unwrap().unwrap();
        assert_eq!(found.username, "bot");
        assert!(!format!("{found:?} {auth:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn missing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let auth = config(
            dir.path(),
            r#"{"credHelpers":{"r.example":"nonexistent-helper"}}"#,
        );
        let err = auth.lookup("r.example").await.unwrap_err();
        assert!(
            err.contains("docker-credential-nonexistent-helper"),
            "{err}"
        );
    }

    #[test]
    fn normalizes_hosts() {
        assert_eq!(normalize_host("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(normalize_host("https://reg:5000/v2/"), "reg:5000");
    }
}
