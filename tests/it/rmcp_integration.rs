//! The rmcp extractor over real HTTP: an rmcp `StreamableHttpService` behind the bearer
//! layer, its `#[tool]`s taking `AuthInfo`, in rmcp's stateless and legacy-session modes.
#![cfg(feature = "test-util")]

use mcp_auth::integrations::rmcp::auth_info_from_context;
use mcp_auth::scope::GrantedScopes;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{AuthInfo, BearerAuthError};
use reqwest::StatusCode;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tower::Layer;

use crate::support::mcp_client;
use crate::support::mcp_server::{McpServer, stateless, tool_call};
use mcp_client::{initialize, initialized, post};

#[derive(Clone, Default)]
struct Tools;

#[tool_router]
impl Tools {
    /// The subject, through the `AuthInfo` extractor.
    #[tool(description = "subject via the extractor")]
    async fn subject(&self, auth: AuthInfo) -> String {
        auth.subject.unwrap_or_default()
    }

    /// The subject, through `auth_info_from_context`.
    #[tool(description = "subject via the request context")]
    async fn subject_from_context(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let subject = auth_info_from_context(&context)
            .and_then(|info| info.subject.clone())
            .unwrap_or_else(|| "<none>".to_owned());
        Ok(CallToolResult::success(vec![ContentBlock::text(subject)]))
    }

    /// The granted scopes, which only McpGuard's layer adds.
    #[tool(description = "granted scopes")]
    async fn granted(&self, scopes: GrantedScopes) -> String {
        scopes.granted().join(" ")
    }

    /// A tool that does not ask for the identity.
    #[tool(description = "no identity needed")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[tool_handler]
impl ServerHandler for Tools {}

/// Serves `Tools` at `/mcp` with axum, behind the bearer layer when `guarded`.
async fn serve(config: StreamableHttpServerConfig, guarded: bool) -> McpServer {
    McpServer::start(|auth, resource| {
        let verifier = JwtVerifier::builder()
            .authorization_server(auth.trusted_servers(resource).unwrap()[0].clone())
            .build()
            .expect("verifier");
        let guard = auth.bearer_auth(resource, verifier).build().expect("guard");
        let mcp: StreamableHttpService<Tools, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(Tools), Default::default(), config);
        if guarded {
            axum::Router::new().route_service("/mcp", guard.layer().layer(mcp))
        } else {
            axum::Router::new().route_service("/mcp", mcp)
        }
    })
    .await
}

fn call(id: u64, tool: &str) -> Value {
    tool_call(id, tool, json!({}))
}

#[tokio::test]
async fn tool_taking_auth_info_gets_the_verified_caller_in_stateless_mode() {
    let mcp = serve(stateless(), true).await;
    let token = mcp.token("alice");
    assert_eq!(
        post(&mcp.url, Some(&token), None, initialize())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        post(&mcp.url, Some(&token), None, initialized())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let reply = post(&mcp.url, Some(&token), None, call(2, "subject")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "alice");
    // Each request carries its own identity.
    let reply = post(&mcp.url, Some(&mcp.token("bob")), None, call(3, "subject")).await;
    assert_eq!(reply.text(), "bob");
}

#[tokio::test]
async fn auth_info_from_context_reads_the_same_identity() {
    let mcp = serve(stateless(), true).await;
    let reply = post(
        &mcp.url,
        Some(&mcp.token("carol")),
        None,
        call(2, "subject_from_context"),
    )
    .await;
    assert_eq!(reply.text(), "carol");
}

#[tokio::test]
async fn tool_taking_auth_info_gets_each_posts_caller_in_legacy_session_mode() {
    let mcp = serve(
        StreamableHttpServerConfig::default().with_sse_keep_alive(None),
        true,
    )
    .await;
    let alice = mcp.token("alice");
    let init = post(&mcp.url, Some(&alice), None, initialize()).await;
    assert_eq!(init.status, StatusCode::OK);
    let session = init.session.expect("legacy mode gives a session id");
    assert_eq!(
        post(&mcp.url, Some(&alice), Some(&session), initialized())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let reply = post(&mcp.url, Some(&alice), Some(&session), call(2, "subject")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "alice");
    // rmcp does not bind sessions to identities: the tool sees the caller of this POST.
    let reply = post(
        &mcp.url,
        Some(&mcp.token("bob")),
        Some(&session),
        call(3, "subject_from_context"),
    )
    .await;
    assert_eq!(reply.text(), "bob");
    // And a POST without a token never reaches the session.
    assert_eq!(
        post(&mcp.url, None, Some(&session), call(4, "subject"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn without_the_layer_the_tool_call_is_a_clear_json_rpc_error_not_a_panic() {
    let mcp = serve(stateless(), false).await;
    let reply = post(&mcp.url, None, None, call(7, "subject")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let message = reply.json();
    assert_eq!(message["id"], 7);
    assert_eq!(message["error"]["code"], -32603, "{message}");
    let text = message["error"]["message"]
        .as_str()
        .expect("an error message");
    assert!(text.contains("BearerAuthLayer"), "{text}");
    // The one message every adapter gives for a missing AuthInfo.
    assert_eq!(text, BearerAuthError::MissingAuthInfo.to_string());
    let granted = post(&mcp.url, None, None, call(10, "granted")).await.json();
    assert_eq!(granted["error"]["code"], -32603, "{granted}");
    assert_eq!(granted["error"]["message"], text);
    // The server is unharmed: other tools still answer, the context helper gives None.
    assert_eq!(
        post(&mcp.url, None, None, call(8, "ping")).await.text(),
        "pong"
    );
    assert_eq!(
        post(&mcp.url, None, None, call(9, "subject_from_context"))
            .await
            .text(),
        "<none>"
    );
}

#[tokio::test]
async fn granted_scopes_behind_the_bearer_layer_alone_is_a_json_rpc_error_naming_mcp_guard() {
    let mcp = serve(stateless(), true).await;
    let reply = post(
        &mcp.url,
        Some(&mcp.token("alice")),
        None,
        call(2, "granted"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let message = reply.json();
    assert_eq!(message["error"]["code"], -32603, "{message}");
    let text = message["error"]["message"].as_str().expect("a message");
    assert!(text.contains("mcp_guard()"), "{text}");
}

#[tokio::test]
async fn request_without_token_never_reaches_the_mcp_service() {
    let mcp = serve(stateless(), true).await;
    let reply = post(&mcp.url, None, None, call(2, "ping")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body.contains("\"error\":\"unauthorized\""),
        "{}",
        reply.body
    );
}
