//! `grpc.health.v1.Health`: the daemon probes it every few seconds and drops
//! the session after two failed probes, so it must answer whatever else the
//! process is doing. It runs on the session's own tasks and never blocks.

use std::pin::Pin;

use cicd_agents_proto::grpc::health::v1::health_check_response::ServingStatus;
use cicd_agents_proto::grpc::health::v1::health_server::{Health, HealthServer};
use cicd_agents_proto::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};
use futures::Stream;
use tonic::{Request, Response, Status};

/// Always serving while the session lives.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HealthService;

pub(crate) fn server() -> HealthServer<HealthService> {
    HealthServer::new(HealthService)
}

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let first = futures::stream::once(async {
            Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })
        });
        let stream = futures::StreamExt::chain(first, futures::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}
