#![cfg(feature = "test-util")]
//! `IntrospectionVerifier` (RFC 7662) against the test authorization server over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::clock::unix_now;
use bytes::Bytes;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::IntrospectionVerifier;
use mcp_auth::{AuthServer, AuthServerType, HttpClient, TokenVerifier, VerifyError};
use serde_json::json;

fn auth_server(server: &TestAuthServer) -> AuthServer {
    AuthServer::discover(server.issuer(), AuthServerType::OAuth)
}

/// A verifier authenticating with the test server's pre-registered client over HTTP Basic.
fn basic_verifier(server: &TestAuthServer) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(auth_server(server))
        .client_secret_basic(server.client_id(), server.client_secret())
        .build()
        .unwrap()
}

fn json_body(body: serde_json::Value) -> Fault {
    Fault::Body {
        status: 200,
        content_type: "application/json".into(),
        body: Bytes::from(body.to_string()),
    }
}

#[tokio::test]
async fn an_active_token_is_accepted_with_a_basic_authenticated_form_post() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({
        "scope": "read write",
        "aud": "http://localhost:3001/mcp",
    }));

    let info = verifier.verify(&token).await.unwrap();

    assert_eq!(info.token, token);
    assert_eq!(info.issuer, server.issuer());
    assert_eq!(info.subject.as_deref(), Some("alice"));
    assert_eq!(info.client_id.as_deref(), Some("test-client"));
    assert_eq!(info.scopes, ["read", "write"]);
    assert_eq!(
        info.audience,
        ["http://localhost:3001/mcp"],
        "aud is kept for the guard"
    );
    assert!(info.expires_at.is_some_and(|exp| exp > unix_now()));

    let requests = server.requests(Endpoint::Introspection);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        request
            .header("authorization")
            .is_some_and(|v| v.starts_with("Basic "))
    );
    assert_eq!(
        request.basic_auth(),
        Some(("test-resource-server".to_owned(), "test-secret".to_owned()))
    );
    assert_eq!(request.form_value("token").as_deref(), Some(token.as_str()));
    assert_eq!(
        request.form_value("token_type_hint").as_deref(),
        Some("access_token")
    );
    assert_eq!(
        request.form_value("client_secret"),
        None,
        "the secret is not also in the body"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = IntrospectionVerifier::builder(auth_server(&server))
        .client_secret_post(server.client_id(), server.client_secret())
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));

    assert_eq!(
        verifier.verify(&token).await.unwrap().subject.as_deref(),
        Some("alice")
    );

    let request = &server.requests(Endpoint::Introspection)[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.form_value("client_id").as_deref(),
        Some("test-resource-server")
    );
    assert_eq!(
        request.form_value("client_secret").as_deref(),
        Some("test-secret")
    );
    assert_eq!(request.form_value("token").as_deref(), Some(token.as_str()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_bearer_credential_is_sent_as_authorization_bearer() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = IntrospectionVerifier::builder(auth_server(&server))
        .bearer("rs-access-token")
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));
    // The test server only knows client credentials, so it refuses ours: our configuration.
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Misconfigured { .. })
    ));
    let request = &server.requests(Endpoint::Introspection)[0];
    assert_eq!(
        request.header("authorization"),
        Some("Bearer rs-access-token")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn revoked_unknown_and_expired_tokens_are_inactive_and_invalid() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let revoked = server.issue_opaque_token(json!({}));
    server.revoke(&revoked);
    let expired = server.issue_opaque_token(json!({"exp": unix_now() - 5}));

    for token in [revoked.as_str(), "never-issued", expired.as_str()] {
        assert!(matches!(
            verifier.verify(token).await,
            Err(VerifyError::InvalidToken { .. })
        ));
    }
    assert_eq!(server.request_count(Endpoint::Introspection), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn active_must_be_the_json_boolean_true() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({}));
    for body in [
        json!({"active": "true", "sub": "alice"}),
        json!({"sub": "alice", "scope": "read"}),
        json!({"active": 1, "sub": "alice"}),
        json!({"active": false}),
    ] {
        server.fail_times(Endpoint::Introspection, json_body(body.clone()), 1);
        let result = verifier.verify(&token).await;
        assert!(
            matches!(result, Err(VerifyError::InvalidToken { .. })),
            "{body}: {result:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_naming_another_issuer_is_invalid() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({"iss": "https://evil.example.com"}));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_without_iss_uses_the_servers_issuer() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({"iss": null}));
    let info = verifier.verify(&token).await.unwrap();
    assert_eq!(info.issuer, server.issuer());
    server.shutdown().await;
}

#[tokio::test]
async fn an_active_answer_with_a_past_exp_is_invalid() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({}));
    server.fail(
        Endpoint::Introspection,
        json_body(json!({"active": true, "sub": "alice", "exp": unix_now() - 60})),
    );
    let result = verifier.verify(&token).await;
    match result {
        Err(VerifyError::InvalidToken { reason }) => {
            assert!(reason.contains("expired"), "{reason}")
        }
        other => panic!("expected an expired token, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_client_credentials_are_a_misconfiguration_not_an_invalid_token() {
    let server = TestAuthServer::start().await.unwrap();
    let token = server.issue_opaque_token(json!({}));
    for verifier in [
        IntrospectionVerifier::builder(auth_server(&server))
            .client_secret_basic(server.client_id(), "wrong-secret")
            .build()
            .unwrap(),
        IntrospectionVerifier::builder(auth_server(&server))
            .client_secret_post("unknown-client", "whatever")
            .build()
            .unwrap(),
    ] {
        let result = verifier.verify(&token).await;
        assert!(
            matches!(result, Err(VerifyError::Misconfigured { .. })),
            "{result:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn introspection_5xx_or_a_stopped_server_is_unavailable() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({}));
    for status in [500, 503] {
        server.fail_times(Endpoint::Introspection, Fault::Status(status), 1);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(VerifyError::Unavailable { .. })
        ));
    }
    // Metadata is known by now; then the whole server goes away.
    let other = server.issue_opaque_token(json!({}));
    server.shutdown().await;
    assert!(matches!(
        verifier.verify(&other).await,
        Err(VerifyError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_hanging_introspection_is_unavailable_within_the_client_timeout() {
    let server = TestAuthServer::start().await.unwrap();
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let verifier = IntrospectionVerifier::builder(auth_server(&server))
        .client_secret_basic(server.client_id(), server.client_secret())
        .http_client(http)
        .build()
        .unwrap();
    let token = server.issue_opaque_token(json!({}));
    server.fail(Endpoint::Introspection, Fault::Hang);
    let started = Instant::now();
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_without_introspection_endpoint_is_a_misconfiguration() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"introspection_endpoint": null})));
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({}));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Misconfigured { .. })
    ));
    assert_eq!(server.request_count(Endpoint::Introspection), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn repeated_and_concurrent_verifications_introspect_once() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = Arc::new(basic_verifier(&server));
    let token = server.issue_opaque_token(json!({}));
    server.fail_times(
        Endpoint::Introspection,
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
        assert_eq!(task.await.unwrap().unwrap().token, token);
    }
    for _ in 0..5 {
        verifier.verify(&token).await.unwrap();
    }
    assert_eq!(server.request_count(Endpoint::Introspection), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_cached_answer_is_never_used_past_exp() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let exp = unix_now() + 2;
    let token = server.issue_opaque_token(json!({"exp": exp}));

    assert_eq!(verifier.verify(&token).await.unwrap().expires_at, Some(exp));
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.request_count(Endpoint::Introspection), 1);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(unix_now() >= exp);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    assert_eq!(
        server.request_count(Endpoint::Introspection),
        2,
        "introspected again after exp"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn failed_introspections_are_not_cached() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = basic_verifier(&server);
    let token = server.issue_opaque_token(json!({}));
    server.fail_times(Endpoint::Introspection, Fault::Status(502), 1);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.request_count(Endpoint::Introspection), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn building_without_client_credentials_fails() {
    let server = TestAuthServer::start().await.unwrap();
    let error = IntrospectionVerifier::builder(auth_server(&server))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("client_secret_basic"), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_cache_off_a_revoked_token_is_refused_at_once() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = IntrospectionVerifier::builder(auth_server(&server))
        .client_secret_basic(server.client_id(), server.client_secret())
        .cache(false)
        .build()
        .unwrap();
    assert!(verifier.cache().is_none());
    let token = server.issue_opaque_token(json!({}));
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    server.revoke(&token);
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    assert_eq!(server.request_count(Endpoint::Introspection), 3);
    server.shutdown().await;
}
