//! hyper 1 integration: serve the bearer layer and the metadata endpoints with plain hyper and
//! hyper-util, no web framework.
//!
//! - [`McpRouter`] is the whole routing an MCP server needs: the well-known metadata paths go
//!   to the [`MetadataService`] (no token), the MCP path to your (guarded) service, anything
//!   else gets 404.
//! - [`Server`] accepts connections from a tokio `TcpListener` and serves a tower service on
//!   each with `hyper_util::server::conn::auto` (HTTP/1.1 and HTTP/2) through
//!   [`TowerToHyperService`](hyper_util::service::TowerToHyperService), with graceful
//!   shutdown and bounds on every connection. With the `tls` feature, [`Server::tls`]
//!   terminates TLS, optionally with client certificates for certificate-bound tokens (see
//!   the [`tls`] module).
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
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! A client cannot hold a connection without using it. Each bound has a secure default and a
//! setter on [`Server`]; [`Server::serve`] refuses zero with [`ConfigError::ZeroSetting`].
//!
//! - **Header-read timeout** (10 s, [`Server::header_read_timeout`]): a connection must
//!   deliver its first request head within it, whatever the protocol (hyper-util's HTTP/1 or
//!   HTTP/2 detection has no timer of its own), and on HTTP/1 every later request head too
//!   (hyper's timer, which needs the `TokioTimer` this server installs). A slow-loris client
//!   is cut off: no response, the socket is closed.
//! - **Idle timeout** (60 s, [`Server::idle_timeout`]): a connection with no request in
//!   flight for longer is closed gracefully. A request is in flight until its response body
//!   has been sent, so long SSE streams are never idle. hyper 1 has no idle timeout; the
//!   server counts the requests in flight on each connection. On HTTP/1, hyper's header-read
//!   timer also runs while a connection waits for its next request, so an idle HTTP/1
//!   connection closes after the shorter of the two.
//! - **Connection limit** (1024, [`Server::max_connections`]): at the limit the server stops
//!   accepting, and new connections wait in the listener's backlog until one closes.
//! - **HTTP/2 keep-alive** (20 s, [`Server::http2_keep_alive_interval`]): a quiet HTTP/2
//!   connection is pinged, and closed if the PING is not acknowledged in time.
//! - **TLS handshake timeout** (10 s, `Server::tls_handshake_timeout`, feature `tls`): a TLS
//!   client that has not completed its handshake in time is cut off; the handshake runs in
//!   the connection's own task, so it never delays accepting others.
//!
//! Not bounded here: the time a request (or its body) takes once its head has been read; put
//! a timeout layer (for example `tower_http::timeout`) around the service for that.

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
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_service::Service;

use self::connection::{Activity, serve_connection};
use crate::ConfigError;
use crate::tower::MetadataService;
use crate::tower::plumbing::{Guarded, passed_on, take_ready, take_refusal};

mod connection;
#[cfg(feature = "tls")]
pub mod tls;

