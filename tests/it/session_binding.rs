//! Sessions bound to their caller over real HTTP: rmcp's `StreamableHttpService` in legacy
//! session mode behind `McpGuard` (session binding is on by default), tokens from the test
//! authorization server.
#![cfg(feature = "test-util")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_auth::AuthInfo;
use mcp_auth::tower::{McpGuard, SessionBinding};
use reqwest::StatusCode;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tower::Layer;

use crate::support::mcp_client;
use crate::support::mcp_server::{McpServer, sessions, tool_call};
use mcp_client::{initialize, post, send};

#[derive(Clone)]
struct Tools {
    ran: Arc<AtomicUsize>,
}

#[tool_router]
impl Tools {
    #[tool(description = "the caller's subject")]
    async fn subject(&self, auth: AuthInfo) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        auth.subject.unwrap_or_default()
    }
}

#[tool_handler]
impl ServerHandler for Tools {}

/// The server, and how often the tool ran.
struct Mcp {
    server: McpServer,
    ran: Arc<AtomicUsize>,
}

impl std::ops::Deref for Mcp {
    type Target = McpServer;
    fn deref(&self) -> &McpServer {
        &self.server
    }
}

impl Mcp {
    fn ran(&self) -> usize {
        self.ran.load(Ordering::SeqCst)
    }
}

/// Serves `Tools` at `/mcp` behind `configure(guard.mcp_guard())`.
async fn serve(config: StreamableHttpServerConfig, configure: fn(McpGuard) -> McpGuard) -> Mcp {
    serve_instances(config, configure, None).await
}

/// Serves `Tools` at `/mcp` behind `configure(guard.mcp_guard())` and, with `second`, the same
/// MCP service (one set of rmcp sessions) at `/mcp-b` behind another guard layer
/// `second(guard.mcp_guard())`: two server instances sharing rmcp's sessions, each with its own
/// bindings.
async fn serve_instances(
    config: StreamableHttpServerConfig,
    configure: fn(McpGuard) -> McpGuard,
    second: Option<fn(McpGuard) -> McpGuard>,
) -> Mcp {
    let ran = Arc::new(AtomicUsize::new(0));
    let tools = Tools { ran: ran.clone() };
    let server = McpServer::start(|auth, resource| {
        let guard = auth.bearer_auth_jwt(resource).build().expect("guard");
        let mcp: StreamableHttpService<Tools, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(tools.clone()), Default::default(), config);
        let layer = configure(guard.mcp_guard()).layer();
        let router = axum::Router::new().route_service("/mcp", layer.layer(mcp.clone()));
        match second {
            Some(second) => {
                router.route_service("/mcp-b", second(guard.mcp_guard()).layer().layer(mcp))
            }
            None => router,
        }
    })
    .await;
    Mcp { server, ran }
}

fn defaults(guard: McpGuard) -> McpGuard {
    guard
}

/// Room for one session only.
fn one_session(guard: McpGuard) -> McpGuard {
    let one = SessionBinding::builder()
        .max_sessions(1)
        .build()
        .expect("settings");
    guard.session_binding(one)
}

/// Room for 4 sessions, 3 per principal.
fn three_per_principal(guard: McpGuard) -> McpGuard {
    let settings = SessionBinding::builder()
        .max_sessions(4)
        .max_sessions_per_principal(3)
        .build()
        .expect("settings");
    guard.session_binding(settings)
}

/// Room for one session; unknown session ids forwarded.
fn one_session_forwarding(guard: McpGuard) -> McpGuard {
    let settings = SessionBinding::builder()
        .max_sessions(1)
        .forward_unknown_sessions(true)
        .build()
        .expect("settings");
    guard.session_binding(settings)
}

/// One session per principal; unknown session ids forwarded.
fn one_per_principal_forwarding(guard: McpGuard) -> McpGuard {
    let settings = SessionBinding::builder()
        .max_sessions_per_principal(1)
        .forward_unknown_sessions(true)
        .build()
        .expect("settings");
    guard.session_binding(settings)
}

