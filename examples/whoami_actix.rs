//! `cargo run --example whoami_actix`: the whoami MCP server of `examples/whoami.rs` on
//! actix-web 4 instead of axum, on port 3002 by default. Same settings (`--help`: `PORT`,
//! `MCP_AUTH_ISSUER`, ...), same behaviour, same output.
//!
//! [`serve`] is the whole integration: `McpAuth` and the bearer guard as in `whoami.rs`, then
//! mcp-auth's actix adapter:
//!
//! - `metadata_routes` serves the RFC 9728 metadata (`/.well-known/oauth-protected-resource/mcp`)
//!   without a token;
//! - `BearerAuthMiddleware` (`guard.actix_middleware()`) wraps the MCP endpoint only, and puts
//!   the verified `AuthInfo` into the request extensions (refusals are the same bytes as from
//!   the tower layer);
//! - the guard's MCP-aware checks (sessions bound to their caller, per-tool scopes) wrap rmcp's
//!   service as a tower layer (`checks_layer`), since the middleware has authenticated already.
//!
//! The MCP part is rmcp's Streamable HTTP service, the one the axum example mounts. actix-web 4
//! is built on `http` 0.2 and rmcp on `http` 1.x, so [`mcp_endpoint`] hands each request over
//! (method, URI, headers, body, and the verified `AuthInfo`) and copies the answer back. The
//! tools, in `common/tool.rs`, then take the verified identity as an argument, exactly as on
//! axum: `async fn whoami(&self, auth: AuthInfo) -> CallToolResult`. (The `rmcp-actix-web`
//! crate is another bridge; it strips `Authorization` and nests what its `on_request` hook
//! forwards one level deeper, so a tool would read the identity with
//! `rmcp_actix_web::transport::on_request_extensions` instead.)

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use http_body_util::{BodyDataStream, BodyExt, Full};
use mcp_auth::integrations::actix::metadata_routes;
use mcp_auth::tower::{McpChecksService, OperationScopes};
use mcp_auth::verify::{ApiKey, PrefixRouter};
use mcp_auth::{AuthInfo, McpAuth, ProtectedResource, TokenVerifier, UserinfoVerifier};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

use common::config::VerifierKind;
use common::setup::{Setup, SetupError};
use common::tool::{ADMIN_SCOPE, WhoAmI};

/// The rmcp service the actix handler forwards to, behind the guard's MCP-aware checks
/// (sessions bound to their caller, per-tool scopes); the actix middleware authenticates.
type McpService = McpChecksService<StreamableHttpService<WhoAmI, LocalSessionManager>>;

