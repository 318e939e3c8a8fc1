//! `cargo run --example whoami`: an MCP server (rmcp Streamable HTTP on axum) protected by
//! mcp-auth, with one tool, `whoami`, that returns the caller's verified identity.
//!
//! With no configuration it starts the crate's built-in test authorization server (local
//! development only), listens on http://127.0.0.1:3001, and prints a token and the curl
//! requests to try. `--help` lists the settings (`PORT`, `MCP_AUTH_ISSUER`, ...).
//!
//! [`serve`] is the whole integration, in order:
//!
//! 1. `McpAuth`: the protected resource and the authorization server it trusts;
//! 2. the bearer guard: the token verifier, the scopes every request needs, then the MCP-aware
//!    checks (per-tool scopes with step-up challenges, sessions bound to their caller);
//! 3. the guard as a tower layer around rmcp's `StreamableHttpService`, at `/mcp`;
//! 4. the RFC 9728 metadata (`/.well-known/oauth-protected-resource/mcp`), outside the guard;
//! 5. the tools, in `common/tool.rs`, take the verified identity as an argument:
//!    `async fn whoami(&self, auth: AuthInfo) -> CallToolResult` (mcp-auth's rmcp extractor).
//!
//! The rest is plumbing, in `common/`: reading the settings, starting the test authorization
//! server, the banner, and the CORS policy for web-page clients. One note for deployment:
//! rmcp only accepts loopback `Host` headers by default; a public server lists its hostnames
//! with `StreamableHttpServerConfig::with_allowed_hosts` (see `Setup::rmcp_config`).

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;

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
    let (listener, setup) = match common::start("axum", 3001).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match serve(listener, setup).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}

async fn serve(listener: TcpListener, setup: Setup) -> Result<(), SetupError> {
    let resource = setup.resource.as_str(); // e.g. http://localhost:3001/mcp

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
    let app = axum::Router::new()
        // A resource path may have a segment starting with `:` or `*`, which axum 0.8
        // otherwise rejects (with a panic) as 0.7-style route syntax.
        .without_v07_checks()
        .route_service(&setup.mcp_path, guard.layer().layer(mcp))
        .merge(auth.metadata_router())
        // Outermost: web pages get their CORS preflights answered before the guard.
        .layer(common::apps::browser_cors());

    common::banner::print(&setup, "axum");
    axum::serve(listener, app)
        .with_graceful_shutdown(common::shutdown_signal())
        .await
        .map_err(|error| SetupError::other(format!("the server stopped: {error}")))
}
