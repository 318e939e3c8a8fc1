//! Per-operation scopes with step-up challenges over real HTTP: an rmcp `StreamableHttpService`
//! behind `guard.mcp_guard().operation_scopes(policy).layer()`, tokens from the test authorization
//! server, in rmcp's stateless (JSON) and legacy-session (SSE) modes.
#![cfg(feature = "test-util")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_auth::AuthInfo;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::scope::GrantedScopes;
use mcp_auth::tower::{ChallengeScopes, OperationScopes, OperationScopesBuilder};
use reqwest::StatusCode;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tower::Layer;

use crate::support::mcp_client;
use crate::support::mcp_server::{McpServer, sessions, stateless, tool_call};
use mcp_client::{Reply, initialize, initialized, post, post_raw};

/// The tools behind the guard (also the fixture of `mcp_headers`).
#[derive(Clone)]
pub(crate) struct Tools {
    /// How many tool bodies ran.
    ran: Arc<AtomicUsize>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Path {
    path: String,
}

#[tool_router]
impl Tools {
    #[tool(description = "needs only the base scope")]
    async fn public(&self, auth: AuthInfo) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        format!("public for {}", auth.subject.unwrap_or_default())
    }

    #[tool(description = "needs the admin scope (policy)")]
    async fn admin_report(&self, auth: AuthInfo) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        format!(
            "report for {} with {}",
            auth.subject.unwrap_or_default(),
            auth.scopes.join(" ")
        )
    }

    #[tool(description = "needs files:write (policy); files:admin implies it")]
    async fn files_delete(&self) -> String {
        self.ran.fetch_add(1, Ordering::SeqCst);
        "deleted".to_owned()
    }

    #[tool(description = "system paths need files:admin, checked in the handler")]
    async fn maybe_delete(
        &self,
        scopes: GrantedScopes,
        Parameters(args): Parameters<Path>,
    ) -> CallToolResult {
        self.ran.fetch_add(1, Ordering::SeqCst);
        if args.path.starts_with("/system/")
            && let Err(missing) = scopes.require(["files:admin"])
        {
            return CallToolResult::error(vec![ContentBlock::text(missing.to_string())]);
        }
        CallToolResult::success(vec![ContentBlock::text(format!("deleted {}", args.path))])
    }
}

#[tool_handler]
impl ServerHandler for Tools {}

/// The server, and how often a tool ran.
pub(crate) struct Mcp {
    pub(crate) server: McpServer,
    ran: Arc<AtomicUsize>,
}

impl std::ops::Deref for Mcp {
    type Target = McpServer;
    fn deref(&self) -> &McpServer {
        &self.server
    }
}

impl Mcp {
    /// A token for `subject` for this resource, with `scope`.
    pub(crate) fn token(&self, subject: &str, scope: &str) -> String {
        self.server.scoped_token(subject, scope)
    }

    pub(crate) fn ran(&self) -> usize {
        self.ran.load(Ordering::SeqCst)
    }
}

fn policy() -> OperationScopesBuilder {
    OperationScopes::builder()
        .tool("admin_report", ["admin"])
        .tool("files_delete", ["files:write"])
        .method("tools/list", ["list"])
}

/// Serves `Tools` at `/mcp` with axum behind the guard (base scope `read`, `files:admin`
/// implying `files:write`) and `policy`.
pub(crate) async fn serve(
    config: StreamableHttpServerConfig,
    policy: OperationScopesBuilder,
) -> Mcp {
    let policy = policy.build().expect("policy");
    let ran = Arc::new(AtomicUsize::new(0));
    let tools = Tools { ran: ran.clone() };
    let server = McpServer::start(|auth, resource| {
        let guard = auth
            .bearer_auth_jwt(resource)
            .required_scopes(["read"])
            .scope_implies("files:admin", ["files:write"])
            .build()
            .expect("guard");
        let mcp: StreamableHttpService<Tools, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(tools.clone()), Default::default(), config);
        axum::Router::new().route_service(
            "/mcp",
            guard
                .mcp_guard()
                .operation_scopes(policy)
                .layer()
                .layer(mcp),
        )
    })
    .await;
    Mcp { server, ran }
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    tool_call(id, tool, arguments)
}

