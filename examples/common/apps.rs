//! The web apps of the examples, built from a [`Setup`]: the guarded MCP endpoint plus the
//! metadata endpoints (outside the guard). The guard is `Setup::mcp_guard`: bearer
//! authentication, sessions bound to their caller, and the per-tool scopes.

use mcp_auth::integrations::hyper::McpRouter;
use mcp_auth::tower::McpGuardService;
use tower::Layer;

use super::setup::Setup;

/// The axum app of `examples/whoami.rs`.
pub fn axum_app(setup: &Setup) -> axum::Router {
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

/// The tower service `examples/whoami_hyper.rs` serves with hyper.
pub fn hyper_app(
    setup: &Setup,
) -> McpRouter<
    McpGuardService<
        rmcp::transport::streamable_http_server::StreamableHttpService<
            super::tool::WhoAmI,
            rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
        >,
    >,
> {
    McpRouter::new(
        setup.auth.metadata_service(),
        setup.mcp_path.clone(),
        setup.mcp_guard().layer().layer(setup.mcp_service()),
    )
}
