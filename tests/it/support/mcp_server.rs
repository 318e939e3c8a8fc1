//! A guarded MCP server for the rmcp tests: the test authorization server, an `McpAuth`
//! trusting it for `http://localhost:<port>/mcp` (port chosen by the OS), and an axum app the
//! test builds from them, served until the value is dropped.

use std::net::SocketAddr;

use mcp_auth::testing::TestAuthServer;
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A running server; dropping it stops the server (the authorization server stops with it).
pub struct McpServer {
    /// The MCP endpoint, which is also the resource identifier (the tokens' audience).
    pub url: String,
    /// The resource's RFC 9728 metadata URL.
    pub metadata_url: String,
    /// The trusted authorization server.
    pub issuer: TestAuthServer,
    task: JoinHandle<()>,
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl McpServer {
    /// Starts the authorization server, binds a loopback port, and serves `app(&auth, resource)`,
    /// where `auth` trusts that server (discovered on first use, RFC 8414) for `resource`.
    pub async fn start(app: impl FnOnce(&McpAuth, &str) -> axum::Router) -> Self {
        let issuer = TestAuthServer::start().await.expect("authorization server");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let resource = format!("http://localhost:{port}/mcp");
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.clone()).authorization_server(
                    AuthServer::discover(issuer.issuer(), AuthServerType::OAuth),
                ),
            )
            .build()
            .expect("McpAuth");
        let app = app(&auth, &resource);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            metadata_url: format!(
                "http://localhost:{port}/.well-known/oauth-protected-resource/mcp"
            ),
            url: resource,
            issuer,
            task,
        }
    }

    /// A token for `subject` for this resource, with no scope.
    pub fn token(&self, subject: &str) -> String {
        self.issuer
            .token()
            .subject(subject)
            .audience(self.url.clone())
            .sign()
    }

    /// A token for `subject` for this resource, with `scope` (space-separated).
    pub fn scoped_token(&self, subject: &str, scope: &str) -> String {
        self.issuer
            .token()
            .subject(subject)
            .audience(self.url.clone())
            .scope(scope)
            .sign()
    }
}

/// rmcp without sessions (the MCP 2026-07-28 model), answering with plain JSON.
pub fn stateless() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
}

/// rmcp with legacy sessions (`Mcp-Session-Id`), without SSE keep-alives.
pub fn sessions() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default().with_sse_keep_alive(None)
}

/// A `tools/call` request for `tool` with `arguments`.
pub fn tool_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}