/// How long [`Server::serve_with_shutdown`] waits for open connections by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a client has, by default, to send a complete request head
/// ([`Server::header_read_timeout`]).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay open with no request in flight, by default
/// ([`Server::idle_timeout`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most connections served at once, by default ([`Server::max_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How often a quiet HTTP/2 connection is pinged, and how long its client has to answer, by
/// default ([`Server::http2_keep_alive_interval`]).
pub const DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// Longer timeouts count as this (100 years), so that no deadline overflows.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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
/// [`TowerToHyperService`](hyper_util::service::TowerToHyperService).
///
/// Every connection is bounded, with secure defaults (see the [module docs](self#limits)):
///
/// | setter | default | what it bounds |
/// |---|---|---|
/// | [`header_read_timeout`](Self::header_read_timeout) | 10 s | time to send a complete request head |
/// | [`idle_timeout`](Self::idle_timeout) | 60 s | time without a request in flight |
/// | [`max_connections`](Self::max_connections) | 1024 | connections served at once |
/// | [`http2_keep_alive_interval`](Self::http2_keep_alive_interval) | 20 s | HTTP/2 ping interval and ack timeout |
/// | [`shutdown_grace`](Self::shutdown_grace) | 10 s | wait for open connections at shutdown |
///
/// Accept errors never stop the server (they are logged, and followed by a short pause when
/// they are not about one connection, such as running out of file descriptors). Connection
/// errors, timeouts included, are logged at `debug`.
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::integrations::hyper::{
///     DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Server,
/// };
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # let app = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
/// # });
/// assert_eq!(DEFAULT_HEADER_READ_TIMEOUT, Duration::from_secs(10));
/// assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(60));
/// assert_eq!(DEFAULT_MAX_CONNECTIONS, 1024);
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// Server::new(listener, app)
///     .header_read_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(30))
///     .max_connections(256)
///     .serve()
///     .await?;
/// # Ok(()) }
/// ```
pub struct Server<S> {
    listener: TcpListener,
    service: S,
    grace: Duration,
    limits: Limits,
    /// TLS termination (off until [`Server::tls`]).
    #[cfg(feature = "tls")]
    tls: tls::Tls,
}

impl<S> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Server");
        debug
            .field("local_addr", &self.listener.local_addr().ok())
            .field("grace", &self.grace)
            .field("header_read_timeout", &self.limits.header_read_timeout)
            .field("idle_timeout", &self.limits.idle_timeout)
            .field("max_connections", &self.limits.max_connections)
            .field(
                "http2_keep_alive_interval",
                &self.limits.http2_keep_alive_interval,
            );
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls.acceptor.is_some());
        debug.finish_non_exhaustive()
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
    /// A server for `service` on `listener`, with the default limits.
    pub fn new(listener: TcpListener, service: S) -> Self {
        Self {
            listener,
            service,
            grace: DEFAULT_SHUTDOWN_GRACE,
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: tls::Tls::default(),
        }
    }

    /// How long [`serve_with_shutdown`](Self::serve_with_shutdown) waits for open connections
    /// to finish after the shutdown signal before it closes them. Default: 10 seconds
    /// ([`DEFAULT_SHUTDOWN_GRACE`]). Long-lived streams (an MCP session's SSE stream) keep a
    /// connection open until the grace period ends. Zero closes them at once.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a client has to send a complete request head. Default: 10 seconds
    /// ([`DEFAULT_HEADER_READ_TIMEOUT`]).
    ///
    /// A connection that has not delivered its first request head this long after it was
    /// accepted is closed (HTTP/1 and HTTP/2, the protocol detection included), and on HTTP/1
    /// so is one that starts a later request head and does not finish it in time (hyper's own
    /// header-read timer, which starts as soon as the connection waits for its next request:
    /// an HTTP/1 connection with no request therefore closes after the shorter of this and the
    /// [idle timeout](Self::idle_timeout)). A client that is cut off gets no response; the
    /// socket is closed. It also bounds how long a connection closed for idleness may take
    /// to finish closing.
    ///
    /// Values over 100 years count as 100 years; [`serve`](Self::serve) refuses zero.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout.min(LONGEST_TIMEOUT);
        self
    }

    /// How long a connection may stay open with no request in flight; then it is closed
    /// gracefully (HTTP/2 gets a GOAWAY). Default: 60 seconds ([`DEFAULT_IDLE_TIMEOUT`]).
    ///
    /// A request is in flight from the moment its head has been read until its response body
    /// has been sent or dropped, so a long SSE stream never counts as idle; time spent waiting
    /// for the next request (keep-alive) does. Before its first request a connection gets the
    /// shorter of this and the [header-read timeout](Self::header_read_timeout).
    ///
    /// Values over 100 years count as 100 years; [`serve`](Self::serve) refuses zero.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout.min(LONGEST_TIMEOUT);
        self
    }

    /// The most connections served at once. Default: 1024 ([`DEFAULT_MAX_CONNECTIONS`]).
    ///
    /// At the limit the server stops accepting: new connections wait in the listener's
    /// backlog (the operating system's queue of connections not yet accepted) and are served,
    /// in order, as open ones close; beyond the backlog the operating system refuses or drops
    /// them. Waiting rather than closing them at once keeps a burst of legitimate clients
    /// working (they are served a little later instead of failing) and costs the server
    /// nothing per waiting client; the [header-read](Self::header_read_timeout) and
    /// [idle](Self::idle_timeout) timeouts make sure the connections that hold the places
    /// keep doing something. Reaching the limit is logged at `warn`, once until it is left.
    ///
    /// Values over tokio's semaphore limit (`usize::MAX >> 3`) count as that limit;
    /// [`serve`](Self::serve) refuses zero.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.limits.max_connections = max.min(Semaphore::MAX_PERMITS);
        self
    }

    /// How often an HTTP/2 connection is sent a PING when it has been quiet, and how long the
    /// client has to acknowledge it before the connection is closed. Default: 20 seconds
    /// ([`DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL`]).
    ///
    /// This finds HTTP/2 clients that vanished (no TCP close) while a request is in flight,
    /// such as an MCP session's SSE stream that sends nothing for a while. HTTP/1 has no such
    /// probe.
    ///
    /// Values over 100 years count as 100 years; [`serve`](Self::serve) refuses zero.
    #[must_use]
    pub fn http2_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.limits.http2_keep_alive_interval = interval.min(LONGEST_TIMEOUT);
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
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] before serving anything if a limit was set to zero.
    pub async fn serve(self) -> Result<(), ConfigError> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes, then stops accepting, asks open connections to close
    /// after their current request, waits for them up to the
    /// [grace period](Self::shutdown_grace), closes those still open, and returns.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] before serving anything if a limit was set to zero.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), ConfigError> {
        let Self {
            listener,
            service,
            grace,
            limits,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        limits.check()?;
        #[cfg(feature = "tls")]
        tls.check()?;
        #[cfg(feature = "tls")]
        let (acceptor, handshake_timeout) = (tls.acceptor, tls.handshake_timeout);
        let builder = limits.connection_builder();
        let places = Arc::new(Semaphore::new(limits.max_connections));
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        let mut at_limit = false;
        loop {
            // Forget the connections that ended.
            while connections.try_join_next().is_some() {}
            let place = match Arc::clone(&places).try_acquire_owned() {
                Ok(place) => place,
                Err(_) => {
                    if !at_limit {
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            "connection limit reached; new connections wait until one closes"
                        );
                        at_limit = true;
                    }
                    let free = std::pin::pin!(Arc::clone(&places).acquire_owned());
                    match future::select(free, signal.as_mut()).await {
                        future::Either::Left((Ok(place), _)) => place,
                        // The semaphore is never closed; stop as on the signal if it were.
                        future::Either::Left((Err(_), _)) | future::Either::Right(((), _)) => {
                            break;
                        }
                    }
                }
            };
            if at_limit && places.available_permits() > 0 {
                tracing::info!("below the connection limit again");
                at_limit = false;
            }
            let accept = std::pin::pin!(listener.accept());
            let (stream, remote) = match future::select(accept, signal.as_mut()).await {
                future::Either::Left((Ok(accepted), _)) => accepted,
                future::Either::Left((Err(error), _)) => {
                    accept_error(error).await;
                    continue;
                }
                future::Either::Right(((), _)) => break,
            };
            let (service, builder, stopped) = (service.clone(), builder.clone(), stopped.clone());
            #[cfg(feature = "tls")]
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                #[cfg(feature = "tls")]
                if let Some(acceptor) = acceptor {
                    let handshake =
                        tls::Tls::handshake(&acceptor, handshake_timeout, stream, remote);
                    if let Some((stream, certificate)) = handshake.await {
                        let service = tls::WithClientCertificate {
                            inner: service,
                            certificate,
                        };
                        serve_connection(&builder, stream, service, limits, stopped, remote).await;
                    }
                    drop(place);
                    return;
                }
                serve_connection(&builder, stream, service, limits, stopped, remote).await;
                drop(place);
            });
        }
        drop(listener);
        stop.send_replace(true);
        let all_closed = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_closed).await.is_err() {
            tracing::warn!(
                open = connections.len(),
                grace_secs = grace.as_secs_f64(),
                "connections still open after the shutdown grace period; closing them"
            );
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// The bounds on every connection of a [`Server`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    http2_keep_alive_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_keep_alive_interval: DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL,
        }
    }
}

