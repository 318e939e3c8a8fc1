#![cfg(feature = "test-util")]
//! Findings of the security review, pinned over real HTTP: the guard checks expiry for every
//! verifier, the cache never hands back an expired success, and text from the authorization
//! server or a verifier never makes an answer large or reaches the challenge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::clock::unix_now;
use crate::support::fixtures::as_metadata;
use crate::support::hostile::{App, Outcome, counting};
use bytes::Bytes;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::{CachedVerifier, IntrospectionVerifier};
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, BearerAuthBuilder, ConfigError, McpAuth,
    ProtectedResource, TokenVerifier, VerifyError,
};
use serde_json::json;

const ISSUER: &str = "https://auth.example.com";

/// The app of [`App::serve`] trusting `server`, with the verifier `verifier` makes for the
/// app's resource, behind a guard (required scope `read`) that `configure` finishes.
async fn app<V: TokenVerifier>(
    server: AuthServer,
    verifier: impl FnOnce(&str) -> V,
    configure: impl FnOnce(BearerAuthBuilder) -> BearerAuthBuilder,
) -> App {
    App::serve(|resource| {
        let auth = McpAuth::builder()
            .protected_resource(ProtectedResource::new(resource).authorization_server(server))
            .build()
            .expect("configuration");
        let guard = configure(
            auth.bearer_auth(resource, verifier(resource))
                .required_scopes(["read"]),
        )
        .build()
        .expect("guard");
        (auth, guard)
    })
    .await
}

/// The authorization server the verifier-only tests trust (never contacted).
fn example_issuer() -> AuthServer {
    AuthServer::from_metadata(as_metadata(ISSUER))
}

/// A careless custom verifier: accepts every token for `resource`, with scope `read` and the
/// expiry `expires_at` (or none), without looking at it.
fn careless(resource: &str, expires_at: Option<i64>) -> impl TokenVerifier + Clone + use<> {
    let resource = resource.to_owned();
    move |token: String| {
        let resource = resource.clone();
        async move {
            let info = AuthInfo::new(token, ISSUER)
                .with_subject("alice")
                .with_audience([resource])
                .with_scopes(["read"]);
            Ok::<_, VerifyError>(match expires_at {
                Some(at) => info.with_expires_at(at),
                None => info,
            })
        }
    }
}

/// [`app`] with a [`careless`] verifier.
async fn careless_app(
    expires_at: Option<i64>,
    configure: impl FnOnce(BearerAuthBuilder) -> BearerAuthBuilder,
) -> App {
    app(
        example_issuer(),
        |resource| careless(resource, expires_at),
        configure,
    )
    .await
}

/// [`app`] with an introspection verifier of `server` (its registered client), showing error
/// details, so that every echoed value is on the wire.
async fn introspection_app(server: &TestAuthServer) -> App {
    let verifier = IntrospectionVerifier::builder(AuthServer::discover(
        server.issuer(),
        AuthServerType::OAuth,
    ))
    .client_secret_basic(server.client_id(), server.client_secret())
    .build()
    .unwrap();
    app(
        AuthServer::discover(server.issuer(), AuthServerType::OAuth),
        |_| verifier,
        |guard| guard.skip_audience_check().show_error_details(true),
    )
    .await
}

#[tokio::test]
async fn the_guard_refuses_an_expired_auth_info_from_any_verifier() {
    let app = careless_app(Some(unix_now() - 3600), |guard| guard).await;
    let outcome = app.post("anything").await;
    app.expect_invalid_token(&outcome);
    let description = outcome.challenge().error_description.unwrap_or_default();
    assert!(description.contains("expired"), "{outcome:?}");
}

#[tokio::test]
async fn the_guards_expiry_check_allows_its_leeway_and_no_more() {
    // 30 s past its expiry: inside the default 60 s leeway.
    let lenient = careless_app(Some(unix_now() - 30), |guard| guard).await;
    assert_eq!(lenient.post("t").await.status, 200);
    assert_eq!(lenient.handler_calls(), 1);
    let strict = careless_app(Some(unix_now() - 30), |guard| {
        guard.leeway(Duration::from_secs(5))
    })
    .await;
    strict.expect_invalid_token(&strict.post("t").await);
}

#[tokio::test]
async fn a_missing_expiry_passes_by_default_and_is_refused_when_required() {
    let default = careless_app(None, |guard| guard).await;
    assert_eq!(default.post("t").await.status, 200);
    let strict = careless_app(None, |guard| guard.require_expiry(true)).await;
    strict.expect_invalid_token(&strict.post("t").await);
    let dated = careless_app(Some(unix_now() + 600), |guard| guard.require_expiry(true)).await;
    assert_eq!(dated.post("t").await.status, 200);
}