#[tokio::test]
async fn tool_needing_an_extra_scope_gets_403_step_up_challenge_then_succeeds_with_a_new_token() {
    let mcp = serve(stateless(), policy()).await;
    let base = mcp.token("alice", "read");

    let reply = post(&mcp.url, Some(&base), None, call(1, "public", json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.text(), "public for alice");
    assert_eq!(mcp.ran(), 1);

    let refused = post(
        &mcp.url,
        Some(&base),
        None,
        call(2, "admin_report", json!({})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(mcp.ran(), 1, "the tool never ran");
    let challenge = challenge(&refused);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read", "admin"]);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(mcp.metadata_url.as_str())
    );
    let body = refused.json();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["missing_scopes"], json!(["admin"]));

    // Step-up: a token with the challenged scopes.
    let stepped_up = mcp.token("alice", &challenge.scope.join(" "));
    let reply = post(
        &mcp.url,
        Some(&stepped_up),
        None,
        call(3, "admin_report", json!({})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.text(), "report for alice with read admin");
}

#[tokio::test]
async fn challenge_scope_follows_the_configured_strategy_and_is_stable() {
    for (strategy, expected) in [
        (
            ChallengeScopes::RequiredAndGranted,
            vec!["read", "admin", "files:write"],
        ),
        (ChallengeScopes::Required, vec!["read", "admin"]),
    ] {
        let mcp = serve(stateless(), policy().challenge_scopes(strategy)).await;
        // `files:write` is named by the policy (relevant), `openid` is not.
        let token = mcp.token("alice", "openid read files:write");
        for id in 0..2 {
            let refused = post(
                &mcp.url,
                Some(&token),
                None,
                call(id, "admin_report", json!({})),
            )
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            assert_eq!(challenge(&refused).scope, expected, "{strategy:?}");
        }
    }
}

#[tokio::test]
async fn scope_hierarchy_satisfies_a_tool_scope() {
    let mcp = serve(stateless(), policy()).await;
    let reply = post(
        &mcp.url,
        Some(&mcp.token("alice", "read files:admin")),
        None,
        call(1, "files_delete", json!({})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.text(), "deleted");
    let refused = post(
        &mcp.url,
        Some(&mcp.token("alice", "read")),
        None,
        call(2, "files_delete", json!({})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&refused).scope, ["read", "files:write"]);
}

#[tokio::test]
async fn method_scopes_apply_to_any_json_rpc_method() {
    let mcp = serve(stateless(), policy()).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let refused = post(
        &mcp.url,
        Some(&mcp.token("alice", "read")),
        None,
        list.clone(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&refused).scope, ["read", "list"]);
    let reply = post(&mcp.url, Some(&mcp.token("alice", "read list")), None, list).await;
    assert_eq!(reply.status, StatusCode::OK);
    let tools = reply.json()["result"]["tools"]
        .as_array()
        .expect("tools")
        .len();
    assert_eq!(tools, 4);
}

#[tokio::test]
async fn handler_checks_argument_dependent_scopes_through_granted_scopes() {
    let mcp = serve(stateless(), policy()).await;
    let token = mcp.token("alice", "read");
    let ok = post(
        &mcp.url,
        Some(&token),
        None,
        call(1, "maybe_delete", json!({"path": "/tmp/a"})),
    )
    .await;
    assert_eq!(ok.text(), "deleted /tmp/a");
    let denied = post(
        &mcp.url,
        Some(&token),
        None,
        call(2, "maybe_delete", json!({"path": "/system/a"})),
    )
    .await;
    // A tool error inside a 200: the HTTP answer is no longer the tool's to choose.
    assert_eq!(denied.status, StatusCode::OK);
    let result = &denied.json()["result"];
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains("`files:admin`")
    );
    // The hierarchy counts in the handler too.
    let admin = mcp.token("alice", "read files:admin");
    let ok = post(
        &mcp.url,
        Some(&admin),
        None,
        call(3, "maybe_delete", json!({"path": "/system/a"})),
    )
    .await;
    assert_eq!(ok.text(), "deleted /system/a");
}

#[tokio::test]
async fn request_failing_authentication_gets_401_and_its_body_is_never_read() {
    let mcp = serve(stateless(), policy().max_body_bytes(1024)).await;
    // Far over the cap: a read body would be 413; an unread one gives the guard's 401.
    let mut huge = call(1, "admin_report", json!({})).to_string().into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    let reply = post_raw(&mcp.url, None, None, huge.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let invalid = post_raw(&mcp.url, Some("not-a-jwt"), None, huge).await;
    assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&invalid).error.as_deref(), Some("invalid_token"));
    // Missing the base scope: the guard's own 403, naming the base scope only.
    let no_base = post(
        &mcp.url,
        Some(&mcp.token("alice", "admin")),
        None,
        call(2, "admin_report", json!({})),
    )
    .await;
    assert_eq!(no_base.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&no_base).scope, ["read"]);
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn body_over_the_cap_gets_413() {
    let mcp = serve(stateless(), policy().max_body_bytes(1024)).await;
    let mut big = call(1, "public", json!({})).to_string().into_bytes();
    big.extend(std::iter::repeat_n(b' ', 4096));
    let reply = post_raw(&mcp.url, Some(&mcp.token("alice", "read")), None, big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"], "request_too_large");
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn a_compressed_body_gets_415_and_is_never_read_as_json() {
    let mcp = serve(stateless(), policy()).await;
    let token = mcp.token("alice", "read");
    let body = call(1, "admin_report", json!({})).to_string();
    let send = |encoding: &'static str| {
        reqwest::Client::new()
            .post(&mcp.url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("content-encoding", encoding)
            .body(body.clone())
            .send()
    };
    for encoding in ["gzip", "br", "identity, gzip", "GZIP"] {
        let reply = send(encoding).await.expect("request");
        assert_eq!(
            reply.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{encoding}"
        );
        assert_eq!(reply.headers()["accept-encoding"], "identity");
        let error: Value = reply.json().await.expect("JSON");
        assert_eq!(error["error"], "unsupported_content_encoding");
    }
    assert_eq!(mcp.ran(), 0, "no tool ran");
    // `identity` is no coding at all: the probe reads it and refuses the missing scope.
    let reply = send("identity").await.expect("request");
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn non_json_body_and_unknown_tools_reach_rmcp_which_answers_them() {
    let mcp = serve(stateless(), policy()).await;
    let token = mcp.token("alice", "read");
    let garbage = post_raw(&mcp.url, Some(&token), None, b"{not json".to_vec()).await;
    // rmcp's own parse-error answer, not one of ours.
    assert_ne!(garbage.status, StatusCode::FORBIDDEN);
    assert_ne!(garbage.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(garbage.www_authenticate.is_none());
    let unknown = post(
        &mcp.url,
        Some(&token),
        None,
        call(1, "no_such_tool", json!({})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert!(unknown.json()["error"].is_object(), "{}", unknown.body);
}

#[tokio::test]
async fn batch_with_a_forbidden_call_is_refused_before_rmcp() {
    let mcp = serve(stateless(), policy()).await;
    let batch = json!([
        call(1, "public", json!({})),
        call(2, "admin_report", json!({}))
    ]);
    let reply = post(&mcp.url, Some(&mcp.token("alice", "read")), None, batch).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&reply).scope, ["read", "admin"]);
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn step_up_keeps_the_session_in_legacy_session_mode() {
    let mcp = serve(sessions(), policy()).await;
    let base = mcp.token("alice", "read");
    let init = post(&mcp.url, Some(&base), None, initialize()).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.body);
    let session = init.session.expect("a session id");
    let ack = post(&mcp.url, Some(&base), Some(&session), initialized()).await;
    assert_eq!(ack.status, StatusCode::ACCEPTED);

    let refused = post(
        &mcp.url,
        Some(&base),
        Some(&session),
        call(2, "admin_report", json!({})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&refused).scope, ["read", "admin"]);

    // Same user, same client, more scopes: the session is still theirs.
    let stepped_up = mcp.token("alice", "read admin");
    let reply = post(
        &mcp.url,
        Some(&stepped_up),
        Some(&session),
        call(3, "admin_report", json!({})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.text(), "report for alice with read admin");
}

fn challenge(reply: &Reply) -> BearerChallenge {
    BearerChallenge::parse(reply.www_authenticate.as_deref().expect("WWW-Authenticate"))
        .expect("a Bearer challenge")
}
