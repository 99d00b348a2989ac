//! The gRPC services go-plugin expects beside the provider: the controller whose
//! `Shutdown` ends the process, the health check (service `plugin` SERVING), and
//! stubs for stdio mirroring and the connection broker, which this provider
//! never uses (logs go to stderr, and there are no side connections).

use std::pin::Pin;

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_server::Health;
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::plugin::grpc_broker_server::GrpcBroker;
use crate::proto::plugin::grpc_controller_server::GrpcController;
use crate::proto::plugin::grpc_stdio_server::GrpcStdio;
use crate::proto::plugin::{ConnInfo, Empty, StdioData};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// `plugin.GRPCController`: `Shutdown` flips the watch that the server waits on.
pub struct Controller {
    pub shutdown: watch::Sender<bool>,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by Terraform");
        // Only fails when nobody waits any more, i.e. we are already stopping.
        let _ = self.shutdown.send(true);
        Ok(Response::new(Empty {}))
    }
}

/// `grpc.health.v1.Health`: the plugin is serving as long as the process runs.
pub struct HealthService;

const PLUGIN_SERVICE: &str = "plugin";

fn serving() -> HealthCheckResponse {
    HealthCheckResponse { status: ServingStatus::Serving as i32 }
}

fn check(service: &str) -> Result<HealthCheckResponse, Status> {
    match service {
        "" | PLUGIN_SERVICE => Ok(serving()),
        other => Err(Status::not_found(format!("unknown service {other:?}"))),
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    type WatchStream = BoxStream<HealthCheckResponse>;

    async fn check(&self, req: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        check(&req.get_ref().service).map(Response::new)
    }

    async fn watch(&self, req: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let first = check(&req.get_ref().service)?;
        // One status, then silence: it never changes while the process lives.
        let stream = tokio_stream::once(Ok(first)).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `plugin.GRPCStdio`: an open stream that never carries data (logs go to stderr).
pub struct Stdio;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<StdioData>;

    async fn stream_stdio(&self, _req: Request<()>) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// `plugin.GRPCBroker`: accepted and left idle; the provider opens no side channels.
pub struct Broker;

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = BoxStream<ConnInfo>;

    async fn start_stream(
        &self,
        _req: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reports_the_plugin_service_serving() {
        assert_eq!(check("plugin").map(|r| r.status).ok(), Some(ServingStatus::Serving as i32));
        assert_eq!(check("").map(|r| r.status).ok(), Some(ServingStatus::Serving as i32));
        assert_eq!(check("other").map_err(|s| s.code()).err(), Some(tonic::Code::NotFound));
    }

    #[tokio::test]
    async fn shutdown_flips_the_watch() {
        let (tx, rx) = watch::channel(false);
        let controller = Controller { shutdown: tx };
        controller.shutdown(Request::new(Empty {})).await.expect("shutdown answers");
        assert!(*rx.borrow());
    }
}
