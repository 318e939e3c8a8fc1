//! What the `metrics` feature costs a request: the bearer guard's `authenticate` with a
//! `JwtVerifier` against the test authorization server's JWKS (keys fetched once beforehand),
//! in three cases:
//!
//! - `full_verification`: verified-token cache off, so every iteration checks an RS256
//!   signature (the worst case for the request, the best case for hiding the metrics);
//! - `cache_hit`: the default configuration, the token served from the verified-token cache;
//! - `refused_no_credentials`: no `Authorization` header, answered before any verification
//!   (where a counter weighs most).
//!
//! Each case is measured with no recorder installed and, when the crate is built with the
//! `metrics` feature, with a Prometheus recorder (`metrics-exporter-prometheus`) installed for
//! the measurement. Built without the feature, the figures are those of the code without
//! any metrics call:
//!
//! ```text
//! cargo bench --bench metrics                      # feature off: compiled out
//! cargo bench --bench metrics --features metrics   # no recorder, then a recorder
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::{AuthServer, AuthServerType, BearerAuth, JwtVerifier, McpAuth, ProtectedResource};

const RESOURCE: &str = "https://api.example.com/mcp";

fn guard(server: &TestAuthServer, cache: bool) -> BearerAuth {
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc)),
        )
        .build()
        .expect("configuration");
    let verifier = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .cache(cache)
        .build()
        .expect("verifier");
    auth.bearer_auth(RESOURCE, verifier)
        .required_scopes(["read"])
        .build()
        .expect("guard")
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header value");
    headers.insert(AUTHORIZATION, value);
    headers
}

fn guard_with_metrics(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestAuthServer::start())
        .expect("test authorization server");
    let token = server.token().audience(RESOURCE).scope("read write").sign();
    let accepted = bearer(&token);
    let cases = [
        ("full_verification", guard(&server, false), accepted.clone()),
        ("cache_hit", guard(&server, true), accepted),
        (
            "refused_no_credentials",
            guard(&server, true),
            HeaderMap::new(),
        ),
    ];
    for (_, guard, headers) in &cases {
        // Fetch the keys (and fill the cache) so the loop measures the request alone.
        let _ = rt.block_on(guard.authenticate(headers));
    }

    let feature = if cfg!(feature = "metrics") {
        "feature_on"
    } else {
        "feature_off"
    };
    let mut group = c.benchmark_group(format!("guard_metrics/{feature}"));
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    for (name, guard, headers) in &cases {
        let run = || async {
            let _ = black_box(guard.authenticate(black_box(headers)).await);
        };
        // The same harness in both cases (one `block_on` per iteration), so they compare.
        group.bench_function(format!("{name}/no_recorder"), |b| {
            b.iter(|| rt.block_on(run()))
        });
        if cfg!(feature = "metrics") {
            // A local recorder applies to this thread, where the current-thread runtime polls.
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            metrics::with_local_recorder(&recorder, || {
                group.bench_function(format!("{name}/prometheus_recorder"), |b| {
                    b.iter(|| rt.block_on(run()))
                });
            });
            let rendered = recorder.handle().render();
            assert!(
                rendered.contains("mcp_auth_requests_total"),
                "the recorder saw no decision:\n{rendered}"
            );
        }
    }
    group.finish();
}

criterion_group!(benches, guard_with_metrics);
criterion_main!(benches);
