#![cfg(feature = "test-util")]
//! `TokenExchange` (RFC 8693) against the test authorization server over real HTTP: the
//! request it sends, the token it gets, its cache, and its typed errors.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use mcp_auth::exchange::{
    ACCESS_TOKEN_TYPE, ExchangeError, ExchangeRequest, TOKEN_EXCHANGE_GRANT, TokenExchange,
};
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, BearerAuth, BearerAuthError, HttpClient, McpAuth,
    ProtectedResource,
};

use crate::support::clock::unix_now;

/// The MCP server's resource: what incoming tokens are for.
const MCP_RESOURCE: &str = "https://mcp.example.com/mcp";
/// The upstream API a tool calls.
const DOWNSTREAM: &str = "https://calendar.example.com/api";

fn auth_server(server: &TestAuthServer) -> AuthServer {
    AuthServer::discover(server.issuer(), AuthServerType::OAuth)
}

/// The JWT guard of `resource`, trusting the test server.
fn guard(server: &TestAuthServer, resource: &str) -> BearerAuth {
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(resource).authorization_server(auth_server(server)),
        )
        .build()
        .unwrap()
        .bearer_auth_jwt(resource)
        .build()
        .unwrap()
}

async fn authenticate(guard: &BearerAuth, token: &str) -> Result<AuthInfo, BearerAuthError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    guard
        .authenticate(&headers)
        .await
        .map_err(|rejection| rejection.error().clone())
}

/// The exchange client of the MCP server, with the test server's pre-registered confidential
/// client over HTTP Basic.
fn exchange_builder(server: &TestAuthServer) -> mcp_auth::exchange::TokenExchangeBuilder {
    TokenExchange::builder(auth_server(server))
        .client_secret_basic(server.client_id(), server.client_secret())
}

/// What the bearer guard of the MCP server hands a tool for a token of the sample user.
async fn incoming(server: &TestAuthServer, scope: &str, ttl: Duration) -> AuthInfo {
    let token = server
        .token()
        .audience(MCP_RESOURCE)
        .scope(scope)
        .expires_in(ttl)
        .sign();
    authenticate(&guard(server, MCP_RESOURCE), &token)
        .await
        .unwrap()
}

fn downstream(scope: &str) -> ExchangeRequest {
    ExchangeRequest::for_resource(DOWNSTREAM).scope(scope)
}

