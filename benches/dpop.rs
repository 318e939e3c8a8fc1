//! The added cost of DPoP (RFC 9449) per request, in one run: the same guard (JWT verifier,
//! verified-token cache on, so the token's signature is checked once) authenticating a
//! request with an unbound token as `Bearer`, and one with a DPoP-bound token and a fresh proof
//! (`DPoP` scheme: the proof's parsing, ES256 signature, claims, thumbprint, and the `jti`
//! insert into the in-memory replay store).
//!
//! Proofs are signed in criterion's untimed setup (a proof is good for one request only), so
//! the figures are the server's cost. Run with `cargo bench --bench dpop`; figures are in
//! BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_auth::dpop::DpopConfig;
use mcp_auth::testing::{DpopKey, TestAuthServer};
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};

const RESOURCE: &str = "https://api.example.com/mcp";

fn parts(authorization: &str, proof: Option<&str>) -> http::request::Parts {
    let mut request = http::Request::post("/mcp").header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.body(()).expect("request").into_parts().0
}

fn dpop(c: &mut Criterion) {
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
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc))
                .dpop(DpopConfig::builder().build().expect("DPoP settings")),
        )
        .build()
        .expect("configuration");
    let guard = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["read"])
        .build()
        .expect("guard");
    let key = DpopKey::generate();
    let bearer = server.token().audience(RESOURCE).scope("read").sign();
    let bound = server
        .token()
        .audience(RESOURCE)
        .scope("read")
        .dpop_bound(&key)
        .sign();
    let proof = || key.proof("POST", RESOURCE).access_token(&bound).sign();

    // Warm discovery, the JWKS and the verified-token cache for both tokens.
    let bearer_parts = parts(&format!("Bearer {bearer}"), None);
    rt.block_on(guard.authenticate_request(&bearer_parts))
        .expect("bearer passes");
    rt.block_on(guard.authenticate_request(&parts(&format!("DPoP {bound}"), Some(&proof()))))
        .expect("DPoP passes");

    let mut group = c.benchmark_group("dpop");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bearer_cached_jwt", |b| {
        b.to_async(&rt).iter(|| async {
            guard
                .authenticate_request(black_box(&bearer_parts))
                .await
                .expect("bearer passes")
        })
    });
    let authorization = format!("DPoP {bound}");
    group.bench_function("dpop_cached_jwt_fresh_proof", |b| {
        b.to_async(&rt).iter_batched(
            || parts(&authorization, Some(&proof())),
            |request| {
                let guard = guard.clone();
                async move {
                    guard
                        .authenticate_request(black_box(&request))
                        .await
                        .expect("DPoP passes")
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, dpop);
criterion_main!(benches);
