use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderValue;
use http_body_util::{BodyExt, Either};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::error::VerifyError;
use crate::tower::SessionBindingBuilder;

fn guard() -> BearerAuth {
    let verifier = |_token: String| async {
        Err::<AuthInfo, _>(VerifyError::invalid_token("unused in these tests"))
    };
    BearerAuth::builder(
        Arc::new(verifier),
        vec!["https://as".into()],
        Some("https://h/mcp".into()),
        Some("https://h/.well-known/oauth-protected-resource/mcp".into()),
    )
    .build()
    .unwrap()
}

fn settings() -> SessionBindingBuilder {
    SessionBinding::builder()
}

fn caller(subject: &str, client: &str) -> AuthInfo {
    AuthInfo::new("t", "https://as")
        .with_subject(subject)
        .with_client_id(client)
}

/// A stand-in for rmcp's session handling: a POST without a session id opens `s-<n>`, a
/// known id is served (200), an unknown one is 404, DELETE closes (202).
#[derive(Clone, Default)]
struct FakeMcp {
    sessions: Arc<Mutex<HashSet<String>>>,
    calls: Arc<AtomicUsize>,
}

impl FakeMcp {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
    {
        let this = self.clone();
        tower::service_fn(move |request: Request<()>| {
            let this = this.clone();
            async move {
                let n = this.calls.fetch_add(1, Ordering::SeqCst);
                let mut sessions = this.sessions.lock().unwrap();
                let id = request
                    .headers()
                    .get(MCP_SESSION_ID)
                    .map(|v| v.to_str().unwrap().to_owned());
                let mut response = Response::new(Full::new(Bytes::new()));
                match id {
                    None => {
                        let id = format!("s-{n}");
                        sessions.insert(id.clone());
                        response
                            .headers_mut()
                            .insert(MCP_SESSION_ID, HeaderValue::from_str(&id).unwrap());
                    }
                    Some(id) if !sessions.contains(&id) => {
                        *response.status_mut() = StatusCode::NOT_FOUND;
                    }
                    Some(id) if request.method() == Method::DELETE => {
                        sessions.remove(&id);
                        *response.status_mut() = StatusCode::ACCEPTED;
                    }
                    Some(_) => {}
                }
                Ok(response)
            }
        })
    }
}

fn request(method: Method, who: Option<AuthInfo>, session: Option<&str>) -> Request<()> {
    let mut request = Request::builder()
        .method(method)
        .uri("/mcp")
        .body(())
        .unwrap();
    if let Some(who) = who {
        request.extensions_mut().insert(who);
    }
    if let Some(session) = session {
        request
            .headers_mut()
            .insert(MCP_SESSION_ID, HeaderValue::from_str(session).unwrap());
    }
    request
}

struct Harness {
    mcp: FakeMcp,
    layer: SessionBindingLayer,
}

impl Harness {
    fn new(settings: SessionBinding) -> Self {
        Self {
            mcp: FakeMcp::default(),
            layer: SessionBindingLayer::new(guard(), settings),
        }
    }

    async fn send(&self, request: Request<()>) -> Response<Either<Full<Bytes>, Full<Bytes>>> {
        self.layer
            .layer(self.mcp.service())
            .oneshot(request)
            .await
            .unwrap()
    }

    /// A POST by `subject` (client c1) in `session`.
    async fn post_as(
        &self,
        subject: &str,
        session: &str,
    ) -> Response<Either<Full<Bytes>, Full<Bytes>>> {
        self.send(request(
            Method::POST,
            Some(caller(subject, "c1")),
            Some(session),
        ))
        .await
    }