/// The largest MCP message accepted: rmcp's own default limit.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[actix_web::main]
async fn main() -> ExitCode {
    // The settings, the port, and the authorization server (MCP_AUTH_ISSUER's, or the
    // built-in test server, started here).
    let (listener, setup) = match common::start("actix-web", 3002).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match serve(listener, setup).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

async fn serve(listener: TcpListener, setup: Setup) -> Result<(), SetupError> {
    let resource = setup.resource.as_str(); // e.g. http://localhost:3002/mcp

    // 1. What is protected, and whom it trusts. `auth` serves the metadata and makes guards.
    let mut protected = ProtectedResource::new(resource)
        .authorization_server(setup.authorization_server.clone())
        .resource_name("mcp-auth whoami example")
        .scopes_supported(setup.config.required_scopes.clone());
    // MCP_AUTH_DPOP=allow|require: DPoP-bound tokens with proofs (RFC 9449), for every guard
    // of the resource, and published in its metadata.
    if let Some(dpop) = setup.dpop_config()? {
        protected = protected.dpop(dpop);
    }
    let auth = McpAuth::builder()
        .protected_resource(protected)
        .build()
        .map_err(SetupError::resource)?;

    // 2. The bearer guard. It accepts tokens from that issuer, for this resource (audience).
    let oauth: Arc<dyn TokenVerifier> = match setup.config.verifier {
        // mcp-auth's 'jwt' mode: JWT access tokens, checked with the issuer's JWKS (what
        // `auth.bearer_auth_jwt(resource)` uses, here as a value to combine with API keys).
        VerifierKind::Jwt => Arc::new(setup.jwt_verifier()?),
        // Opaque tokens, checked by asking the authorization server.
        VerifierKind::Userinfo => {
            Arc::new(UserinfoVerifier::new(setup.authorization_server.clone()))
        }
        VerifierKind::Introspection => Arc::new(setup.introspection_verifier()?),
    };
    // With MCP_AUTH_API_KEYS, tokens starting `mcpk_` are API keys, checked against their
    // hashes; every other token goes to the OAuth verifier. Neither ever sees the other's.
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
    let mut guard = guard
        .required_scopes(setup.config.required_scopes.clone())
        // A development aid: refusals say why (expected vs actual audience, scopes, ...).
        .show_error_details(true);
    if !setup.config.audience.is_empty() {
        guard = guard.audience(setup.config.audience.clone()); // instead of the resource
    }
    if setup.config.verifier == VerifierKind::Userinfo {
        // Userinfo answers carry no audience: the check cannot be made (the banner warns).
        guard = guard.skip_audience_check();
    }
    let guard = guard.build().map_err(SetupError::resource)?;
    // After authentication: each session is bound to its caller (the default), and `secret`
    // also needs `admin` (403 with a step-up challenge). The challenge keeps the OpenID
    // scopes the caller holds: the identity claims depend on them.
    let policy = OperationScopes::builder()
        .tool("secret", [ADMIN_SCOPE])
        .known_scopes(["openid", "profile", "email"])
        .build()
        .map_err(SetupError::other)?;
    let checks = guard.mcp_guard().operation_scopes(policy).checks_layer();

    // 3. The MCP endpoint behind the guard, and 4. the metadata, which needs no token.
    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI::new()),
        LocalSessionManager::default().into(),
        setup.rmcp_config(), // stateless, JSON answers; rmcp checks the Host header
    );
    let mcp: web::Data<McpService> = web::Data::new(checks.layer(mcp));
    let middleware = guard.actix_middleware();
    let metadata = auth.metadata_service();
    let mcp_path = setup.mcp_path.clone();
    let app = move || {
        App::new()
            // Outermost: web pages get their CORS preflights answered before the guard.
            .wrap(browser_cors())
            .configure(metadata_routes(metadata.clone()))
            .service(
                web::resource(mcp_path.as_str())
                    .wrap(middleware.clone()) // every MCP request authenticated first
                    .app_data(mcp.clone())
                    .app_data(web::PayloadConfig::new(MAX_MESSAGE_BYTES))
                    .route(web::route().to(mcp_endpoint)),
            )
    };

    let listener = listener.into_std().map_err(|error| {
        SetupError::other(format!(
            "cannot hand the listening socket to actix-web: {error}"
        ))
    })?;
    let server = HttpServer::new(app).listen(listener).map_err(|error| {
        SetupError::other(format!(
            "actix-web cannot listen on {}: {error}",
            setup.local_addr
        ))
    })?;
    common::banner::print(&setup, "actix-web");
    // actix-web stops gracefully on Ctrl-C and SIGTERM by itself.
    server
        .run()
        .await
        .map_err(|error| SetupError::other(format!("the server stopped: {error}")))
}

/// Hands an actix request (already authenticated by the middleware) to rmcp's service and
/// copies its answer back: actix-web 4 speaks `http` 0.2, rmcp `http` 1.x.
async fn mcp_endpoint(
    request: HttpRequest,
    body: web::Bytes,
    mcp: web::Data<McpService>,
) -> HttpResponse {
    let mut bridged = http::Request::builder()
        .method(request.method().as_str())
        .uri(request.uri().to_string());
    for (name, value) in request.headers() {
        bridged = bridged.header(name.as_str(), value.as_bytes());
    }
    let mut bridged = match bridged.body(Full::new(body)) {
        Ok(bridged) => bridged,
        Err(_) => return HttpResponse::BadRequest().finish(),
    };
    // Where mcp-auth's rmcp extractor looks for the caller, as behind the tower layer.
    if let Some(info) = request.extensions().get::<AuthInfo>() {
        bridged.extensions_mut().insert(info.clone());
    }

    let response = match mcp.get_ref().clone().oneshot(bridged).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        // actix frames the body itself (length or chunked; SSE streams stay streams).
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    // actix wants `Box<dyn Error>` errors; the checks' body has `Send + Sync` ones.
    let body = body.map_err(|error| -> Box<dyn std::error::Error> { error });
    response.streaming(BodyDataStream::new(body))
}

/// CORS for clients running in a web page: the policy of `common::apps::browser_cors`, with
/// actix-cors.
fn browser_cors() -> actix_cors::Cors {
    use common::apps::{CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS};
    actix_cors::Cors::default()
        .allow_any_origin()
        .send_wildcard()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(CORS_ALLOWED_HEADERS)
        .expose_headers(CORS_EXPOSED_HEADERS)
}
