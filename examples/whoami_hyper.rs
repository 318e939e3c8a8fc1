//! `cargo run --example whoami_hyper`: the whoami MCP server of `examples/whoami.rs` served
//! with plain hyper 1 + hyper-util instead of axum, on port 3003 by default. Same settings
//! (`--help`), same behaviour.
//!
//! The routing is `mcp_auth::integrations::hyper::McpRouter` (metadata paths, the MCP path
//! behind `BearerAuthLayer`, 404 otherwise) and the serving loop
//! `mcp_auth::integrations::hyper::Server` (`TowerToHyperService`, HTTP/1.1 and HTTP/2,
//! graceful shutdown).

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use mcp_auth::integrations::hyper::Server;

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, setup) = match common::start("hyper", 3003).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let app = common::apps::hyper_app(&setup);
    Server::new(listener, app)
        .serve_with_shutdown(common::shutdown_signal())
        .await;
    ExitCode::SUCCESS
}
