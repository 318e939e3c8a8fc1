//! `cargo run --example metrics_prometheus --features metrics`: a guarded endpoint and a
//! Prometheus page of mcp-auth's metrics.
//!
//! It starts the crate's built-in **test** authorization server (local development only: it
//! gives a token to anyone who asks), then listens on http://127.0.0.1:3004 (`PORT` to change;
//! `0` for any free port) with:
//!
//! - `/mcp` behind the bearer guard (a plain handler answering the caller's subject; an rmcp
//!   service mounts the same way, see the `whoami` example);
//! - `/metrics`: the Prometheus text format, rendered by `metrics-exporter-prometheus` through
//!   its handle in an axum route (its own HTTP listener is not needed, so its default features
//!   are off);
//! - the RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp`.
//!
//! It prints a token and the `curl` commands to try; each request to `/mcp` moves
//! `mcp_auth_requests_total`, the first one also `mcp_auth_jwks_fetches_total`, and repeated
//! tokens `mcp_auth_cache_lookups_total{cache="jwt",result="hit"}`.

use std::error::Error;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{any, get};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // 1. The recorder: installed once, before anything records. Every exporter of the
    //    `metrics` ecosystem (OpenTelemetry, StatsD, ...) is installed the same way.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    mcp_auth::metrics::describe();

    // 2. The authorization server (the test one here; yours in production) and the guard.
    let server = TestAuthServer::start().await?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT is not a port: {port:?}"))?,
        Err(_) => 3004,
    };
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://localhost:{}/mcp", addr.port());
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(&resource)
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc))
                .scopes_supported(["read"]),
        )
        .build()?;
    let guard = auth
        .bearer_auth_jwt(&resource)
        .required_scopes(["read"])
        .build()?;

    // 3. The app: the guarded endpoint, the metadata, and `/metrics` outside the guard
    //    (in production, serve it on an internal port or behind its own access control).
    let app = Router::new()
        .route(
            "/mcp",
            any(
                |axum::Extension(info): axum::Extension<AuthInfo>| async move {
                    format!("hello, {}\n", info.subject.unwrap_or_default())
                },
            ),
        )
        .route_layer(guard.layer())
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .merge(auth.metadata_router());

    let token = server
        .token()
        .subject("alice")
        .audience(resource.as_str())
        .scope("read")
        .sign();
    let base = format!("http://localhost:{}", addr.port());
    println!(
        "listening on {base} (test authorization server at {})",
        server.issuer()
    );
    println!("try:");
    println!("  curl -i {base}/mcp                      # 401: no token");
    println!("  curl -i -H 'Authorization: Bearer not-a-jwt' {base}/mcp   # 401 invalid_token");
    println!("  curl -i -H 'Authorization: Bearer {token}' {base}/mcp");
    println!("  curl {base}/metrics | grep mcp_auth_");
    axum::serve(listener, app).await?;
    Ok(())
}
