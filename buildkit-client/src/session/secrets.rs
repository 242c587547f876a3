//! `moby.buildkit.secrets.v1.Secrets`: build secrets (`--secret id=…,src=…`
//! or `env=…`) handed to `RUN --mount=type=secret` steps.
//!
//! Values are read when the daemon asks, never logged, and a missing secret is
//! `NotFound` (which BuildKit treats as "not provided", so an optional mount
//! still works).

use std::collections::BTreeMap;
use std::sync::Arc;

use cicd_agents_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use cicd_agents_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

pub use crate::flags::{Secret, SecretSource};

/// The secrets service of one session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretStore {
    secrets: Arc<BTreeMap<String, SecretSource>>,
}

impl SecretStore {
    pub(crate) fn new(secrets: &[Secret]) -> Self {
        SecretStore {
            secrets: Arc::new(
                secrets
                    .iter()
                    .map(|s| (s.id.clone(), s.source.clone()))
                    .collect(),
            ),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub(crate) fn server(self) -> SecretsServer<SecretStore> {
        SecretsServer::new(self)
    }
}

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &["/moby.buildkit.secrets.v1.Secrets/GetSecret"];

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        let Some(source) = self.secrets.get(&id) else {
            tracing::debug!(%id, "secret not provided");
            return Err(Status::not_found(format!("secret {id} not found")));
        };
        let data = match source {
            SecretSource::Value(value) => value.expose_secret().as_bytes().to_vec(),
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) => value.into_bytes(),
                Err(_) => {
                    return Err(Status::not_found(format!(
                        "secret {id}: environment variable {name} is not set"
                    )))
                }
            },
            SecretSource::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || std::fs::read(&path).map_err(|err| (path, err)))
                    .await
                    .map_err(|_| Status::internal("secret reader stopped"))?
                    .map_err(|(path, err)| {
                        Status::not_found(format!("secret {id}: {}: {err}", path.display()))
                    })?
            }
        };
        tracing::debug!(%id, "secret provided");
        Ok(Response::new(GetSecretResponse { data }))
    }
}
