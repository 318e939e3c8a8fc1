//! "Caches MUST NOT be shared across authorization contexts" (MCP 2026-07-28, *Caching*): no
//! cache of the crate hands one principal's answer to another, and no refusal of the guard can
//! be stored by a shared HTTP cache. Over real HTTP against the test authorization server.
#![cfg(feature = "test-util")]

use mcp_auth::store::MemoryStore;
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::tower::OperationScopes;
use mcp_auth::verify::{IntrospectionVerifier, JwtVerifier, UserinfoVerifier};
use mcp_auth::{AuthServer, AuthServerType, TokenVerifier};
use reqwest::StatusCode;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::json;
use tower::Layer;

use crate::support::mcp_client::initialize;
use crate::support::mcp_server::{McpServer, sessions, tool_call};

fn discovered(server: &TestAuthServer) -> AuthServer {
    AuthServer::discover(server.issuer(), AuthServerType::Oidc)
}

/// Two JWTs with the same header, issuer, audience, times and `jti`, differing only in `sub`.
fn twin_jwts(server: &TestAuthServer) -> (String, String) {
    let token = |subject: &str| {
        server
            .token()
            .subject(subject)
            .audience("https://api.example.com/mcp")
            .issued_at(1_900_000_000)
            .expires_at(4_000_000_000)
            .claim("jti", "the-same-jti")
            .sign()
    };
    (token("alice"), token("bob"))
}

