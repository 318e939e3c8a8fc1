//! `cargo run --example whoami`: an MCP server (rmcp Streamable HTTP on axum) protected by
//! mcp-auth, with one tool, `whoami`, that returns the caller's verified identity.
//!
//! With no configuration it starts the crate's built-in test authorization server (local
//! development only), listens on http://127.0.0.1:3001, and prints a token and the curl
//! requests to try. `--help` lists the settings (`PORT`, `MCP_AUTH_ISSUER`, ...).
//!
//! The layout: the MCP endpoint (`/mcp`) behind `BearerAuthLayer`, the RFC 9728 metadata
//! (`/.well-known/oauth-protected-resource/mcp`) outside it, and the tool reading `AuthInfo`
//! through mcp-auth's rmcp extractor. rmcp only accepts loopback `Host` headers by default;
//! a public deployment lists its hostnames with `StreamableHttpServerConfig::with_allowed_hosts`
//! (see `common/setup.rs`).

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, setup) = match common::start("axum", 3001).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let app = common::apps::axum_app(&setup);
    match axum::serve(listener, app)
        .with_graceful_shutdown(common::shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
