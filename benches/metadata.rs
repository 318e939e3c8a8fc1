//! Serving the RFC 9728 protected-resource metadata with `MetadataService`: a `GET` of the
//! document, the CORS preflight (`OPTIONS`), and a path it does not serve (404), through the
//! tower `Service` as a server calls it; and `respond`, the framework-neutral entry point.
//!
//! Run with `cargo bench --bench metadata`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use mcp_auth::{AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource};
use tower::ServiceExt;

const RESOURCE: &str = "https://api.example.com/mcp";
const PATH: &str = "/.well-known/oauth-protected-resource/mcp";

fn request(method: Method, path: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Empty::new())
        .expect("request")
}

fn metadata(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let as_metadata = AuthorizationServerMetadata::authorization_code(
        "https://auth.example.com",
        "https://auth.example.com/authorize",
        "https://auth.example.com/token",
    );
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::from_metadata(as_metadata))
                .scopes_supported(["read", "write"])
                .resource_name("Benchmark MCP server"),
        )
        .build()
        .expect("configuration");
    let service = auth.metadata_service();
    for (method, path, status) in [
        (Method::GET, PATH, StatusCode::OK),
        (Method::OPTIONS, PATH, StatusCode::NO_CONTENT),
        (Method::GET, "/mcp", StatusCode::NOT_FOUND),
    ] {
        let response = rt
            .block_on(service.clone().oneshot(request(method, path)))
            .expect("infallible");
        assert_eq!(response.status(), status);
    }

    let mut group = c.benchmark_group("metadata");
    group.measurement_time(Duration::from_secs(3));
    for (name, method, path) in [
        ("service_get", Method::GET, PATH),
        ("service_options_preflight", Method::OPTIONS, PATH),
        ("service_not_found", Method::GET, "/mcp"),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                service
                    .clone()
                    .oneshot(request(method.clone(), black_box(path)))
                    .await
            })
        });
    }
    group.bench_function("respond_get", |b| {
        b.to_async(&rt).iter(|| async {
            service
                .respond(&Method::GET, black_box(PATH))
                .await
                .expect("served")
        })
    });
    group.finish();
}

criterion_group!(benches, metadata);
criterion_main!(benches);
