//! Two replicas of one MCP server sharing one real `redis-server`: each its own listener,
//! `McpAuth`, guard, verifier and session binding, as two processes behind a load balancer
//! without sticky sessions would be.
#![cfg(all(feature = "redis", feature = "test-util"))]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mcp_auth::store::RedisStore;
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::tower::SessionBinding;
use mcp_auth::verify::IntrospectionVerifier;
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinHandle;
use tower::Layer;

use crate::support::redis::RedisServer;

const RESOURCE: &str = "http://localhost/mcp";

/// A stand-in for an MCP service whose sessions live in a store of its own shared by the
/// replicas (as rmcp's `session_store` allows): a request without a session opens
/// `s-<n>`; every other request is served.
fn mcp_service<B: Send + 'static>(
    next: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<B>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send {
    tower::service_fn(move |request: Request<B>| {
        let next = next.clone();
        async move {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            if !request.headers().contains_key("mcp-session-id") {
                let id = format!("s-{}", next.fetch_add(1, Ordering::SeqCst));
                response
                    .headers_mut()
                    .insert("mcp-session-id", id.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    })
}

/// One replica: its own listener on port 0 and its own instances of everything.
struct Replica {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replica(
    issuer: &TestAuthServer,
    store: RedisStore,
    sessions: Arc<AtomicUsize>,
) -> Replica {
    let server = AuthServer::discover(issuer.issuer(), AuthServerType::OAuth);
    let auth = McpAuth::builder()
        .protected_resource(ProtectedResource::new(RESOURCE).authorization_server(server.clone()))
        .build()
        .unwrap();
    let verifier = IntrospectionVerifier::builder(server)
        .client_secret_basic(issuer.client_id(), issuer.client_secret())
        .store(store.clone())
        .build()
        .unwrap();
    let guard = auth.bearer_auth(RESOURCE, verifier).build().unwrap();
    let binding = SessionBinding::builder().store(store).build().unwrap();
    let service = guard
        .mcp_guard()
        .session_binding(binding)
        .layer()
        .layer(mcp_service(sessions));
    let app = axum::Router::new().route_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Replica { url, task }
}

async fn post(url: &str, token: &str, session: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.unwrap()
}

struct Pair {
    redis: RedisServer,
    issuer: TestAuthServer,
    a: Replica,
    b: Replica,
}

async fn pair() -> Pair {
    let redis = RedisServer::start().await;
    let issuer = TestAuthServer::start().await.unwrap();
    let sessions = Arc::new(AtomicUsize::new(0));
    let a = replica(&issuer, redis.store("replicas"), sessions.clone()).await;
    let b = replica(&issuer, redis.store("replicas"), sessions).await;
    Pair {
        redis,
        issuer,
        a,
        b,
    }
}

#[tokio::test]
async fn a_session_made_on_a_is_refused_to_another_user_on_b_and_served_to_its_owner() {
    let p = pair().await;
    let alice = p.issuer.issue_opaque_token(json!({"aud": RESOURCE}));
    let bob = p
        .issuer
        .issue_opaque_token(json!({"aud": RESOURCE, "sub": "bob"}));

    let created = post(&p.a.url, &alice, None).await;
    assert_eq!(created.status(), StatusCode::OK);
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let refused = post(&p.b.url, &bob, Some(&session)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "session_forbidden");
    assert_eq!(
        post(&p.b.url, &alice, Some(&session)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&p.b.url, &alice, Some("s-unknown")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_introspection_answer_cached_by_a_is_used_by_b() {
    let p = pair().await;
    let token = p.issuer.issue_opaque_token(json!({"aud": RESOURCE}));
    assert_eq!(post(&p.a.url, &token, None).await.status(), StatusCode::OK);
    assert_eq!(p.issuer.request_count(Endpoint::Introspection), 1);
    assert_eq!(post(&p.b.url, &token, None).await.status(), StatusCode::OK);
    assert_eq!(
        p.issuer.request_count(Endpoint::Introspection),
        1,
        "B was served by A's answer in Redis"
    );
}

#[tokio::test]
async fn with_redis_down_session_checks_get_503_and_heal_after_a_restart() {
    let mut p = pair().await;
    let alice = p.issuer.issue_opaque_token(json!({"aud": RESOURCE}));
    let created = post(&p.a.url, &alice, None).await;
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let port = p.redis.port;

    p.redis.kill();
    // The token's answer is in each replica's local cache (A's) or asked again (B's): either
    // way the session's owner cannot be checked, so the request is refused, never forwarded.
    for url in [&p.a.url, &p.b.url] {
        let response = post(url, &alice, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
        assert_eq!(response.headers()["retry-after"], "1");
    }
    // A new session cannot be recorded either: 503, not an ownerless session.
    assert_eq!(
        post(&p.b.url, &alice, None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let _restarted = RedisServer::start_on(port).await;
    // Redis came back empty (no persistence): the old session is unknown, a new one works
    // on both replicas without restarting either.
    let mut created = None;
    for _ in 0..50 {
        let response = post(&p.a.url, &alice, None).await;
        if response.status() == StatusCode::OK {
            created = Some(
                response.headers()["mcp-session-id"]
                    .to_str()
                    .unwrap()
                    .to_owned(),
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let session = created.expect("replica A never healed");
    let mut healed = false;
    for _ in 0..50 {
        if post(&p.b.url, &alice, Some(&session)).await.status() == StatusCode::OK {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healed, "replica B never healed");
}
