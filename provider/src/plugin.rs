//! The process side of go-plugin: the magic-cookie check, the listener, the one
//! handshake line on stdout, AutoMTLS, the gRPC server with every service
//! Terraform talks to, and a prompt exit on `GRPCController/Shutdown`.
//!
//! Terraform starts a fresh provider process for each phase of a run (3–5 per
//! apply) and, after `Shutdown`, waits up to 2 s before killing a process that
//! lingers; exiting promptly is what keeps a run fast.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;
use tonic::transport::Server;

use crate::framework::ProviderService;
use crate::proto::health::health_server::HealthServer;
use crate::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::proto::tfplugin6::provider_server::ProviderServer;
use crate::services::{Broker, Controller, HealthService, Stdio};
use crate::tls::{self, TlsError};

/// go-plugin's handshake cookie for Terraform providers (a constant, not a secret).
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// The provider address Terraform uses for `basalt/basalt` (dev overrides included).
const PROVIDER_ADDRESS: &str = "registry.terraform.io/basalt/basalt";
const PROTOCOL_VERSION: u32 = 6;
/// Terraform sends whole plans and states in one message; tonic's 4 MiB default is too small.
const MAX_MESSAGE_BYTES: usize = 256 << 20;
/// Time for the `Shutdown` answer to reach Terraform before the process ends.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(30);

/// Why the plugin could not run.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("Terraform asked for plugin protocol versions {0:?}; this provider speaks only 6")]
    Protocol(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Whether Terraform (go-plugin) started this process.
pub fn launched_by_terraform() -> bool {
    std::env::var(MAGIC_COOKIE_KEY).is_ok_and(|v| v == MAGIC_COOKIE_VALUE)
}

/// Serves the provider as a go-plugin child of Terraform until `Shutdown`.
pub async fn run() -> Result<(), PluginError> {
    check_protocol_versions()?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    match std::env::var("PLUGIN_CLIENT_CERT").ok().filter(|s| !s.is_empty()) {
        Some(pem) => {
            let mtls = tls::auto_mtls(&pem)?;
            handshake(addr, Some(&mtls.server_cert_der))?;
            serve(tls_incoming(listener, TlsAcceptor::from(mtls.config)), tx, wait_for(rx)).await
        }
        None => {
            handshake(addr, None)?;
            serve(plain_incoming(listener), tx, wait_for(rx)).await
        }
    }
}

/// Serves without TLS and prints how to point Terraform at this process; runs until Ctrl-C.
pub async fn run_debug() -> Result<(), PluginError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let reattach = reattach_json(listener.local_addr()?, std::process::id());
    let mut out = std::io::stdout().lock();
    writeln!(out, "Provider started. To attach Terraform, set in the shell that runs it:\n")?;
    writeln!(out, "\tTF_REATTACH_PROVIDERS='{reattach}'\n")?;
    out.flush()?;
    drop(out);
    let (tx, _rx) = watch::channel(false);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(plain_incoming(listener), tx, ctrl_c).await
}

fn reattach_json(addr: SocketAddr, pid: u32) -> String {
    serde_json::json!({ PROVIDER_ADDRESS: {
        "Protocol": "grpc",
        "ProtocolVersion": PROTOCOL_VERSION,
        "Pid": pid,
        "Test": true,
        "Addr": { "Network": "tcp", "String": addr.to_string() },
    }})
    .to_string()
}

/// go-plugin lists the protocol versions it accepts; 6 must be one of them.
fn check_protocol_versions() -> Result<(), PluginError> {
    match std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        Ok(list) if !list.split(',').any(|v| v.trim() == PROTOCOL_VERSION.to_string()) => {
            Err(PluginError::Protocol(list))
        }
        _ => Ok(()),
    }
}

/// The single line go-plugin reads from stdout: nothing may be printed before it.
fn handshake_line(addr: SocketAddr, cert_der: Option<&[u8]>) -> String {
    let mut line = format!("1|{PROTOCOL_VERSION}|tcp|{addr}|grpc");
    if let Some(der) = cert_der {
        line.push('|');
        line.push_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(der));
    }
    line
}

fn handshake(addr: SocketAddr, cert_der: Option<&[u8]>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", handshake_line(addr, cert_der))?;
    out.flush()
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Turns off Nagle's algorithm on a connection from Terraform. Serving our own
/// incoming stream, tonic's `tcp_nodelay` does not apply; without it every answer
/// written in more than one piece (HTTP/2 headers, data, trailers) waits for
/// Terraform's delayed ACK, about 40 ms, which every sequential RPC paid
/// (`GetProviderSchema`, `ConfigureProvider`, ...).
fn nodelay(tcp: TcpStream) -> TcpStream {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!("cannot set TCP_NODELAY: {e}");
    }
    tcp
}

/// Accepts TCP connections without TLS (`--debug`, or no AutoMTLS).
fn plain_incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| accepted.map(nodelay))
}

/// Accepts TCP connections and completes TLS handshakes concurrently, so one
/// slow or failing client cannot hold up the next.
fn tls_incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => nodelay(tcp),
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Err(e) => tracing::warn!("TLS handshake with Terraform failed: {e}"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Runs every service on `incoming` until `stop` resolves, then gives in-flight
/// answers [`SHUTDOWN_GRACE`] to leave instead of waiting for clients to hang up.
async fn serve<S, IO>(
    incoming: S,
    shutdown: watch::Sender<bool>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), PluginError>
where
    S: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
{
    let provider = ProviderServer::new(ProviderService::new(crate::provider::registry()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (stopped_tx, mut stopped_rx) = watch::channel(false);
    let router = Server::builder()
        .add_service(provider)
        .add_service(HealthServer::new(HealthService))
        .add_service(GrpcControllerServer::new(Controller { shutdown }))
        .add_service(GrpcStdioServer::new(Stdio))
        .add_service(GrpcBrokerServer::new(Broker));
    let signal = async move {
        stop.await;
        let _ = stopped_tx.send(true);
    };
    let server = router.serve_with_incoming_shutdown(incoming, signal);
    tokio::select! {
        r = server => Ok(r?),
        _ = async {
            let _ = stopped_rx.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_line_has_six_fields_with_unpadded_cert() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().expect("addr");
        assert_eq!(handshake_line(addr, Some(&[1, 2, 3, 4])), "1|6|tcp|127.0.0.1:4242|grpc|AQIDBA");
        assert_eq!(handshake_line(addr, None), "1|6|tcp|127.0.0.1:4242|grpc");
    }

    #[test]
    fn reattach_names_the_provider_address() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().expect("addr");
        let v: serde_json::Value = serde_json::from_str(&reattach_json(addr, 7)).expect("json");
        assert_eq!(v[PROVIDER_ADDRESS]["Addr"]["String"], "127.0.0.1:4242");
        assert_eq!(v[PROVIDER_ADDRESS]["ProtocolVersion"], 6);
    }
}