#[tokio::test]
async fn the_exchanged_token_is_good_for_the_downstream_api_and_not_for_the_mcp_server() {
    let server = TestAuthServer::start().await.unwrap();
    let exchange = exchange_builder(&server).build().unwrap();
    let subject = incoming(&server, "read write", Duration::from_secs(600)).await;

    let token = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();

    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(token.scopes, ["read"]);
    assert!(token.expires_at.is_some_and(|exp| exp > unix_now()));
    assert_ne!(
        token.access_token, subject.token,
        "a new token, not the caller's"
    );
    assert!(!format!("{token:?}").contains(&token.access_token));

    // What went over the wire.
    let requests = server.requests(Endpoint::Token);
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        sent.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sent.basic_auth(),
        Some((
            server.client_id().to_owned(),
            server.client_secret().to_owned()
        ))
    );
    assert_eq!(
        sent.form_value("grant_type").as_deref(),
        Some(TOKEN_EXCHANGE_GRANT)
    );
    assert_eq!(
        sent.form_value("subject_token").as_deref(),
        Some(subject.token.as_str())
    );
    assert_eq!(
        sent.form_value("subject_token_type").as_deref(),
        Some(ACCESS_TOKEN_TYPE)
    );
    assert_eq!(sent.form_value("resource").as_deref(), Some(DOWNSTREAM));
    assert_eq!(sent.form_value("scope").as_deref(), Some("read"));
    assert_eq!(sent.form_value("client_secret"), None);

    // The downstream API accepts it, for the same user, with the narrowed scope.
    let upstream = authenticate(&guard(&server, DOWNSTREAM), &token.access_token)
        .await
        .unwrap();
    assert_eq!(upstream.subject, subject.subject);
    assert_eq!(upstream.audience, [DOWNSTREAM]);
    assert_eq!(upstream.scopes, ["read"]);
    assert_eq!(upstream.client_id.as_deref(), Some(server.client_id()));
    assert_eq!(upstream.claims["act"]["sub"], server.client_id());
    // The MCP server itself does not: the new token is not a copy of the incoming one.
    let refused = authenticate(&guard(&server, MCP_RESOURCE), &token.access_token).await;
    assert!(
        matches!(refused, Err(BearerAuthError::InvalidAudience { .. })),
        "{refused:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn client_secret_post_and_audiences_go_in_the_body() {
    let server = TestAuthServer::start().await.unwrap();
    let exchange = TokenExchange::builder(auth_server(&server))
        .client_secret_post(server.client_id(), server.client_secret())
        .build()
        .unwrap();
    let subject = incoming(&server, "read", Duration::from_secs(600)).await;

    let token = exchange
        .exchange(&subject, &ExchangeRequest::for_audience("calendar"))
        .await
        .unwrap();

    assert_eq!(token.scopes, ["read"], "no scope asked: the subject's");
    let sent = &server.requests(Endpoint::Token)[0];
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.form_value("client_id").as_deref(),
        Some(server.client_id())
    );
    assert_eq!(
        sent.form_value("client_secret").as_deref(),
        Some(server.client_secret())
    );
    assert_eq!(sent.form_value("audience").as_deref(), Some("calendar"));
    assert_eq!(sent.form_value("resource"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_repeated_exchange_is_served_from_the_cache_and_concurrent_ones_share_one_request() {
    let server = TestAuthServer::start().await.unwrap();
    let exchange = exchange_builder(&server).build().unwrap();
    let subject = incoming(&server, "read write", Duration::from_secs(600)).await;

    let first = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    let again = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(server.request_count(Endpoint::Token), 1);

    // Another scope is another token.
    let write = exchange
        .exchange(&subject, &downstream("write"))
        .await
        .unwrap();
    assert_ne!(write.access_token, first.access_token);
    assert_eq!(server.request_count(Endpoint::Token), 2);

    // A burst for a new key while the token endpoint is slow: one request.
    server.fail_times(Endpoint::Token, Fault::Delay(Duration::from_millis(300)), 1);
    let request = downstream("read write");
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let exchange = exchange.clone();
            let subject = subject.clone();
            let request = request.clone();
            tokio::spawn(async move { exchange.exchange(&subject, &request).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in burst {
        tokens.push(task.await.unwrap().unwrap().access_token);
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the same token");
    assert_eq!(server.request_count(Endpoint::Token), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_cache_entry_ends_the_margin_before_the_subject_token_expires() {
    let server = TestAuthServer::start().await.unwrap();
    // The issued token lives an hour: only the subject's expiry can end the entry.
    let exchange = exchange_builder(&server)
        .expiry_margin(Duration::from_secs(2))
        .build()
        .unwrap();
    let subject = incoming(&server, "read", Duration::from_secs(4)).await;
    let issued = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert!(issued.expires_at.unwrap() > subject.expires_at.unwrap() + 60);
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::Token), 1, "cached at first");

    // Past `exp − margin`, the subject still valid: asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(subject.expires_at.unwrap() > unix_now());
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::Token), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_cache_entry_ends_the_margin_before_the_issued_token_expires() {
    let server = TestAuthServer::builder()
        .token_ttl(Duration::from_secs(4))
        .start()
        .await
        .unwrap();
    let exchange = exchange_builder(&server)
        .expiry_margin(Duration::from_secs(2))
        .build()
        .unwrap();
    // The subject lives an hour: only the issued token's `expires_in` can end the entry.
    let subject = incoming(&server, "read", Duration::from_secs(3600)).await;
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::Token), 1, "cached at first");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();
    assert_eq!(server.request_count(Endpoint::Token), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_by_the_authorization_server_are_typed_with_its_error_code() {
    let server = TestAuthServer::start().await.unwrap();
    let exchange = exchange_builder(&server).build().unwrap();

    // A token this server never issued, and a revoked one.
    let unknown = exchange
        .exchange_subject_token("not-issued-here", None, &downstream("read"))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ExchangeError::Refused { status: 400, code, .. } if code == "invalid_grant"),
        "{unknown:?}"
    );
    let subject = incoming(&server, "read", Duration::from_secs(600)).await;
    server.revoke(&subject.token);
    let revoked = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Some("invalid_grant"));

    // A scope the subject was not granted.
    let subject = incoming(&server, "read", Duration::from_secs(600)).await;
    let wider = exchange
        .exchange(&subject, &downstream("admin"))
        .await
        .unwrap_err();
    assert_eq!(wider.code(), Some("invalid_scope"));

    // Our own credentials are wrong.
    let wrong = TokenExchange::builder(auth_server(&server))
        .client_secret_basic(server.client_id(), "not-the-secret")
        .build()
        .unwrap();
    let refused = wrong
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ExchangeError::Refused { status: 401, code, .. } if code == "invalid_client"),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains("not-the-secret"));
    assert_eq!(exchange.cached_tokens(), 0, "failures are not cached");
    server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_or_failing_token_endpoint_is_unavailable() {
    let server = TestAuthServer::start().await.unwrap();
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let exchange = exchange_builder(&server).http_client(http).build().unwrap();
    let subject = incoming(&server, "read write", Duration::from_secs(600)).await;

    server.fail_times(Endpoint::Token, Fault::Status(503), 1);
    let error = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExchangeError::Unavailable { .. }),
        "{error:?}"
    );

    server.fail_times(Endpoint::Token, Fault::Delay(Duration::from_secs(2)), 1);
    let error = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "timeout: {error:?}");

    // Healed: the failures were not cached.
    exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap();

    // Gone: nothing listens any more (the metadata is already cached).
    server.clone().shutdown().await;
    let error = exchange
        .exchange(&subject, &downstream("write"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExchangeError::Unavailable { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn oversized_or_garbage_answers_are_malformed() {
    let server = TestAuthServer::start().await.unwrap();
    let exchange = exchange_builder(&server).build().unwrap();
    let subject = incoming(&server, "read", Duration::from_secs(600)).await;

    let body = |status: u16, content_type: &str, body: &str| Fault::Body {
        status,
        content_type: content_type.into(),
        body: Bytes::from(body.to_owned()),
    };
    for fault in [
        Fault::Oversized(2 * 1024 * 1024),
        body(200, "text/html", "<html>hello</html>"),
        body(200, "application/json", r#"{"token_type":"Bearer"}"#),
        body(
            200,
            "application/json",
            r#"{"access_token":"t","token_type":"DPoP"}"#,
        ),
        body(400, "text/plain", "no"),
    ] {
        server.fail_times(Endpoint::Token, fault.clone(), 1);
        let error = exchange
            .exchange(&subject, &downstream("read"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ExchangeError::MalformedAnswer { .. }),
            "{fault:?}: {error:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_foreign_token_endpoint_is_never_sent_the_subject_token() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(serde_json::json!({
        "token_endpoint": "https://elsewhere.example.com/token",
    })));
    let exchange = exchange_builder(&server).build().unwrap();
    let subject = incoming(&server, "read", Duration::from_secs(600)).await;

    let error = exchange
        .exchange(&subject, &downstream("read"))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ExchangeError::Misconfigured { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("with_allowed_endpoint_origins"));
    server.shutdown().await;
}