impl Limits {
    fn check(&self) -> Result<(), ConfigError> {
        let zero = |setting, advice| Err(ConfigError::ZeroSetting { setting, advice });
        if self.header_read_timeout.is_zero() {
            return zero(
                "header_read_timeout",
                "no client can send a request head in no time, so every connection would be \
                 closed; keep the default (10 s) or allow a few seconds",
            );
        }
        if self.idle_timeout.is_zero() {
            return zero(
                "idle_timeout",
                "every connection would be closed before its first request; keep the default \
                 (60 s) or allow at least a few seconds",
            );
        }
        if self.max_connections == 0 {
            return zero(
                "max_connections",
                "with room for no connection nothing is ever served; keep the default (1024) \
                 or size it for the clients connected at once",
            );
        }
        if self.http2_keep_alive_interval.is_zero() {
            return zero(
                "http2_keep_alive_interval",
                "HTTP/2 connections would be pinged without pause and closed at once; keep \
                 the default (20 s)",
            );
        }
        Ok(())
    }

    /// hyper-util's builder with these limits; the timer is what makes hyper's timeouts work
    /// (without one, hyper drops its header-read timeout).
    fn connection_builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_interval);
        builder
    }
}

/// Why a connection is being closed before its client closed it.
enum Closing {
    Shutdown,
    Idle,
}