#[tokio::test]
async fn jwts_differing_only_in_subject_never_share_a_cache_entry() {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = JwtVerifier::builder()
        .authorization_server(discovered(&server))
        .build()
        .unwrap();
    let (alice, bob) = twin_jwts(&server);
    // Twice each, interleaved: the second round is served from the verified-token cache.
    for _ in 0..2 {
        let a = verifier.verify(&alice).await.unwrap();
        let b = verifier.verify(&bob).await.unwrap();
        assert_eq!(a.subject.as_deref(), Some("alice"));
        assert_eq!(b.subject.as_deref(), Some("bob"));
        assert_eq!((a.token.as_str(), b.token.as_str()), (&*alice, &*bob));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_jwt_cache_key_is_the_whole_token_so_a_cached_payload_with_another_signature_is_refused()
 {
    let server = TestAuthServer::start().await.unwrap();
    let verifier = JwtVerifier::builder()
        .authorization_server(discovered(&server))
        .build()
        .unwrap();
    let (alice, _) = twin_jwts(&server);
    verifier.verify(&alice).await.unwrap(); // now cached
    // The same header and payload with a forged signature (one base64url character changed).
    let (signed, signature) = alice.rsplit_once('.').unwrap();
    let mut forged: Vec<u8> = signature.as_bytes().to_vec();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = format!("{signed}.{}", String::from_utf8(forged).unwrap());
    assert!(verifier.verify(&forged).await.is_err());
    // And one without any signature.
    assert!(verifier.verify(&format!("{signed}.")).await.is_err());
    // The genuine token is still answered from the cache.
    assert_eq!(
        verifier.verify(&alice).await.unwrap().subject.as_deref(),
        Some("alice")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn userinfo_and_introspection_caches_answer_each_token_with_its_own_principal() {
    let server = TestAuthServer::start().await.unwrap();
    let alice = server.issue_opaque_token(json!({"sub": "alice"}));
    let bob = server.issue_opaque_token(json!({"sub": "bob", "client_id": "other-app"}));
    let userinfo = UserinfoVerifier::new(discovered(&server));
    let introspection = IntrospectionVerifier::builder(discovered(&server))
        .client_secret_basic(server.client_id(), server.client_secret())
        .build()
        .unwrap();
    let verifiers: [&dyn TokenVerifier; 2] = [&userinfo, &introspection];
    for verifier in verifiers {
        for _ in 0..2 {
            let a = verifier.verify(&alice).await.unwrap();
            let b = verifier.verify(&bob).await.unwrap();
            assert_eq!(a.subject.as_deref(), Some("alice"));
            assert_eq!(b.subject.as_deref(), Some("bob"));
        }
    }
    let introspected = introspection.verify(&bob).await.unwrap();
    assert_eq!(introspected.client_id.as_deref(), Some("other-app"));
    // Each token was asked about once per verifier; the repeats were cache hits, per token.
    assert_eq!(server.requests(Endpoint::Userinfo).len(), 2);
    assert_eq!(server.requests(Endpoint::Introspection).len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_shared_store_never_hands_one_issuers_answer_to_another_issuers_verifier() {
    let first = TestAuthServer::start().await.unwrap();
    let second = TestAuthServer::start().await.unwrap();
    let store = MemoryStore::new();
    let of_first = UserinfoVerifier::builder(discovered(&first))
        .store(store.clone())
        .build()
        .unwrap();
    let of_second = UserinfoVerifier::builder(discovered(&second))
        .store(store.clone())
        .build()
        .unwrap();
    let token = first.issue_opaque_token(json!({"sub": "alice"}));
    assert!(of_first.verify(&token).await.is_ok()); // stored in the shared tier
    // The same token string at the other issuer's verifier: its own key, so a miss, and the
    // second server does not know the token.
    assert!(of_second.verify(&token).await.is_err());
    assert_eq!(second.requests(Endpoint::Userinfo).len(), 1);
    first.shutdown().await;
    second.shutdown().await;
}

#[derive(Clone, Default)]
struct Tools;

#[tool_router]
impl Tools {
    #[tool(description = "needs nothing more")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }

    #[tool(description = "needs admin")]
    async fn secret(&self) -> String {
        "s3cret".to_owned()
    }
}

#[tool_handler]
impl ServerHandler for Tools {}

/// `Tools` behind the whole MCP guard: scope `read` for everything, `admin` for `secret`,
/// sessions bound to their caller.
async fn guarded() -> McpServer {
    McpServer::start(|auth, resource| {
        let verifier = JwtVerifier::builder()
            .authorization_server(auth.trusted_servers(resource).unwrap()[0].clone())
            .build()
            .expect("verifier");
        let guard = auth
            .bearer_auth(resource, verifier)
            .required_scopes(["read"])
            .build()
            .expect("guard");
        let policy = OperationScopes::builder()
            .tool("secret", ["admin"])
            .build()
            .expect("policy");
        let mcp: StreamableHttpService<Tools, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(Tools), Default::default(), sessions());
        axum::Router::new().route_service(
            "/mcp",
            guard
                .mcp_guard()
                .operation_scopes(policy)
                .layer()
                .layer(mcp),
        )
    })
    .await
}

/// POSTs `body` to `url` with the MCP headers, an optional raw `Authorization` value and
/// session id; the whole response, headers included.
async fn post(
    url: &str,
    authorization: Option<&str>,
    session: Option<&str>,
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.expect("request")
}

/// A request the guard refuses, and the status it gets.
struct Refusal<'a> {
    what: &'static str,
    authorization: Option<String>,
    session: Option<&'static str>,
    body: &'a serde_json::Value,
    status: StatusCode,
}

impl<'a> Refusal<'a> {
    fn new(
        what: &'static str,
        authorization: Option<String>,
        body: &'a serde_json::Value,
        status: StatusCode,
    ) -> Self {
        Self {
            what,
            authorization,
            session: None,
            body,
            status,
        }
    }
}

/// Each refusal of the guard, from each of its layers, says `Cache-Control: no-store`
/// (RFC 6750 §5.3 / RFC 9111 §5.2.2.5), so no shared cache stores it for another caller.
#[tokio::test]
async fn every_refusal_of_the_guard_is_no_store() {
    let mcp = guarded().await;
    let read = mcp.scoped_token("alice", "read");
    let ping = tool_call(1, "ping", json!({}));
    let secret = tool_call(1, "secret", json!({}));
    let cases = [
        Refusal::new("no token", None, &ping, StatusCode::UNAUTHORIZED),
        Refusal::new(
            "malformed credentials",
            Some("Bearer a b".to_owned()),
            &ping,
            StatusCode::BAD_REQUEST,
        ),
        Refusal::new(
            "invalid token",
            Some("Bearer not-a-jwt".to_owned()),
            &ping,
            StatusCode::UNAUTHORIZED,
        ),
        Refusal::new(
            "missing required scope",
            Some(format!("Bearer {}", mcp.token("alice"))),
            &ping,
            StatusCode::FORBIDDEN,
        ),
        Refusal::new(
            "missing per-tool scope",
            Some(format!("Bearer {read}")),
            &secret,
            StatusCode::FORBIDDEN,
        ),
        Refusal {
            session: Some("no-such-session"),
            ..Refusal::new(
                "unknown session",
                Some(format!("Bearer {read}")),
                &ping,
                StatusCode::NOT_FOUND,
            )
        },
    ];
    for Refusal {
        what,
        authorization,
        session,
        body,
        status,
    } in cases
    {
        let response = post(&mcp.url, authorization.as_deref(), session, body).await;
        assert_eq!(response.status(), status, "{what}");
        let cache_control = response
            .headers()
            .get_all("cache-control")
            .iter()
            .map(|value| value.to_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(cache_control, ["no-store"], "{what}");
    }

    // An accepted request's answer is the MCP service's: the guard adds nothing that would
    // let a shared cache keep it (RFC 9111 §3.5 forbids storing it without `public`).
    let response = post(
        &mcp.url,
        Some(&format!("Bearer {read}")),
        None,
        &initialize(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    for value in response.headers().get_all("cache-control") {
        let value = value.to_str().unwrap_or_default().to_ascii_lowercase();
        assert!(
            !value.contains("public") && !value.contains("s-maxage"),
            "{value}"
        );
    }
}
