//! The whoami example's whole guard (`McpGuard`: bearer authentication with a cached RS256
//! token, session binding, per-tool scopes) around a trivial tower service, for the same
//! `tools/call whoami` request sent three ways, in one run:
//!
//! - `mcp_headers/body_probe_2025_11_25`: `MCP-Protocol-Version: 2025-11-25`, no `Mcp-*`
//!   headers: the layer reads and probes the body to find the tool;
//! - `mcp_headers/headers_checked_2026_07_28`: `2026-07-28` with `Mcp-Method` / `Mcp-Name`:
//!   the policy decides from the headers, then the layer reads the body and checks it agrees
//!   (the default);
//! - `mcp_headers/headers_trusted_2026_07_28`: the same request with
//!   `OperationScopesBuilder::mcp_headers_checked_by_service` (the MCP service compares headers
//!   and body, as rmcp 3.11 does): the body is passed on unread;
//! - `mcp_headers/headers_refused_2026_07_28`: the headers name `secret`, which the token may
//!   not call: 403 from the headers, body unread;
//! - `mcp_headers/bearer_only`: `BearerAuthLayer` alone, the floor to compare with.
//!
//! Run with `cargo bench --bench mcp_headers`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::tower::OperationScopes;
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
use tower::{Layer, ServiceExt, service_fn};

const RESOURCE: &str = "https://api.example.com/mcp";
const LEGACY_WHOAMI: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
const MODERN_WHOAMI: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

async fn ok<B>(_request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// How the request declares its operation.
#[derive(Clone, Copy)]
enum Shape {
    Legacy,
    Modern { tool: &'static str },
}

fn request(authorization: &str, shape: Shape) -> Request<Full<Bytes>> {
    let builder = Request::post(RESOURCE)
        .header(AUTHORIZATION, authorization)
        .header("content-type", "application/json");
    let (builder, body) = match shape {
        Shape::Legacy => (
            builder.header("mcp-protocol-version", "2025-11-25"),
            LEGACY_WHOAMI,
        ),
        Shape::Modern { tool } => (
            builder
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", tool),
            MODERN_WHOAMI,
        ),
    };
    builder
        .body(Full::new(Bytes::from_static(body)))
        .expect("request")
}

fn mcp_headers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestAuthServer::start())
        .expect("test authorization server");
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc)),
        )
        .build()
        .expect("configuration");
    let guard = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["read"])
        .build()
        .expect("guard");
    let policy = || OperationScopes::builder().tool("secret", ["admin"]);
    let inner = || service_fn(ok::<Either<Full<Bytes>, Full<Bytes>>>);
    let checked = guard
        .mcp_guard()
        .operation_scopes(policy().build().expect("policy"))
        .layer()
        .layer(inner());
    let trusted = guard
        .mcp_guard()
        .operation_scopes(
            policy()
                .mcp_headers_checked_by_service()
                .build()
                .expect("policy"),
        )
        .layer()
        .layer(inner());
    let bearer_only = guard.layer().layer(service_fn(ok));

    let token = server.token().audience(RESOURCE).scope("read write").sign();
    let bearer = format!("Bearer {token}");
    let whoami = Shape::Modern { tool: "whoami" };
    let secret = Shape::Modern { tool: "secret" };
    // Warm up (discovery, JWKS, the verified-token cache) and check each case's answer.
    for (service, shape, status) in [
        (&checked, Shape::Legacy, StatusCode::OK),
        (&checked, whoami, StatusCode::OK),
        (&trusted, whoami, StatusCode::OK),
        (&checked, secret, StatusCode::FORBIDDEN),
    ] {
        let response = rt
            .block_on(service.clone().oneshot(request(&bearer, shape)))
            .expect("infallible");
        assert_eq!(response.status(), status);
    }
    let response = rt
        .block_on(bearer_only.clone().oneshot(request(&bearer, whoami)))
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);

    let mut group = c.benchmark_group("mcp_headers");
    group.measurement_time(Duration::from_secs(4));
    for (name, service, shape) in [
        ("body_probe_2025_11_25", &checked, Shape::Legacy),
        ("headers_checked_2026_07_28", &checked, whoami),
        ("headers_trusted_2026_07_28", &trusted, whoami),
        ("headers_refused_2026_07_28", &checked, secret),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                service
                    .clone()
                    .oneshot(request(black_box(&bearer), shape))
                    .await
            })
        });
    }
    group.bench_function("bearer_only", |b| {
        b.to_async(&rt).iter(|| async {
            bearer_only
                .clone()
                .oneshot(request(black_box(&bearer), whoami))
                .await
        })
    });
    group.finish();
}

criterion_group!(benches, mcp_headers);
criterion_main!(benches);
