//! The whole `BearerAuthLayer` around a trivial tower service (it answers 200 with an empty
//! body), as a server runs it, with the built-in JWT verifier (`McpAuth::bearer_auth_jwt`,
//! keys from a real JWKS served by the test authorization server, RS256 tokens).
//!
//! - `layer/baseline_no_layer`: the trivial service alone, to subtract;
//! - `layer/accepted_cached`: a token seen before (the normal case: clients reuse their token),
//!   answered by the verified-token cache (the default);
//! - `layer/accepted_fresh`: the verified-token cache off, so a full RS256 verification;
//! - `layer/accepted_cached_mcp_guard`: the whoami example's whole guard (`McpGuard`: bearer
//!   authentication, session binding, per-tool scopes, which reads the JSON-RPC body), cached
//!   token, a `tools/call` body;
//! - `layer/rejected_no_token`: 401 with the challenge, no verification;
//! - `layer/rejected_malformed_header`: 400 `invalid_request`;
//! - `layer/rejected_bad_signature`: 401 `invalid_token` after a failed RS256 check (one
//!   signature byte changed);
//! - `layer/rejected_insufficient_scope`: 403 for a cached token without the required scope.
//!
//! Run with `cargo bench --bench layer`.

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
const WHOAMI: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

async fn ok<B>(_request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

fn request(authorization: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::post(RESOURCE);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value);
    }
    builder
        .body(Full::new(Bytes::from_static(WHOAMI)))
        .expect("request")
}

fn layer(c: &mut Criterion) {
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
    let cached = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["read"])
        .build()
        .expect("guard");
    let fresh = auth
        .bearer_auth_jwt_with(RESOURCE, |jwt| jwt.cache(false))
        .required_scopes(["read"])
        .build()
        .expect("guard");
    let policy = OperationScopes::builder()
        .tool("secret", ["admin"])
        .build()
        .expect("policy");
    let cached_service = cached.layer().layer(service_fn(ok));
    let mcp_guard_service = cached
        .mcp_guard()
        .operation_scopes(policy)
        .layer()
        .layer(service_fn(ok::<Either<Full<Bytes>, Full<Bytes>>>));
    let fresh_service = fresh.layer().layer(service_fn(ok));
    let baseline = service_fn(ok);

    let token = server.token().audience(RESOURCE).scope("read write").sign();
    let bearer = format!("Bearer {token}");
    // One character in the middle of the signature changed: valid base64url, wrong signature.
    let middle = token.len() - 100;
    let swapped = if token.as_bytes()[middle] == b'A' {
        "B"
    } else {
        "A"
    };
    let forged = format!(
        "Bearer {}{swapped}{}",
        &token[..middle],
        &token[middle + 1..]
    );
    let unscoped = format!(
        "Bearer {}",
        server.token().audience(RESOURCE).scope("write").sign()
    );
    let malformed = format!("Bearer {token} extra");

    // Warm up: discovery, JWKS, and the verified-token cache.
    let response = rt
        .block_on(mcp_guard_service.clone().oneshot(request(Some(&bearer))))
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    for (service, authorization, status) in [
        (&cached_service, Some(bearer.as_str()), StatusCode::OK),
        (&fresh_service, Some(bearer.as_str()), StatusCode::OK),
        (&cached_service, None, StatusCode::UNAUTHORIZED),
        (
            &cached_service,
            Some(malformed.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            &cached_service,
            Some(forged.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &cached_service,
            Some(unscoped.as_str()),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let response = rt
            .block_on(service.clone().oneshot(request(authorization)))
            .expect("infallible");
        assert_eq!(response.status(), status, "{authorization:?}");
    }

    let mut group = c.benchmark_group("layer");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("baseline_no_layer", |b| {
        b.to_async(&rt)
            .iter(|| async { baseline.oneshot(request(Some(black_box(&bearer)))).await })
    });
    group.bench_function("accepted_cached_mcp_guard", |b| {
        b.to_async(&rt).iter(|| async {
            mcp_guard_service
                .clone()
                .oneshot(request(Some(black_box(&bearer))))
                .await
        })
    });
    let cases = [
        ("accepted_cached", &cached_service, Some(&bearer)),
        ("accepted_fresh", &fresh_service, Some(&bearer)),
        ("rejected_no_token", &cached_service, None),
        (
            "rejected_malformed_header",
            &cached_service,
            Some(&malformed),
        ),
        ("rejected_bad_signature", &cached_service, Some(&forged)),
        (
            "rejected_insufficient_scope",
            &cached_service,
            Some(&unscoped),
        ),
    ];
    for (name, service, authorization) in cases {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                service
                    .clone()
                    .oneshot(request(black_box(authorization.map(String::as_str))))
                    .await
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
