//! `cargo run --example whoami_hyper`: the whoami MCP server of `examples/whoami.rs` served
//! with plain hyper 1 + hyper-util instead of axum, on port 3003 by default. Same settings
//! (`--help`), same behaviour.
//!
//! [`serve`] is the whole integration, as in `whoami.rs`: `McpAuth`, the bearer guard, and
//! then the hyper part: `mcp_auth::integrations::hyper::McpRouter` routes the metadata paths
//! (no token), the MCP path (behind the guard's tower layer) and answers 404 otherwise, and
//! `mcp_auth::integrations::hyper::Server` runs the serving loop (`TowerToHyperService`,
//! HTTP/1.1 and HTTP/2, header-read and idle timeouts, a connection limit, graceful shutdown).
//! The tools, in `common/tool.rs`, take the verified identity as an argument:
//! `async fn whoami(&self, auth: AuthInfo) -> CallToolResult`.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

use mcp_auth::integrations::hyper::{McpRouter, Server};
use mcp_auth::tower::OperationScopes;
use mcp_auth::verify::{ApiKey, PrefixRouter};
use mcp_auth::{McpAuth, ProtectedResource, TokenVerifier, UserinfoVerifier};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::net::TcpListener;
use tower::Layer;

use common::config::VerifierKind;
use common::setup::{Setup, SetupError};
use common::tool::{ADMIN_SCOPE, WhoAmI};

#[tokio::main]
async fn main() -> ExitCode {
    // The settings, the port, and the authorization server (MCP_AUTH_ISSUER's, or the
    // built-in test server, started here).
    let (listener, setup) = match common::start("hyper", 3003).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match serve(listener, setup).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

async fn serve(listener: TcpListener, setup: Setup) -> Result<(), SetupError> {
    let resource = setup.resource.as_str(); // e.g. http://localhost:3003/mcp

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
    let guard = guard.mcp_guard().operation_scopes(policy);

    // 3. The MCP endpoint behind the guard, and 4. the metadata, which needs no token.
    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI::new()),
        LocalSessionManager::default().into(),
        setup.rmcp_config(), // stateless, JSON answers; rmcp checks the Host header
    );
    let router = McpRouter::new(
        auth.metadata_service(),
        setup.mcp_path.clone(),
        guard.layer().layer(mcp),
    );
    // Outermost: web pages get their CORS preflights answered before the guard.
    let app = common::apps::with_browser_cors(router);

    common::banner::print(&setup, "hyper");
    // The default connection limits (header-read 10 s, idle 60 s, 1024 connections) apply.
    Server::new(listener, app)
        .serve_with_shutdown(common::shutdown_signal())
        .await
        .map_err(SetupError::other)
}