/// Unknown session ids forwarded, other settings the defaults.
fn forwarding(guard: McpGuard) -> McpGuard {
    let settings = SessionBinding::builder()
        .forward_unknown_sessions(true)
        .build()
        .expect("settings");
    guard.session_binding(settings)
}

fn call(id: u64) -> Value {
    tool_call(id, "subject", json!({}))
}

/// initialize + notifications/initialized as `token`; the session id.
async fn open_session(mcp: &Mcp, token: &str) -> String {
    let init = post(&mcp.url, Some(token), None, initialize()).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.body);
    let session = init.session.expect("legacy mode gives a session id");
    let ack = post(
        &mcp.url,
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(ack.status, StatusCode::ACCEPTED);
    session
}

#[tokio::test]
async fn bob_with_alices_session_gets_403_no_token_gets_401_alice_continues() {
    let mcp = serve(sessions(), defaults).await;
    let alice = mcp.token("alice");
    let session = open_session(&mcp, &alice).await;
    let reply = post(&mcp.url, Some(&alice), Some(&session), call(2)).await;
    assert_eq!(reply.text(), "alice");
    assert_eq!(mcp.ran(), 1);

    // Bob, with his own valid token, in alice's session.
    let bob = post(&mcp.url, Some(&mcp.token("bob")), Some(&session), call(3)).await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN, "{}", bob.body);
    assert!(
        bob.www_authenticate.is_none(),
        "not a scope problem: no challenge"
    );
    let body = bob.json();
    assert_eq!(body["error"], "session_forbidden");
    assert!(
        body["error_description"]
            .as_str()
            .expect("description")
            .contains("another user"),
        "{body}"
    );
    assert_eq!(mcp.ran(), 1, "bob's call never reached the tool");

    // No token at all: the normal 401; the session id is not a credential.
    let anonymous = post(&mcp.url, None, Some(&session), call(4)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous
            .www_authenticate
            .as_deref()
            .expect("challenge")
            .contains("resource_metadata="),
        "{:?}",
        anonymous.www_authenticate
    );
    let forged = post(&mcp.url, Some("forged"), Some(&session), call(5)).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Alice carries on in her session.
    let reply = post(&mcp.url, Some(&alice), Some(&session), call(6)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "alice");
    assert_eq!(mcp.ran(), 2);
}

