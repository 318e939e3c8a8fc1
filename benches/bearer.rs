//! The bearer guard's own work, without any signature check: reading the `Authorization`
//! header, checking issuer, audience and scopes on what a (no-op) verifier returns, and
//! rendering and parsing `WWW-Authenticate` challenges.
//!
//! - `guard/accepted_noop_verifier`: a well-formed header, a verifier that returns a fixed
//!   `AuthInfo` at once; so header parsing plus the issuer, audience and scope checks;
//! - `guard/rejected_*`: header problems answered before any verification (401 without
//!   credentials, 401 for another scheme, 400 for a malformed header); each includes
//!   rendering the challenge and the JSON body;
//! - `challenge/render` and `challenge/parse`: a full `insufficient_scope` challenge.
//!
//! Run with `cargo bench --bench bearer`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::{
    AuthInfo, AuthServer, AuthorizationServerMetadata, BearerAuth, McpAuth, ProtectedResource,
};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://api.example.com/mcp";
/// About the size of a real RS256 access token.
const TOKEN_LEN: usize = 700;

fn guard() -> BearerAuth {
    let metadata = AuthorizationServerMetadata::authorization_code(
        ISSUER,
        "https://auth.example.com/authorize",
        "https://auth.example.com/token",
    );
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::from_metadata(metadata)),
        )
        .build()
        .expect("configuration");
    let identity = AuthInfo::new("", ISSUER)
        .with_subject("alice")
        .with_scopes(["read", "write"])
        .with_audience([RESOURCE]);
    auth.bearer_auth(RESOURCE, move |token: String| {
        let mut info = identity.clone();
        info.token = token;
        async move { Ok(info) }
    })
    .required_scopes(["read"])
    .build()
    .expect("guard")
}

fn headers(authorization: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    headers
}

fn guard_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let guard = guard();
    let token = format!("eyJ{}", "a".repeat(TOKEN_LEN - 3));
    let accepted = headers(Some(&format!("Bearer {token}")));
    let cases = [
        ("rejected_no_credentials", headers(None)),
        (
            "rejected_other_scheme",
            headers(Some("Basic YWxpY2U6c2VjcmV0")),
        ),
        (
            "rejected_malformed",
            headers(Some(&format!("Bearer {token} extra"))),
        ),
    ];
    rt.block_on(guard.authenticate(&accepted))
        .expect("the no-op verifier accepts");

    let mut group = c.benchmark_group("guard");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("accepted_noop_verifier", |b| {
        b.to_async(&rt).iter(|| async {
            guard
                .authenticate(black_box(&accepted))
                .await
                .expect("accepted")
        })
    });
    for (name, headers) in &cases {
        rt.block_on(guard.authenticate(headers))
            .expect_err("refused");
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| async {
                guard
                    .authenticate(black_box(headers))
                    .await
                    .expect_err("refused")
            })
        });
    }
    group.finish();
}

fn challenge_benches(c: &mut Criterion) {
    let mut challenge = BearerChallenge::default();
    challenge.error = Some("insufficient_scope".into());
    challenge.error_description = Some("The token lacks the scopes this resource requires".into());
    challenge.scope = vec!["read".into(), "write".into()];
    challenge.resource_metadata =
        Some("https://api.example.com/.well-known/oauth-protected-resource/mcp".into());
    let rendered = challenge.render();

    let mut group = c.benchmark_group("challenge");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("render", |b| b.iter(|| black_box(&challenge).render()));
    group.bench_function("render_header_value", |b| {
        b.iter(|| black_box(&challenge).to_header_value())
    });
    group.bench_function("parse", |b| {
        b.iter(|| BearerChallenge::parse(black_box(&rendered)).expect("parses"))
    });
    group.finish();
}

criterion_group!(benches, guard_benches, challenge_benches);
criterion_main!(benches);
