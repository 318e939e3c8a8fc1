//! Token verification cost: our `JwtVerifier` (keys cached, verified-token cache off, so every
//! iteration is a fresh verification) against a bare `jsonwebtoken::decode` of the same token
//! with the same key; then a hit of `JwtVerifier`'s verified-token cache (on by default) and of
//! a `CachedVerifier` around it.
//!
//! Run with `cargo bench --bench verify`. Figures and the ratio are reported in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use mcp_auth::TokenVerifier;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::{CachedVerifier, JwsAlgorithm, JwtVerifier};

fn verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(TestAuthServer::start())
        .expect("test authorization server");
    // Fresh verifications: the verified-token cache would turn every iteration into a hit.
    let verifier = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .cache(false)
        .build()
        .expect("verifier");
    // The default configuration: verified-token cache on.
    let caching = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .build()
        .expect("verifier");

    let mut group = c.benchmark_group("jwt_verify");
    group.measurement_time(Duration::from_secs(4));
    for (name, alg, jwt_alg) in [
        ("RS256", JwsAlgorithm::Rs256, jsonwebtoken::Algorithm::RS256),
        ("ES256", JwsAlgorithm::Es256, jsonwebtoken::Algorithm::ES256),
        ("EdDSA", JwsAlgorithm::EdDsa, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let token = server
            .token()
            .alg(alg)
            .audience("https://api.example.com/mcp")
            .scope("read write")
            .sign();
        // Warm the JWKS cache so the loop measures verification only.
        rt.block_on(verifier.verify(&token))
            .expect("token verifies");

        let jwk: Jwk = serde_json::from_value(server.jwk(alg)).expect("jwk");
        let key = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut validation = Validation::new(jwt_alg);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).expect("bare decode");

        group.bench_function(format!("{name}/jsonwebtoken_decode"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &key, &validation)
                    .expect("decode")
            })
        });
        group.bench_function(format!("{name}/jwt_verifier"), |b| {
            b.to_async(&rt)
                .iter(|| async { verifier.verify(black_box(&token)).await.expect("verify") })
        });
        rt.block_on(caching.verify(&token))
            .expect("first verification fills the cache");
        group.bench_function(format!("{name}/jwt_verifier_cache_hit"), |b| {
            b.to_async(&rt)
                .iter(|| async { caching.verify(black_box(&token)).await.expect("verify") })
        });
    }
    group.finish();

    let cached = CachedVerifier::new(verifier.clone());
    let token = server
        .token()
        .audience("https://api.example.com/mcp")
        .sign();
    rt.block_on(cached.verify(&token))
        .expect("first verification fills the cache");
    c.bench_function("token_cache/hit", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.verify(black_box(&token)).await.expect("cached") })
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