#[tokio::test]
async fn a_new_token_for_the_same_user_and_client_keeps_the_session() {
    let mcp = serve(sessions(), defaults).await;
    let session = open_session(&mcp, &mcp.token("alice")).await;
    let refreshed = mcp.token("alice");
    let reply = post(&mcp.url, Some(&refreshed), Some(&session), call(2)).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Same user through another client: refused.
    let other_client = mcp
        .issuer
        .token()
        .subject("alice")
        .client_id("another-client")
        .audience(mcp.url.clone())
        .sign();
    let reply = post(&mcp.url, Some(&other_client), Some(&session), call(3)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn get_stream_and_delete_are_bound_too_and_delete_forgets_the_session() {
    let mcp = serve(sessions(), defaults).await;
    let alice = mcp.token("alice");
    let bob = mcp.token("bob");
    let session = open_session(&mcp, &alice).await;

    let bob_get = send(
        reqwest::Method::GET,
        &mcp.url,
        Some(&bob),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(bob_get.status, StatusCode::FORBIDDEN);
    let bob_delete = send(
        reqwest::Method::DELETE,
        &mcp.url,
        Some(&bob),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(bob_delete.status, StatusCode::FORBIDDEN);
    // Alice's session survived bob's DELETE.
    assert_eq!(
        post(&mcp.url, Some(&alice), Some(&session), call(2))
            .await
            .status,
        StatusCode::OK
    );

    let delete = send(
        reqwest::Method::DELETE,
        &mcp.url,
        Some(&alice),
        Some(&session),
        None,
    )
    .await;
    assert!(delete.status.is_success(), "{}", delete.status);
    let after = post(&mcp.url, Some(&alice), Some(&session), call(3)).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_caller_has_their_own_sessions_and_made_up_ids_get_404() {
    let mcp = serve(sessions(), defaults).await;
    let alice = mcp.token("alice");
    let bob = mcp.token("bob");
    let alices = open_session(&mcp, &alice).await;
    let bobs = open_session(&mcp, &bob).await;
    assert_ne!(alices, bobs);
    assert_eq!(
        post(&mcp.url, Some(&bob), Some(&bobs), call(2))
            .await
            .text(),
        "bob"
    );
    assert_eq!(
        post(&mcp.url, Some(&alice), Some(&bobs), call(3))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let made_up = post(&mcp.url, Some(&alice), Some("0123456789abcdef"), call(4)).await;
    assert_eq!(made_up.status, StatusCode::NOT_FOUND);
    assert_eq!(made_up.json()["error"], "session_not_found");
}

#[tokio::test]
async fn without_session_binding_rmcp_serves_any_caller_in_any_session() {
    // What the binding prevents: rmcp alone does not bind sessions to identities.
    let mcp = serve(sessions(), McpGuard::no_session_binding).await;
    let session = open_session(&mcp, &mcp.token("alice")).await;
    let bob = post(&mcp.url, Some(&mcp.token("bob")), Some(&session), call(2)).await;
    assert_eq!(bob.status, StatusCode::OK);
    assert_eq!(bob.text(), "bob");
    // Authentication still runs first.
    assert_eq!(
        post(&mcp.url, None, Some(&session), call(3)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_cap_of_one_keeps_the_newest_session_and_forgets_the_other() {
    let mcp = serve(sessions(), one_session).await;
    let alice = mcp.token("alice");
    let bob = mcp.token("bob");
    let alices = open_session(&mcp, &alice).await;
    let bobs = open_session(&mcp, &bob).await;
    // The store is full with alice's, so bob's new session forgets it (least recently used);
    // the bookkeeping is done by the time the answer arrives.
    let forgotten = post(&mcp.url, Some(&alice), Some(&alices), call(2)).await;
    assert_eq!(forgotten.status, StatusCode::NOT_FOUND);
    assert_eq!(forgotten.json()["error"], "session_not_found");
    let kept = post(&mcp.url, Some(&bob), Some(&bobs), call(3)).await;
    assert_eq!(kept.text(), "bob");
    // A forgotten session stays forgotten: its id is never served again.
    let again = post(&mcp.url, Some(&alice), Some(&alices), call(4)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(mcp.ran(), 1);
}

#[tokio::test]
async fn one_caller_opening_more_than_its_cap_never_evicts_another_callers_session() {
    let mcp = serve(sessions(), three_per_principal).await;
    let alice = mcp.token("alice");
    let mallory = mcp.token("mallory");
    let alices = open_session(&mcp, &alice).await;
    // Twice the whole store's room, from one caller.
    let mut mallorys = Vec::new();
    for _ in 0..8 {
        mallorys.push(open_session(&mcp, &mallory).await);
    }
    let reply = post(&mcp.url, Some(&alice), Some(&alices), call(2)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.text(), "alice");
    // Mallory's cap forgot mallory's own oldest sessions: the last three are served.
    for (n, session) in mallorys.iter().enumerate() {
        let reply = post(&mcp.url, Some(&mallory), Some(session), call(3)).await;
        let expected = if n < 5 {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(
            reply.status, expected,
            "mallory's session {n}: {}",
            reply.body
        );
    }
    assert_eq!(mcp.ran(), 4);
}

#[tokio::test]
async fn forwarding_an_id_evicted_from_a_full_store_is_refused_to_everyone_not_claimed() {
    let mcp = serve(sessions(), one_session_forwarding).await;
    let alice = mcp.token("alice");
    let mallory = mcp.token("mallory");
    let alices = open_session(&mcp, &alice).await;
    // Bob's session pushes alice's binding out; rmcp still has the session.
    let bob = mcp.token("bob");
    let bobs = open_session(&mcp, &bob).await;

    // Mallory, who learnt alice's id, presents it first: refused, not forwarded, not bound.
    let stolen = post(&mcp.url, Some(&mallory), Some(&alices), call(2)).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);
    assert_eq!(stolen.json()["error"], "session_not_found");
    // Its former owner is told it ended (the client then starts a new session) ...
    let owner = post(&mcp.url, Some(&alice), Some(&alices), call(3)).await;
    assert_eq!(owner.status, StatusCode::NOT_FOUND);
    // ... and nobody came to own it meanwhile.
    let again = post(&mcp.url, Some(&mallory), Some(&alices), call(4)).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(mcp.ran(), 0, "no call in alice's session reached the tool");

    assert_eq!(
        post(&mcp.url, Some(&bob), Some(&bobs), call(5))
            .await
            .text(),
        "bob"
    );
    let fresh = open_session(&mcp, &alice).await;
    assert_eq!(
        post(&mcp.url, Some(&alice), Some(&fresh), call(6))
            .await
            .text(),
        "alice"
    );
}

#[tokio::test]
async fn forwarding_an_id_its_owner_outgrew_is_refused_to_everyone_not_claimed() {
    let mcp = serve(sessions(), one_per_principal_forwarding).await;
    let alice = mcp.token("alice");
    let mallory = mcp.token("mallory");
    let first = open_session(&mcp, &alice).await;
    let second = open_session(&mcp, &alice).await;
    for (who, token) in [("mallory", &mallory), ("alice", &alice)] {
        let reply = post(&mcp.url, Some(token), Some(&first), call(2)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{who}: {}", reply.body);
    }
    assert_eq!(mcp.ran(), 0);
    assert_eq!(
        post(&mcp.url, Some(&alice), Some(&second), call(3))
            .await
            .text(),
        "alice"
    );
    assert_eq!(
        post(&mcp.url, Some(&mallory), Some(&second), call(4))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn forwarding_serves_a_session_made_on_another_instance_to_its_first_presenter_only() {
    // Instance A (`/mcp`) has room for one binding; instance B (`/mcp-b`) the defaults. Both
    // forward unknown ids to the same rmcp sessions.
    let mcp = serve_instances(sessions(), one_session_forwarding, Some(forwarding)).await;
    let b_url = format!("{}-b", mcp.url);
    let alice = mcp.token("alice");
    let mallory = mcp.token("mallory");
    let alices = open_session(&mcp, &alice).await;

    // B never saw it made: alice, presenting it first there, owns it there.
    let on_b = post(&b_url, Some(&alice), Some(&alices), call(2)).await;
    assert_eq!(on_b.status, StatusCode::OK, "{}", on_b.body);
    assert_eq!(on_b.text(), "alice");
    let mallory_on_b = post(&b_url, Some(&mallory), Some(&alices), call(3)).await;
    assert_eq!(mallory_on_b.status, StatusCode::FORBIDDEN);

    // A forgets alice's binding (bob's session takes its room): there it is refused to
    // everyone, while B, which still binds it, keeps serving alice.
    open_session(&mcp, &mcp.token("bob")).await;
    let mallory_on_a = post(&mcp.url, Some(&mallory), Some(&alices), call(4)).await;
    assert_eq!(mallory_on_a.status, StatusCode::NOT_FOUND);
    let alice_on_a = post(&mcp.url, Some(&alice), Some(&alices), call(5)).await;
    assert_eq!(alice_on_a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        post(&b_url, Some(&alice), Some(&alices), call(6))
            .await
            .text(),
        "alice"
    );
    assert_eq!(mcp.ran(), 2);
}

#[tokio::test]
async fn stateless_servers_are_unaffected() {
    let mcp = serve(
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
        one_session,
    )
    .await;
    for subject in ["alice", "bob", "carol"] {
        let reply = post(&mcp.url, Some(&mcp.token(subject)), None, call(1)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.session.is_none());
        assert_eq!(reply.text(), subject);
    }
}
