//! The benchmark server of `benches/load/run.sh` and `benches/load/memory.sh` (tooling, not an
//! example to copy): the `whoami` example's axum app, unchanged (same configuration variables,
//! same guarded `/mcp` route with the example's whole guard: bearer authentication, session
//! binding and per-tool scopes), plus two twins of that route serving the same rmcp `whoami`
//! service:
//!
//! - `/mcp-bearer`: behind the bearer guard alone (`BearerAuthLayer`), the layout of a server
//!   that needs no per-tool scopes;
//! - `/mcp-noauth`: without any guard; a fixed `AuthInfo` stands in for the verified one, so
//!   the tool does the same work. Comparing the routes gives the cost of authentication;
//! - `/mcp-trusted`: the example's whole guard with
//!   `OperationScopesBuilder::mcp_headers_checked_by_service` (rmcp 3.11 compares the MCP
//!   2026-07-28 `Mcp-Method` / `Mcp-Name` headers with the body itself), so a 2026-07-28
//!   request the headers allow is passed on without the guard reading its body.
//!
//! Build it with `cargo build --release -p mcp-auth-load --bin bench_server`: it is
//! `target/release/bench_server`. Configure it like the whoami example (`PORT`,
//! `MCP_AUTH_ISSUER`, `MCP_AUTH_RESOURCE`, `MCP_AUTH_REQUIRED_SCOPES`, ...).
//! One more variable, for the memory measurement: `BENCH_VERIFIED_TOKEN_CACHE=<entries>` sizes
//! the JWT verifier's verified-token cache (default 10 000; 0 turns it off). SIGTERM or Ctrl-C
//! stops it gracefully.

// The whoami examples' shared module: their settings, set-up and app, unchanged.
#[path = "../../../examples/common/mod.rs"]
mod common;

use std::process::ExitCode;

use axum::body::Body;
use http::Request;
use mcp_auth::AuthInfo;
use serde_json::json;
use tower::Layer;
use tower::util::MapRequestLayer;

use common::apps::{self, Protection};
use common::config::VerifierKind;
use common::setup::Setup;

/// The route serving the same MCP service without authentication.
const UNGUARDED_PATH: &str = "/mcp-noauth";
/// The route serving the same MCP service behind the bearer guard alone.
const BEARER_ONLY_PATH: &str = "/mcp-bearer";
/// The route serving the same MCP service behind the whole guard, trusting rmcp's header check.
const TRUSTED_HEADERS_PATH: &str = "/mcp-trusted";

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, setup) = match common::start("axum", 3001).await {
        Ok(started) => started,
        Err(code) => return code,
    };
    let cache_entries = std::env::var("BENCH_VERIFIED_TOKEN_CACHE").ok();
    let protection = match &cache_entries {
        Some(entries) => match resized_token_cache(&setup, entries) {
            Ok(protection) => protection,
            Err(problem) => {
                eprintln!("error: BENCH_VERIFIED_TOKEN_CACHE: {problem}");
                return ExitCode::from(2);
            }
        },
        None => match Protection::new(&setup) {
            Ok(protection) => protection,
            Err(error) => return error.report(),
        },
    };
    common::banner::print(&setup, "axum");
    if let Some(entries) = cache_entries {
        println!("  verified-token cache {entries} entries");
    }
    let identity = stand_in_identity(&setup);
    let unguarded = MapRequestLayer::new(move |mut request: Request<Body>| {
        request.extensions_mut().insert(identity.clone());
        request
    })
    .layer(apps::mcp_service(&setup));
    let bearer_only = protection.guard.layer().layer(apps::mcp_service(&setup));
    let trusted_policy = match apps::operation_scopes_builder()
        .mcp_headers_checked_by_service()
        .build()
    {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("error: the trusted-headers policy: {error}");
            return ExitCode::FAILURE;
        }
    };
    let trusted = protection
        .guard
        .mcp_guard()
        .operation_scopes(trusted_policy)
        .layer()
        .layer(apps::mcp_service(&setup));
    let app = apps::axum_routes(&setup, &protection)
        .route_service(UNGUARDED_PATH, unguarded)
        .route_service(BEARER_ONLY_PATH, bearer_only)
        .route_service(TRUSTED_HEADERS_PATH, trusted);
    let here = setup.local_addr;
    println!("  unguarded twin      http://{here}{UNGUARDED_PATH}");
    println!("  bearer-only twin    http://{here}{BEARER_ONLY_PATH}");
    println!("  trusted-headers twin http://{here}{TRUSTED_HEADERS_PATH}");
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

/// The example's protection with a JWT verifier that keeps at most `entries` verified tokens.
fn resized_token_cache(setup: &Setup, entries: &str) -> Result<Protection, String> {
    let entries: u64 = entries
        .parse()
        .map_err(|e| format!("{entries:?} is not a number of entries: {e}"))?;
    if setup.config.verifier != VerifierKind::Jwt {
        return Err("only the JWT verifier has a verified-token cache".into());
    }
    let auth = apps::mcp_auth(setup).map_err(|e| e.to_string())?;
    let guard = auth.bearer_auth_jwt_with(setup.resource.as_str(), |jwt| {
        // 0 measures the verifier without its cache.
        if entries == 0 {
            jwt.cache(false)
        } else {
            jwt.max_entries(entries)
        }
    });
    let guard = apps::guard_settings(setup, guard)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Protection { auth, guard })
}

/// What the guard would hand the tool for a typical token: subject, client, scopes, audience
/// and the identity claims the load script's token carries.
fn stand_in_identity(setup: &Setup) -> AuthInfo {
    let scopes = if setup.config.required_scopes.is_empty() {
        vec!["read".to_owned(), "write".to_owned()]
    } else {
        setup.config.required_scopes.clone()
    };
    let claims = json!({
        "iss": setup.issuer,
        "sub": "alice",
        "aud": setup.resource,
        "client_id": "test-client",
        "scope": scopes.join(" "),
        "exp": 4_102_444_800_i64,
        "name": "Alice Example",
        "email": "alice@example.com",
        "username": "alice",
    });
    let claims = match claims {
        serde_json::Value::Object(claims) => claims,
        _ => serde_json::Map::new(),
    };
    match AuthInfo::from_claims("stand-in", claims) {
        Ok(info) => info,
        Err(_) => AuthInfo::new("stand-in", setup.issuer.clone()).with_subject("alice"),
    }
}