/// Runs one connection until it ends, closing it gracefully when the server shuts down or when
/// it has had no request in flight for too long.
async fn drive<C, E>(
    connection: C,
    close: impl FnOnce(Pin<&mut C>),
    activity: &Activity,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    remote: SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let closing = {
        let shutdown = std::pin::pin!(async {
            // An error means the server is gone: close too.
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let first_request = limits.header_read_timeout.min(limits.idle_timeout);
        let idle =
            std::pin::pin!(activity.idle_for(first_request, limits.idle_timeout, Instant::now()));
        match future::select(connection.as_mut(), future::select(shutdown, idle)).await {
            future::Either::Left((result, _)) => return ended(result, remote),
            future::Either::Right((future::Either::Left(_), _)) => Closing::Shutdown,
            future::Either::Right((future::Either::Right(_), _)) => Closing::Idle,
        }
    };
    close(connection.as_mut());
    match closing {
        // The server's grace period bounds this.
        Closing::Shutdown => ended(connection.await, remote),
        Closing::Idle => {
            tracing::debug!(%remote, "closing an idle connection");
            // A request that raced the timer still finishes; a client that keeps the closing
            // connection open without one (an HTTP/2 PING never acknowledged) is cut off.
            let bound = limits.header_read_timeout;
            let drained = std::pin::pin!(activity.idle_for(bound, bound, Instant::now()));
            match future::select(connection, drained).await {
                future::Either::Left((result, _)) => ended(result, remote),
                future::Either::Right(_) => {
                    tracing::debug!(%remote, "cut off an idle connection that did not close");
                }
            }
        }
    }
}

fn ended<E: fmt::Display>(result: Result<(), E>, remote: SocketAddr) {
    if let Err(error) = result {
        tracing::debug!(%remote, error = %error, "connection ended with an error");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_are_the_documented_ones() {
        let limits = Limits::default();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.max_connections, 1024);
        assert_eq!(limits.http2_keep_alive_interval, Duration::from_secs(20));
        assert_eq!(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs(10));
        assert!(limits.check().is_ok());
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let default = Limits::default();
        let cases = [
            (
                Limits {
                    header_read_timeout: Duration::ZERO,
                    ..default
                },
                "header_read_timeout",
            ),
            (
                Limits {
                    idle_timeout: Duration::ZERO,
                    ..default
                },
                "idle_timeout",
            ),
            (
                Limits {
                    max_connections: 0,
                    ..default
                },
                "max_connections",
            ),
            (
                Limits {
                    http2_keep_alive_interval: Duration::ZERO,
                    ..default
                },
                "http2_keep_alive_interval",
            ),
        ];
        for (limits, name) in cases {
            match limits.check() {
                Err(ConfigError::ZeroSetting { setting, .. }) => assert_eq!(setting, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn setters_set_the_limits_and_cap_the_huge_ones() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let service = tower::service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let server = Server::new(listener, service);
        let defaults = format!("{server:?}");
        assert!(defaults.contains("max_connections: 1024"), "{defaults}");
        let server = server
            .header_read_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::MAX)
            .max_connections(usize::MAX)
            .http2_keep_alive_interval(Duration::from_secs(7));
        assert_eq!(server.limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(server.limits.idle_timeout, LONGEST_TIMEOUT);
        assert_eq!(server.limits.max_connections, Semaphore::MAX_PERMITS);
        assert_eq!(
            server.limits.http2_keep_alive_interval,
            Duration::from_secs(7)
        );
        // The longest values still make a builder and an instant without overflowing.
        assert!(Instant::now().checked_add(LONGEST_TIMEOUT).is_some());
        let _ = server.limits.connection_builder();
    }

    #[tokio::test]
    async fn serve_refuses_a_zero_limit_before_serving() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let service = tower::service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let refused = Server::new(listener, service)
            .max_connections(0)
            .serve()
            .await;
        assert!(
            matches!(
                refused,
                Err(ConfigError::ZeroSetting {
                    setting: "max_connections",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
