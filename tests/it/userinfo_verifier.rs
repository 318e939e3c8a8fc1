#![cfg(feature = "test-util")]
//! `UserinfoVerifier` against the test authorization server over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::clock::unix_now;
use bytes::Bytes;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::{TokenCache, UserinfoVerifier};
use mcp_auth::{AuthServer, AuthServerType, HttpClient, TokenVerifier, VerifyError};
use serde_json::json;

fn auth_server(server: &TestAuthServer) -> AuthServer {
    AuthServer::discover(server.issuer(), AuthServerType::Oidc)
}

fn json_body(status: u16, body: serde_json::Value) -> Fault {
    Fault::Body {
        status,
        content_type: "application/json".into(),
        body: Bytes::from(body.to_string()),
    }
}

#[tokio::test]
async fn an_opaque_token_accepted_by_userinfo_gives_the_users_identity() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));

    let info = verifier.verify(&token).await.unwrap();

    assert_eq!(info.token, token);
    assert_eq!(info.issuer, server.issuer());
    assert_eq!(info.subject.as_deref(), Some("alice"));
    assert_eq!(info.claims.get("name"), Some(&json!("Alice Example")));
    assert_eq!(info.claims.get("email"), Some(&json!("alice@example.com")));
    assert!(
        info.audience.is_empty(),
        "userinfo cannot say whom the token is for"
    );
    assert!(info.scopes.is_empty());

    let requests = server.requests(Endpoint::Userinfo);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, http::Method::GET);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn revoked_and_unknown_tokens_are_invalid() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.revoke(&token);

    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    assert!(matches!(
        verifier.verify("never-issued-token").await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn userinfo_401_and_403_are_invalid_tokens() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    for status in [401, 403] {
        server.fail(Endpoint::Userinfo, Fault::Status(status));
        assert!(
            matches!(
                verifier.verify(&token).await,
                Err(VerifyError::InvalidToken { .. })
            ),
            "{status}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn userinfo_500_is_unavailable() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail(Endpoint::Userinfo, Fault::Status(500));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_hanging_or_slow_userinfo_is_unavailable_within_the_client_timeout() {
    let server = TestAuthServer::start().await.unwrap();
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let verifier = UserinfoVerifier::builder(auth_server(&server))
        .http_client(http)
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));

    for fault in [Fault::Hang, Fault::Delay(Duration::from_secs(2))] {
        server.fail(Endpoint::Userinfo, fault.clone());
        let started = Instant::now();
        let result = verifier.verify(&token).await;
        assert!(
            matches!(result, Err(VerifyError::Unavailable { .. })),
            "{fault:?}: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{fault:?} took {:?}",
            started.elapsed()
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_without_sub_is_rejected() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail(
        Endpoint::Userinfo,
        json_body(200, json!({"name": "Nobody"})),
    );
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_naming_another_issuer_is_rejected() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail(
        Endpoint::Userinfo,
        json_body(
            200,
            json!({"sub": "alice", "iss": "https://evil.example.com"}),
        ),
    );
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn the_client_named_by_the_answer_becomes_the_client_id() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::builder(auth_server(&server))
        .cache(false)
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));
    for (answer, client) in [
        (
            json!({"sub": "alice", "azp": "inspector"}),
            Some("inspector"),
        ),
        (json!({"sub": "alice", "client_id": "cli"}), Some("cli")),
        (json!({"sub": "alice"}), None),
    ] {
        server.fail(Endpoint::Userinfo, json_body(200, answer));
        let info = verifier.verify(&token).await.unwrap();
        assert_eq!(info.client_id.as_deref(), client);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_non_json_200_is_unavailable() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail(
        Endpoint::Userinfo,
        Fault::Body {
            status: 200,
            content_type: "text/html".into(),
            body: Bytes::from_static(b"<h1>hi</h1>"),
        },
    );
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_without_userinfo_endpoint_is_a_misconfiguration() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"userinfo_endpoint": null})));
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Misconfigured { .. })
    ));
    assert_eq!(server.request_count(Endpoint::Userinfo), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn repeated_verifications_call_userinfo_once() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    for _ in 0..5 {
        assert_eq!(verifier.verify(&token).await.unwrap().token, token);
    }
    assert_eq!(server.request_count(Endpoint::Userinfo), 1);

    // Another user's token is another entry, with its own identity.
    let bob = server.issue_opaque_token(json!({"sub": "bob"}));
    assert_eq!(
        verifier.verify(&bob).await.unwrap().subject.as_deref(),
        Some("bob")
    );
    assert_eq!(
        verifier.verify(&token).await.unwrap().subject.as_deref(),
        Some("alice")
    );
    assert_eq!(server.request_count(Endpoint::Userinfo), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn fifty_concurrent_verifications_of_one_token_make_one_userinfo_call() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = Arc::new(UserinfoVerifier::new(auth_server(&server)));
    let token = server.issue_opaque_token(json!({}));
    // Slow the answer so that all 50 requests arrive while the first call is in flight.
    server.fail_times(
        Endpoint::Userinfo,
        Fault::Delay(Duration::from_millis(300)),
        1,
    );

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        let info = task.await.unwrap().unwrap();
        assert_eq!(info.subject.as_deref(), Some("alice"));
        assert_eq!(info.token, token);
    }
    assert_eq!(server.request_count(Endpoint::Userinfo), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_cached_answer_is_not_used_past_the_tokens_expiry() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    // Expires within the next 1-2 s; the test server puts the `exp` in userinfo too.
    let exp = unix_now() + 2;
    let token = server.issue_opaque_token(json!({"exp": exp}));

    assert_eq!(verifier.verify(&token).await.unwrap().expires_at, Some(exp));
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.request_count(Endpoint::Userinfo), 1);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(unix_now() >= exp);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    assert_eq!(
        server.request_count(Endpoint::Userinfo),
        2,
        "asked again after expiry"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn failures_are_not_cached_so_a_503_heals() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::new(auth_server(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail_times(Endpoint::Userinfo, Fault::Status(503), 1);

    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.request_count(Endpoint::Userinfo), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_short_ttl_makes_answers_expire_sooner() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::builder(auth_server(&server))
        .ttl(Duration::from_millis(200))
        .max_entries(5)
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));
    verifier.verify(&token).await.unwrap();
    server.revoke(&token);
    assert!(
        verifier.verify(&token).await.is_ok(),
        "served from the cache within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    assert_eq!(server.request_count(Endpoint::Userinfo), 2);
    assert_eq!(verifier.cache().map(TokenCache::max_entries), Some(5));
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_cache_off_every_verification_calls_userinfo() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = UserinfoVerifier::builder(auth_server(&server))
        .cache(false)
        .build()
        .unwrap();
    assert!(verifier.cache().is_none());
    let token = server.issue_opaque_token(json!({}));
    for _ in 0..3 {
        verifier.verify(&token).await.unwrap();
    }
    assert_eq!(server.request_count(Endpoint::Userinfo), 3);
    server.revoke(&token);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_zero_ttl_or_max_entries_is_refused_at_build() {
    let server = TestAuthServer::start().await.unwrap();
    for builder in [
        UserinfoVerifier::builder(auth_server(&server)).ttl(Duration::ZERO),
        UserinfoVerifier::builder(auth_server(&server)).max_entries(0),
    ] {
        let error = builder.build().unwrap_err();
        assert!(
            matches!(error, mcp_auth::ConfigError::ZeroSetting { .. }),
            "{error:?}"
        );
    }
    assert_eq!(total_requests(&server), 0);
    server.shutdown().await;
}

fn total_requests(server: &TestAuthServer) -> usize {
    Endpoint::ALL.iter().map(|e| server.request_count(*e)).sum()
}
