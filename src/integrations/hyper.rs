//! hyper 1 integration: serve the bearer layer and the metadata endpoints with plain hyper and
//! hyper-util, no web framework.
//!
//! - [`McpRouter`] is the whole routing an MCP server needs: the well-known metadata paths go
//!   to the [`MetadataService`] (no token), the MCP path to your (guarded) service, anything
//!   else gets 404.
//! - [`Server`] accepts connections from a tokio `TcpListener` and serves a tower service on
//!   each with `hyper_util::server::conn::auto` (HTTP/1.1 and HTTP/2) through
//!   [`TowerToHyperService`], with graceful shutdown.
//!
//! ```no_run
//! use mcp_auth::integrations::hyper::{McpRouter, Server};
//! use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
//! use mcp_auth::verify::JwtVerifier;
//! use tower_layer::Layer;
//! # use std::convert::Infallible;
//! # use http::{Request, Response};
//! # use http_body_util::Full;
//! # use bytes::Bytes;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let mcp_service = tower::service_fn(|_: Request<hyper::body::Incoming>| async {
//! #     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("an rmcp StreamableHttpService"))))
//! # });
//! let issuer = AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc);
//! let auth = McpAuth::builder()
//!     .protected_resource(
//!         ProtectedResource::new("https://api.example.com/mcp").authorization_server(issuer.clone()),
//!     )
//!     .build()?;
//! let verifier = JwtVerifier::builder().authorization_server(issuer).build()?;
//! let guard = auth.bearer_auth("https://api.example.com/mcp", verifier).build()?;
//!
//! // `mcp_service` is typically rmcp's `StreamableHttpService`.
//! let app = McpRouter::new(auth.metadata_service(), "/mcp", guard.layer().layer(mcp_service));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3003").await?;
//! Server::new(listener, app)
//!     .serve_with_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{self, BoxFuture};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower_service::Service;

use crate::tower::MetadataService;
use crate::tower::plumbing::{Guarded, passed_on, take_ready, take_refusal};

/// How long [`Server::serve_with_shutdown`] waits for open connections by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type BoxError = Box<dyn StdError + Send + Sync>;

/// Routes an MCP server's requests: the [`MetadataService`]'s paths to it, `mcp_path` to the
/// MCP service, anything else to an empty 404.
///
/// Put the bearer layer around the MCP service only (`guard.layer().layer(mcp_service)`), so
/// that the metadata stays reachable without a token. The MCP path is matched exactly.
///
/// The response body is [`Either`]: the MCP service's body on the left, the metadata or 404
/// body on the right. Readiness is the MCP service's.
#[derive(Clone)]
pub struct McpRouter<S> {
    metadata: MetadataService,
    mcp_path: Arc<str>,
    service: S,
}

impl<S> fmt::Debug for McpRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpRouter")
            .field("metadata", &self.metadata)
            .field("mcp_path", &self.mcp_path)
            .finish_non_exhaustive()
    }
}

impl<S> McpRouter<S> {
    /// Serves `metadata` on its paths and `service` on `mcp_path` (for example `"/mcp"`).
    pub fn new(metadata: MetadataService, mcp_path: impl Into<String>, service: S) -> Self {
        Self {
            metadata,
            mcp_path: Arc::from(mcp_path.into()),
            service,
        }
    }

    /// The MCP path.
    pub fn mcp_path(&self) -> &str {
        &self.mcp_path
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for McpRouter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<Guarded<ResBody>>;
    type Error = S::Error;
    type Future = McpRouterFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let state = if path == &*self.mcp_path {
            RouteState::Mcp {
                future: take_ready(&mut self.service).call(request),
            }
        } else if self.metadata.handles(path) {
            RouteState::Metadata {
                future: self.metadata.call(request),
            }
        } else {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_FOUND;
            RouteState::NotFound {
                response: Some(response),
            }
        };
        McpRouterFuture { state }
    }
}

pin_project! {
    /// Response future of [`McpRouter`].
    pub struct McpRouterFuture<F> {
        #[pin]
        state: RouteState<F>,
    }
}

pin_project! {
    #[project = RouteStateProj]
    enum RouteState<F> {
        Mcp {
            #[pin]
            future: F,
        },
        Metadata {
            future: BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>,
        },
        NotFound {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<F> fmt::Debug for McpRouterFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpRouterFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for McpRouterFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<Guarded<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            RouteStateProj::Mcp { future } => future.poll(cx).map(passed_on),
            RouteStateProj::Metadata { future } => future
                .as_mut()
                .poll(cx)
                .map(|Ok(response)| Ok(response.map(Either::Right))),
            RouteStateProj::NotFound { response } => {
                Poll::Ready(Ok(take_refusal(response, "McpRouter")))
            }
        }
    }
}

/// Serves a tower service with hyper 1 on every connection a `TcpListener` accepts: HTTP/1.1
/// and HTTP/2 (`hyper_util::server::conn::auto`), each request handed to the service through
/// [`TowerToHyperService`].
///
/// Accept errors never stop the server (they are logged, and followed by a short pause when
/// they are not about one connection, such as running out of file descriptors). Connection
/// errors are logged at `debug`.
pub struct Server<S> {
    listener: TcpListener,
    service: S,
    grace: Duration,
}

impl<S> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<S, B> Server<S>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// A server for `service` on `listener`.
    pub fn new(listener: TcpListener, service: S) -> Self {
        Self {
            listener,
            service,
            grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// How long [`serve_with_shutdown`](Self::serve_with_shutdown) waits for open connections
    /// to finish after the shutdown signal before it closes them. Default: 10 seconds
    /// ([`DEFAULT_SHUTDOWN_GRACE`]). Long-lived streams (an MCP session's SSE stream) keep a
    /// connection open until the grace period ends.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The address the listener is bound to (the actual port when bound to port 0).
    ///
    /// # Errors
    ///
    /// The operating system's error if the socket address cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        self.serve_with_shutdown(std::future::pending()).await;
    }

    /// Serves until `signal` completes, then stops accepting, asks open connections to close
    /// after their current request, waits for them up to the
    /// [grace period](Self::shutdown_grace), closes those still open, and returns.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()> + Send) {
        let Self {
            listener,
            service,
            grace,
        } = self;
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            // Forget the connections that ended.
            while connections.try_join_next().is_some() {}
            let accept = std::pin::pin!(listener.accept());
            let (stream, remote) = match future::select(accept, signal.as_mut()).await {
                future::Either::Left((Ok(accepted), _)) => accepted,
                future::Either::Left((Err(error), _)) => {
                    accept_error(error).await;
                    continue;
                }
                future::Either::Right(((), _)) => break,
            };
            let connection = builder
                .serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(service.clone()),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%remote, error = %error, "connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                open = connections.len(),
                grace_secs = grace.as_secs_f64(),
                "connections still open after the shutdown grace period; closing them"
            );
        }
        connections.shutdown().await;
    }
}

/// Errors about one connection are skipped; others (e.g. out of file descriptors) get a pause
/// so the accept loop does not spin.
async fn accept_error(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!(%error, "accept failed for one connection");
    } else {
        tracing::error!(%error, "accept failed; retrying in one second");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