    /// alice (client c1) opens a session; its id.
    async fn open(&self, who: AuthInfo) -> String {
        let response = self.send(request(Method::POST, Some(who), None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()[MCP_SESSION_ID]
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn registry(&self) -> &Registry {
        local(&self.layer)
    }
}

fn local(layer: &SessionBindingLayer) -> &Registry {
    match &layer.shared.bindings {
        Some(Bindings::Local(registry)) => registry,
        _ => panic!("the layer keeps its bindings in memory"),
    }
}

async fn error_code(response: Response<Either<Full<Bytes>, Full<Bytes>>>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_creator_uses_its_session_and_another_user_gets_403() {
    let h = Harness::new(SessionBinding::default());
    let session = h.open(caller("alice", "c1")).await;
    let calls = h.mcp.calls();

    let bob = h.post_as("bob", &session).await;
    assert_eq!(bob.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        h.mcp.calls(),
        calls,
        "bob's request never reached the service"
    );
    assert_eq!(error_code(bob).await, "session_forbidden");

    let alice = h.post_as("alice", &session).await;
    assert_eq!(alice.status(), StatusCode::OK);
    assert_eq!(h.mcp.calls(), calls + 1);
}

#[tokio::test]
async fn owner_is_issuer_subject_and_client_id_not_the_token_or_scopes() {
    let h = Harness::new(SessionBinding::default());
    let session = h.open(caller("alice", "c1")).await;
    let other_client = h
        .send(request(
            Method::GET,
            Some(caller("alice", "c2")),
            Some(&session),
        ))
        .await;
    assert_eq!(other_client.status(), StatusCode::FORBIDDEN);
    let mut other_issuer = caller("alice", "c1");
    other_issuer.issuer = "https://other-as".into();
    let other_issuer = h
        .send(request(Method::GET, Some(other_issuer), Some(&session)))
        .await;
    assert_eq!(other_issuer.status(), StatusCode::FORBIDDEN);
    // A new token for the same user and client (after step-up: more scopes) keeps it.
    let stepped_up = AuthInfo::new("another-token", "https://as")
        .with_subject("alice")
        .with_client_id("c1")
        .with_scopes(["admin"]);
    let response = h
        .send(request(Method::POST, Some(stepped_up), Some(&session)))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_session_ids_get_404_unless_forwarded() {
    let h = Harness::new(SessionBinding::default());
    let response = h.post_as("alice", "s-made-up").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.mcp.calls(), 0);
    assert_eq!(error_code(response).await, "session_not_found");

    // Forwarding: a session made elsewhere (here: directly in the service) is bound to the
    // first caller the service accepts.
    let h = Harness::new(settings().forward_unknown_sessions(true).build().unwrap());
    h.mcp.sessions.lock().unwrap().insert("s-elsewhere".into());
    let alice = h.post_as("alice", "s-elsewhere").await;
    assert_eq!(alice.status(), StatusCode::OK);
    let bob = h.post_as("bob", "s-elsewhere").await;
    assert_eq!(bob.status(), StatusCode::FORBIDDEN);
    // An id the service does not know either is not bound to anyone.
    let ghost = h.post_as("bob", "s-ghost").await;
    assert_eq!(ghost.status(), StatusCode::NOT_FOUND);
    let alice = h.post_as("alice", "s-ghost").await;
    assert_eq!(alice.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_by_the_owner_forgets_the_session_and_delete_by_others_is_refused() {
    let h = Harness::new(SessionBinding::default());
    let session = h.open(caller("alice", "c1")).await;
    let bob = h
        .send(request(
            Method::DELETE,
            Some(caller("bob", "c1")),
            Some(&session),
        ))
        .await;
    assert_eq!(bob.status(), StatusCode::FORBIDDEN);
    assert!(h.mcp.sessions.lock().unwrap().contains(&session));

    let alice = h
        .send(request(
            Method::DELETE,
            Some(caller("alice", "c1")),
            Some(&session),
        ))
        .await;
    assert_eq!(alice.status(), StatusCode::ACCEPTED);
    assert_eq!(h.registry().len(), 0);
    let after = h.post_as("alice", &session).await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_404_from_the_service_forgets_the_session() {
    let h = Harness::new(SessionBinding::default());
    let session = h.open(caller("alice", "c1")).await;
    h.mcp.sessions.lock().unwrap().clear();
    let response = h.post_as("alice", &session).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.registry().len(), 0);
}

#[tokio::test]
async fn two_session_headers_get_400() {
    let h = Harness::new(SessionBinding::default());
    let session = h.open(caller("alice", "c1")).await;
    let mut req = request(Method::POST, Some(caller("bob", "c1")), Some("s-bobs"));
    req.headers_mut()
        .append(MCP_SESSION_ID, HeaderValue::from_str(&session).unwrap());
    let response = h.send(req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.mcp.calls(), 1);
}

#[tokio::test]
async fn without_auth_info_the_layer_answers_500() {
    let h = Harness::new(SessionBinding::default());
    let response = h.send(request(Method::POST, None, None)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.mcp.calls(), 0);
}

#[tokio::test]
async fn a_disabled_layer_passes_everything_through() {
    let mcp = FakeMcp::default();
    mcp.sessions.lock().unwrap().insert("s-x".into());
    let response = SessionBindingLayer::disabled(guard())
        .layer(mcp.service())
        .oneshot(request(Method::POST, None, Some("s-x")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(mcp.calls(), 1);
}

#[tokio::test]
async fn sessions_are_bounded_in_number_least_recently_used_first() {
    let h = Harness::new(settings().max_sessions(2).build().unwrap());
    let alice = caller("alice", "c1");
    let first = h.open(alice.clone()).await;
    let second = h.open(alice.clone()).await;
    // Use the first again, so the second is the least recently used.
    h.send(request(Method::POST, Some(alice.clone()), Some(&first)))
        .await;
    let third = h.open(alice.clone()).await;
    assert_eq!(h.registry().len(), 2);
    for (session, status) in [
        (&first, StatusCode::OK),
        (&second, StatusCode::NOT_FOUND),
        (&third, StatusCode::OK),
    ] {
        let response = h
            .send(request(Method::POST, Some(alice.clone()), Some(session)))
            .await;
        assert_eq!(response.status(), status, "{session}");
    }
}

#[tokio::test]
async fn a_caller_over_its_cap_loses_its_own_oldest_session_not_anothers() {
    let h = Harness::new(
        settings()
            .max_sessions(3)
            .max_sessions_per_principal(2)
            .build()
            .unwrap(),
    );
    let alices = h.open(caller("alice", "c1")).await;
    let mallorys: Vec<String> = {
        let mut opened = Vec::new();
        for _ in 0..5 {
            opened.push(h.open(caller("mallory", "c1")).await);
        }
        opened
    };
    assert_eq!(h.post_as("alice", &alices).await.status(), StatusCode::OK);
    for (n, session) in mallorys.iter().enumerate() {
        let expected = if n < 3 {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(
            h.post_as("mallory", session).await.status(),
            expected,
            "{n}"
        );
    }
}

#[tokio::test]
async fn forwarding_an_evicted_session_is_refused_for_everyone_and_never_reaches_the_service() {
    let h = Harness::new(
        settings()
            .max_sessions(1)
            .forward_unknown_sessions(true)
            .build()
            .unwrap(),
    );
    let alices = h.open(caller("alice", "c1")).await;
    // Bob's session pushes alice's out; the service still has it.
    let bobs = h.open(caller("bob", "c1")).await;
    assert!(h.mcp.sessions.lock().unwrap().contains(&alices));
    let calls = h.mcp.calls();
    for who in ["mallory", "alice", "mallory"] {
        let response = h.post_as(who, &alices).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{who}");
        assert_eq!(error_code(response).await, "session_not_found");
    }
    assert_eq!(h.mcp.calls(), calls, "nothing reached the service");
    assert_eq!(h.post_as("bob", &bobs).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_session_id_in_a_response_to_a_request_in_a_session_is_not_bound() {
    // A service that names another session in its answers: only a request without a
    // session creates one.
    let mcp = tower::service_fn(|request: Request<()>| async move {
        let mut response = Response::new(Full::new(Bytes::new()));
        let id = if request.headers().contains_key(MCP_SESSION_ID) {
            "s-other"
        } else {
            "s-new"
        };
        response
            .headers_mut()
            .insert(MCP_SESSION_ID, HeaderValue::from_static(id));
        Ok::<_, Infallible>(response)
    });
    let layer = SessionBindingLayer::new(guard(), SessionBinding::default());
    let send = |who: &str, session: Option<&str>| {
        layer
            .layer(mcp)
            .oneshot(request(Method::POST, Some(caller(who, "c1")), session))
    };
    assert_eq!(send("alice", None).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        send("alice", Some("s-new")).await.unwrap().status(),
        StatusCode::OK
    );
    let registry = local(&layer);
    assert_eq!(registry.len(), 1, "s-other was not bound");
    assert_eq!(
        send("bob", Some("s-other")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sessions_expire_after_the_idle_timeout() {
    let h = Harness::new(
        settings()
            .idle_timeout(Duration::from_millis(50))
            .build()
            .unwrap(),
    );
    let session = h.open(caller("alice", "c1")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let response = h.post_as("alice", &session).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn huge_idle_timeouts_are_capped_instead_of_panicking() {
    let settings = settings().idle_timeout(Duration::MAX).build().unwrap();
    assert_eq!(settings.idle_timeout(), super::super::LONGEST_TIMEOUT);
    // moka accepts the capped timeout, and a session lives under it.
    let h = Harness::new(settings);
    let session = h.open(caller("alice", "c1")).await;
    let response = h.post_as("alice", &session).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_a_shared_store_two_layers_agree_on_each_sessions_owner() {
    let store = crate::store::MemoryStore::new();
    let settings = || settings().store(store.clone()).build().unwrap();
    // Two replicas: each its own layer, the same MCP service state and store.
    let a = Harness::new(settings());
    let b = Harness {
        mcp: a.mcp.clone(),
        layer: SessionBindingLayer::new(guard(), settings()),
    };
    let session = a.open(caller("alice", "c1")).await;
    let calls = a.mcp.calls();
    let bob = b.post_as("bob", &session).await;
    assert_eq!(bob.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(bob).await, "session_forbidden");
    assert_eq!(a.mcp.calls(), calls, "bob never reached the service");
    assert_eq!(b.post_as("alice", &session).await.status(), StatusCode::OK);
    assert_eq!(
        b.post_as("alice", "s-made-up").await.status(),
        StatusCode::NOT_FOUND
    );

    // DELETE through B forgets it on A too.
    let deleted = b
        .send(request(
            Method::DELETE,
            Some(caller("alice", "c1")),
            Some(&session),
        ))
        .await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    assert_eq!(
        a.post_as("alice", &session).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn with_a_shared_store_use_restarts_the_idle_timer() {
    let store = crate::store::MemoryStore::new();
    let h = Harness::new(
        settings()
            .store(store)
            .idle_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let session = h.open(caller("alice", "c1")).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(h.post_as("alice", &session).await.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        h.post_as("alice", &session).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn a_shared_store_with_forwarding_is_refused_at_build() {
    let built = settings()
        .store(crate::store::MemoryStore::new())
        .forward_unknown_sessions(true)
        .build();
    assert!(matches!(
        built,
        Err(crate::ConfigError::ForwardingWithSharedSessions)
    ));
}
