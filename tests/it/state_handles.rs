//! State handles bound to the caller, over real HTTP: an rmcp server behind the whole MCP guard
//! (stateless, the 2026-07-28 model) whose `open_cart` tool mints a handle with
//! `CallerBoundState` and whose `view_cart` tool takes it back as an argument. A handle opens
//! for the principal it was sealed for, and for nobody else.
#![cfg(feature = "test-util")]

use mcp_auth::AuthInfo;
use mcp_auth::integrations::rmcp::CallerBoundState;
use mcp_auth::verify::JwtVerifier;
use reqwest::StatusCode;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, RequestStateCodec};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tower::Layer;

use crate::support::mcp_client::post;
use crate::support::mcp_server::{McpServer, stateless, tool_call};

/// The tool the handle is minted for: part of its binding.
const PURPOSE: &[u8] = b"carts";

#[derive(Clone)]
struct Carts {
    handles: CallerBoundState,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct CartHandle {
    /// The handle `open_cart` returned.
    handle: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cart {
    owner: String,
    items: Vec<String>,
}

#[tool_router]
impl Carts {
    /// Mints a handle for a new cart of the caller.
    #[tool(description = "Opens a cart; returns its handle")]
    async fn open_cart(&self, auth: AuthInfo) -> Result<CallToolResult, ErrorData> {
        let cart = Cart {
            owner: auth.subject.clone().unwrap_or_default(),
            items: vec!["book".into()],
        };
        let handle = self.handles.seal_json_for(&auth, PURPOSE, &cart)?;
        Ok(CallToolResult::success(vec![ContentBlock::text(handle)]))
    }

    /// Shows the cart behind a handle, if the handle is the caller's.
    #[tool(description = "Shows a cart")]
    async fn view_cart(
        &self,
        auth: AuthInfo,
        Parameters(CartHandle { handle }): Parameters<CartHandle>,
    ) -> Result<CallToolResult, ErrorData> {
        let cart: Cart = self.handles.open_json_for(&auth, PURPOSE, &handle)?;
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{}: {}",
            cart.owner,
            cart.items.join(",")
        ))]))
    }
}

#[tool_handler]
impl ServerHandler for Carts {}

async fn serve() -> McpServer {
    let codec = RequestStateCodec::try_new(b"integration-test-key-of-32-bytes!!".to_vec())
        .expect("a 32-byte key");
    let carts = Carts {
        handles: CallerBoundState::new(codec),
    };
    McpServer::start(move |auth, resource| {
        let verifier = JwtVerifier::builder()
            .authorization_server(auth.trusted_servers(resource).unwrap()[0].clone())
            .build()
            .expect("verifier");
        let guard = auth.bearer_auth(resource, verifier).build().expect("guard");
        let mcp: StreamableHttpService<Carts, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(carts.clone()), Default::default(), stateless());
        axum::Router::new().route_service("/mcp", guard.mcp_guard().layer().layer(mcp))
    })
    .await
}

async fn open_cart(mcp: &McpServer, token: &str) -> String {
    let reply = post(
        &mcp.url,
        Some(token),
        None,
        tool_call(1, "open_cart", json!({})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.text()
}

async fn view_cart(mcp: &McpServer, token: &str, handle: &str) -> Value {
    let reply = post(
        &mcp.url,
        Some(token),
        None,
        tool_call(2, "view_cart", json!({ "handle": handle })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

#[tokio::test]
async fn a_handle_works_for_its_owner_and_is_refused_to_another_principal() {
    let mcp = serve().await;
    let alice = mcp.token("alice");
    let bob = mcp.token("bob");
    let handle = open_cart(&mcp, &alice).await;

    let seen = view_cart(&mcp, &alice, &handle).await;
    assert_eq!(
        seen["result"]["content"][0]["text"], "alice: book",
        "{seen}"
    );

    // Bob holds Alice's handle: a JSON-RPC invalid-params error, and nothing of her cart.
    let refused = view_cart(&mcp, &bob, &handle).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not valid for this caller"), "{refused}");
    assert!(!refused.to_string().contains("book"), "{refused}");

    // A new token for Alice (same issuer, subject and client) still opens it.
    let seen = view_cart(&mcp, &mcp.token("alice"), &handle).await;
    assert_eq!(seen["result"]["content"][0]["text"], "alice: book");
}

#[tokio::test]
async fn a_handle_is_no_credential_and_an_altered_one_is_refused() {
    let mcp = serve().await;
    let alice = mcp.token("alice");
    let handle = open_cart(&mcp, &alice).await;

    // Without a token the handle gets nowhere: the guard's 401 comes first.
    let reply = post(
        &mcp.url,
        None,
        None,
        tool_call(2, "view_cart", json!({ "handle": handle })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Alice's own handle, altered: refused like a stranger's.
    let mut altered: Vec<char> = handle.chars().collect();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let refused = view_cart(&mcp, &alice, &altered).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
}
