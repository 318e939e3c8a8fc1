//! The CORS policy the whoami examples put in front of everything, and the examples' apps
//! rebuilt from a [`Setup`] for the code that serves them in-process: the tests
//! (`tests/whoami_example.rs`, `tests/rmcp_client.rs`) and the load tools (`benches/load/`).
//!
//! [`Protection::new`] and the apps below are the wiring each example shows in its own file
//! (`examples/whoami.rs` for axum, `examples/whoami_hyper.rs` for hyper), step for step: keep
//! them in step. The examples themselves are run as binaries by the `binary_*` tests of
//! `tests/whoami_example.rs` and by `tests/interop/run.sh`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderName;
use http::{Method, Request, Response};
use http_body::Body;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use mcp_auth::integrations::hyper::McpRouter;
use mcp_auth::tower::{McpGuard, OperationScopes, OperationScopesBuilder};
use mcp_auth::verify::{ApiKey, PrefixRouter};
use mcp_auth::{
    BearerAuth, BearerAuthBuilder, McpAuth, ProtectedResource, TokenVerifier, UserinfoVerifier,
};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tower::{BoxError, Layer, Service, ServiceBuilder};
use tower_http::cors::{Any, CorsLayer};

use super::config::VerifierKind;
use super::setup::{Setup, SetupError};
use super::tool::{ADMIN_SCOPE, WhoAmI};

/// The examples' authorization, built from a [`Setup`] as each example builds it in its
/// steps 1 and 2.
pub struct Protection {
    /// The protected resource and the authorization server it trusts.
    pub auth: McpAuth,
    /// The bearer guard: the verifier, the required scopes and the accepted audience.
    pub guard: BearerAuth,
}

impl Protection {
    /// Step 1 (`McpAuth`) and the bearer guard of step 2, with the verifier `MCP_AUTH_VERIFIER`
    /// names, and beside it the API keys of `MCP_AUTH_API_KEYS` (tokens starting `mcpk_`).
    pub fn new(setup: &Setup) -> Result<Self, SetupError> {
        let auth = mcp_auth(setup)?;
        let resource = setup.resource.as_str();
        let oauth: Arc<dyn TokenVerifier> = match setup.config.verifier {
            VerifierKind::Jwt => Arc::new(setup.jwt_verifier()?),
            VerifierKind::Userinfo => {
                Arc::new(UserinfoVerifier::new(setup.authorization_server.clone()))
            }
            VerifierKind::Introspection => Arc::new(setup.introspection_verifier()?),
        };
        let guard = match setup.api_key_verifier()? {
            Some(keys) => {
                let verifier = PrefixRouter::builder(oauth)
                    .route(ApiKey::DEFAULT_PREFIX, keys)
                    .build()
                    .map_err(SetupError::other)?;
                auth.bearer_auth(resource, verifier)
            }
            None => auth.bearer_auth(resource, oauth),
        };
        let guard = guard_settings(setup, guard)
            .build()
            .map_err(SetupError::resource)?;
        Ok(Self { auth, guard })
    }

    /// The bearer guard with the MCP-aware checks, in order: authentication, sessions bound to
    /// the caller that created them (the default), then the per-tool scopes.
    pub fn mcp_guard(&self) -> McpGuard {
        self.guard.mcp_guard().operation_scopes(operation_scopes())
    }
}

/// Step 1 of the examples: the protected resource and the authorization server it trusts.
pub fn mcp_auth(setup: &Setup) -> Result<McpAuth, SetupError> {
    let mut resource = ProtectedResource::new(setup.resource.as_str())
        .authorization_server(setup.authorization_server.clone())
        .resource_name("mcp-auth whoami example")
        .scopes_supported(setup.config.required_scopes.clone());
    if let Some(dpop) = setup.dpop_config()? {
        resource = resource.dpop(dpop);
    }
    McpAuth::builder()
        .protected_resource(resource)
        .build()
        .map_err(SetupError::resource)
}

/// What the examples set on every bearer guard, whatever its verifier: the required scopes,
/// error details, and the accepted audience (`MCP_AUTH_AUDIENCE`; none for userinfo).
pub fn guard_settings(setup: &Setup, guard: BearerAuthBuilder) -> BearerAuthBuilder {
    let mut guard = guard
        .required_scopes(setup.config.required_scopes.clone())
        .show_error_details(true);
    if !setup.config.audience.is_empty() {
        guard = guard.audience(setup.config.audience.clone());
    }
    if setup.config.verifier == VerifierKind::Userinfo {
        guard = guard.skip_audience_check();
    }
    guard
}