#[test]
fn a_leeway_over_five_minutes_is_refused_when_the_guard_is_built() {
    let resource = "https://api.example.com/mcp";
    let auth = McpAuth::builder()
        .protected_resource(ProtectedResource::new(resource).authorization_server(example_issuer()))
        .build()
        .unwrap();
    let error = auth
        .bearer_auth(resource, careless(resource, None))
        .leeway(Duration::from_secs(301))
        .build()
        .unwrap_err();
    assert!(
        matches!(error, ConfigError::LeewayTooLong { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_cached_verifier_never_serves_an_expired_success() {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = app(
        example_issuer(),
        |resource| {
            let inner = careless(resource, Some(unix_now() - 3600));
            CachedVerifier::new(counting(inner, Arc::clone(&calls)))
        },
        // The widest leeway: only the cache's own rule can refuse.
        |guard| guard.leeway(Duration::from_secs(300)),
    )
    .await;
    for _ in 0..3 {
        app.expect_invalid_token(&app.post("old-token").await);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "an expired success is never cached"
    );
}

/// The answer stays small, and its challenge does not carry `needle`.
fn assert_small(outcome: &Outcome, needle: &str) {
    let challenge = outcome.www_authenticate.as_deref().unwrap_or_default();
    assert!(
        challenge.len() < 1024,
        "a {}-byte challenge",
        challenge.len()
    );
    assert!(
        outcome.body.len() < 4096,
        "a {}-byte body",
        outcome.body.len()
    );
    assert!(!challenge.contains(needle), "{challenge}");
}

#[tokio::test]
async fn an_introspection_answer_naming_a_huge_foreign_issuer_is_never_echoed() {
    let server = TestAuthServer::start().await.unwrap();
    let foreign = format!("https://evil.example.com/{}", "x".repeat(300_000));
    let token = server.issue_opaque_token(json!({"iss": foreign}));
    let app = introspection_app(&server).await;
    let outcome = app.post(&token).await;
    app.expect_invalid_token(&outcome);
    assert_small(&outcome, "evil.example.com");
    let body = String::from_utf8_lossy(&outcome.body).into_owned();
    assert!(!body.contains("evil.example.com"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_authorization_servers_huge_error_is_cut_in_the_answer() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(
        Endpoint::Introspection,
        Fault::Body {
            status: 401,
            content_type: "application/json".into(),
            body: Bytes::from(json!({"error": "x".repeat(200_000)}).to_string()),
        },
    );
    let app = introspection_app(&server).await;
    let outcome = app.post("some-token").await;
    let reason = app.expect_server_side(&outcome, 500);
    assert!(reason.len() <= 260, "a {}-byte reason", reason.len());
    assert_small(&outcome, &"x".repeat(300));
    server.shutdown().await;
}

#[tokio::test]
async fn a_verifiers_huge_reason_or_issuer_is_cut_everywhere() {
    let reason = format!("bad token {}", "r".repeat(100_000));
    let refusing = app(
        example_issuer(),
        |_| {
            move |_token: String| {
                let reason = reason.clone();
                async move { Err::<AuthInfo, _>(VerifyError::invalid_token(reason)) }
            }
        },
        |guard: BearerAuthBuilder| guard.show_error_details(true),
    )
    .await;
    let outcome = refusing.post("t").await;
    refusing.expect_invalid_token(&outcome);
    assert_small(&outcome, &"r".repeat(300));

    let issuer = format!("https://{}.example.com", "i".repeat(50_000));
    let naming = app(
        example_issuer(),
        |_| {
            move |token: String| {
                let issuer = issuer.clone();
                async move {
                    let scopes = (0..1000).map(|i| format!("scope-{i}-{}", "s".repeat(500)));
                    Ok::<_, VerifyError>(AuthInfo::new(token, issuer).with_scopes(scopes))
                }
            }
        },
        |guard: BearerAuthBuilder| guard.show_error_details(true),
    )
    .await;
    let outcome = naming.post("t").await;
    naming.expect_invalid_token(&outcome);
    assert_small(&outcome, &"i".repeat(300));
    let cause = &outcome.json()["cause"];
    assert_eq!(cause["code"], "invalid_issuer");
    assert!(cause["actual"].as_str().unwrap().len() <= 260, "{cause}");
}
