//! The web apps of the examples, built from a [`Setup`]: the guarded MCP endpoint plus the
//! metadata endpoints (outside the guard). The guard is `Setup::mcp_guard`: bearer
//! authentication, sessions bound to their caller, and the per-tool scopes.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::HeaderName;
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use mcp_auth::integrations::hyper::McpRouter;
use tower::{BoxError, Layer, Service, ServiceBuilder};
use tower_http::cors::{Any, CorsLayer};

use super::setup::Setup;

/// The axum app of `examples/whoami.rs`: [`axum_routes`], and [`browser_cors`] in front.
pub fn axum_app(setup: &Setup) -> axum::Router {
    axum_routes(setup).layer(browser_cors())
}

/// The guarded MCP endpoint and the metadata endpoints, without CORS (what
/// `examples/bench_server.rs` measures, next to its unguarded twin routes).
pub fn axum_routes(setup: &Setup) -> axum::Router {
    // `without_v07_checks`: a resource path may have a segment starting with `:` or `*`,
    // which axum 0.8 otherwise rejects (with a panic) as 0.7-style route syntax.
    axum::Router::new()
        .without_v07_checks()
        .route_service(
            &setup.mcp_path,
            setup.mcp_guard().layer().layer(setup.mcp_service()),
        )
        .merge(setup.auth.metadata_router())
}

/// The tower service `examples/whoami_hyper.rs` serves with hyper: the same routes as
/// [`axum_app`], and [`browser_cors`] in front.
pub fn hyper_app(
    setup: &Setup,
) -> impl Service<
    Request<Incoming>,
    Response = Response<UnsyncBoxBody<Bytes, BoxError>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    let router = McpRouter::new(
        setup.auth.metadata_service(),
        setup.mcp_path.clone(),
        setup.mcp_guard().layer().layer(setup.mcp_service()),
    );
    ServiceBuilder::new()
        .layer(browser_cors())
        // The CORS layer answers preflights with an empty body of the service's body type.
        .map_response(box_body)
        .service(router)
}

/// One body type for every answer, with a `Default` (the CORS layer's preflight answers).
fn box_body<B>(response: Response<B>) -> Response<UnsyncBoxBody<Bytes, BoxError>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// The request headers a web-page MCP client sends: the token, the JSON-RPC body's type, and
/// the Streamable HTTP headers.
pub const CORS_ALLOWED_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "mcp-protocol-version",
    "mcp-session-id",
    "last-event-id",
];

/// The response headers a web page must be able to read: the challenge that leads to the
/// metadata, and the session id.
pub const CORS_EXPOSED_HEADERS: [&str; 2] = ["www-authenticate", "mcp-session-id"];

/// CORS for clients running in a web page (the MCP Inspector connecting directly), in front
/// of everything else: preflights (which never carry a token) are answered before the guard,
/// and `WWW-Authenticate` is exposed, so that the page can read the challenge and find the
/// metadata. `examples/whoami_actix.rs` builds the same policy with actix-cors.
pub fn browser_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(CORS_ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(CORS_EXPOSED_HEADERS.map(HeaderName::from_static))
}