/// The examples' per-tool scopes: `secret` needs `admin` on top of the required scopes, and
/// step-up challenges repeat the OpenID scopes the caller holds.
///
/// # Panics
///
/// Never: the scopes are literals `build` accepts.
pub fn operation_scopes() -> OperationScopes {
    operation_scopes_builder()
        .build()
        .expect("the examples' per-tool scopes are valid scope tokens")
}

/// The settings of [`operation_scopes`], for variants (the load bench's trusted-headers route).
pub fn operation_scopes_builder() -> OperationScopesBuilder {
    OperationScopes::builder()
        .tool("secret", [ADMIN_SCOPE])
        .known_scopes(["openid", "profile", "email"])
}

/// The rmcp service of the examples (not guarded), serving the `whoami` and `secret` tools.
pub fn mcp_service(setup: &Setup) -> StreamableHttpService<WhoAmI, LocalSessionManager> {
    StreamableHttpService::new(
        || Ok(WhoAmI::new()),
        LocalSessionManager::default().into(),
        setup.rmcp_config(),
    )
}

/// The axum app of `examples/whoami.rs`: [`axum_routes`], and [`browser_cors`] in front.
///
/// # Panics
///
/// If [`Protection::new`] refuses the settings (the example would exit with code 2).
pub fn axum_app(setup: &Setup) -> axum::Router {
    axum_routes(setup, &protection(setup)).layer(browser_cors())
}

/// The guarded MCP endpoint and the metadata endpoints of `examples/whoami.rs`, without CORS
/// (what the load benchmark's `bench_server` measures, next to its twin routes).
pub fn axum_routes(setup: &Setup, protection: &Protection) -> axum::Router {
    // `without_v07_checks`: a resource path may have a segment starting with `:` or `*`,
    // which axum 0.8 otherwise rejects (with a panic) as 0.7-style route syntax.
    axum::Router::new()
        .without_v07_checks()
        .route_service(
            &setup.mcp_path,
            protection.mcp_guard().layer().layer(mcp_service(setup)),
        )
        .merge(protection.auth.metadata_router())
}

/// The tower service `examples/whoami_hyper.rs` serves with hyper: the same routes as
/// [`axum_app`], and [`browser_cors`] in front.
///
/// # Panics
///
/// If [`Protection::new`] refuses the settings (the example would exit with code 2).
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
    let protection = protection(setup);
    with_browser_cors(McpRouter::new(
        protection.auth.metadata_service(),
        setup.mcp_path.clone(),
        protection.mcp_guard().layer().layer(mcp_service(setup)),
    ))
}

/// The apps' [`Protection`]: the tests and the load tools give only settings the examples
/// accept, so a refusal is a bug in them.
fn protection(setup: &Setup) -> Protection {
    match Protection::new(setup) {
        Ok(protection) => protection,
        Err(error) => panic!("the whoami examples refuse these settings: {error}"),
    }
}

/// `service` (a hyper app) with [`browser_cors`] in front, and one body type for every answer.
pub fn with_browser_cors<S, B>(
    service: S,
) -> impl Service<
    Request<Incoming>,
    Response = Response<UnsyncBoxBody<Bytes, BoxError>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    ServiceBuilder::new()
        .layer(browser_cors())
        // The CORS layer answers preflights with an empty body of the service's body type.
        .map_response(box_body)
        .service(service)
}

/// One body type for every answer, with a `Default` (the CORS layer's preflight answers).
fn box_body<B>(response: Response<B>) -> Response<UnsyncBoxBody<Bytes, BoxError>>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// The request headers a web-page MCP client sends: the token (and its DPoP proof), the
/// JSON-RPC body's type, and
/// the Streamable HTTP headers (MCP 2026-07-28 adds `Mcp-Method` and `Mcp-Name`).
pub const CORS_ALLOWED_HEADERS: [&str; 8] = [
    "authorization",
    "dpop",
    "content-type",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "mcp-session-id",
    "last-event-id",
];

/// The response headers a web page must be able to read: the challenge that leads to the
/// metadata, the DPoP server nonce, and the session id.
pub const CORS_EXPOSED_HEADERS: [&str; 3] = ["www-authenticate", "dpop-nonce", "mcp-session-id"];

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
