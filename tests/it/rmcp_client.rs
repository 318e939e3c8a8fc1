//! The official Rust MCP SDK's client (`rmcp`, features `client`, `auth` and
//! `transport-streamable-http-client-reqwest`) against the whoami example app, over real HTTP
//! on loopback. No Node needed: the authorization server is the crate's `TestAuthServer`,
//! started by the example set-up when no issuer is configured; its authorize endpoint
//! auto-approves, so the test plays the browser by reading the redirect with reqwest and hands
//! the code to rmcp.
//!
//! The flow starts from a bare 401, as a real client's does: rmcp reads the challenge, fetches
//! the protected-resource metadata and the authorization server metadata, registers a client
//! dynamically, builds an authorization URL with PKCE S256 and the RFC 8707 `resource`,
//! exchanges the code, and then calls `whoami` with the token through its `AuthClient`.
#![cfg(feature = "test-util")]

use crate::common;

use std::error::Error as StdError;

use common::config::Config;
use common::setup::Setup;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::testing::{Endpoint, TestAuthServer};
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::ClientInitializeError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, InsufficientScopeError, StreamableHttpClientTransportConfig,
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use url::Url;

/// Where rmcp asks the authorization server to send the browser back. Nothing listens there:
/// the test reads the redirect instead of following it.
const REDIRECT_URI: &str = "http://localhost:8978/oauth/callback";
/// The scope the example server requires in these tests.
const REQUIRED_SCOPE: &str = "mcp:whoami";

/// The axum whoami app, served on a port chosen by the OS, with the built-in authorization
/// server. Stops when dropped.
struct Running {
    setup: Setup,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    async fn start(required_scopes: &[&str]) -> Running {
        let mut config = Config::new(0);
        config.required_scopes = required_scopes.iter().map(|s| (*s).to_owned()).collect();
        let listener = common::setup::bind(&config).await.expect("bind");
        let setup = Setup::new(config, listener.local_addr().expect("addr"))
            .await
            .expect("set-up");
        let app = common::apps::axum_app(&setup);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Running { setup, task }
    }

    fn dev(&self) -> &TestAuthServer {
        self.setup
            .dev_server
            .as_ref()
            .expect("the built-in authorization server runs")
    }
}

/// A bare MCP initialize without a token: the server's 401 and its challenge header.
async fn bare_initialize(url: &str) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "bare", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .expect("request");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII challenge").to_owned())
        .unwrap_or_default();
    (response.status(), challenge)
}

/// Plays the user agent: requests the authorization URL without following redirects and
/// returns where the authorization server sends the browser (the callback URL with the code).
async fn follow_authorization(authorization_url: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = browser
        .get(authorization_url)
        .send()
        .await
        .expect("authorization request");
    assert!(
        response.status().is_redirection(),
        "the authorize endpoint redirects, got {}",
        response.status()
    );
    let location = response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ASCII location")
        .to_owned();
    assert!(
        location.starts_with(REDIRECT_URI),
        "redirected to the client: {location}"
    );
    location
}

/// The identity `whoami` returns, called through `transport`.
async fn whoami_over<T, E, A>(transport: T) -> Value
where
    T: rmcp::transport::IntoTransport<rmcp::RoleClient, E, A>,
    E: StdError + Send + Sync + 'static,
{
    let client = ().serve(transport).await.expect("the MCP session starts");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(
        tools.iter().any(|tool| tool.name == "whoami"),
        "whoami is listed"
    );
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect("tools/call whoami");
    assert_ne!(result.is_error, Some(true), "whoami failed: {result:?}");
    let identity = result
        .structured_content
        .clone()
        .expect("whoami returns structured content");
    let _ = client.cancel().await;
    identity
}

/// Finds an error of type `T` in the source chain of the transport error that stopped the
/// session from starting.
fn find_in_chain<T: StdError + 'static>(error: &ClientInitializeError) -> Option<&T> {
    let ClientInitializeError::TransportError { error, .. } = error else {
        return None;
    };
    let mut current: Option<&(dyn StdError + 'static)> = Some(error.error.as_ref());
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

#[tokio::test]
async fn rmcp_oauth_client_discovers_from_a_bare_401_registers_authorizes_and_calls_whoami() {
    let running = Running::start(&[REQUIRED_SCOPE]).await;
    let setup = &running.setup;
    let dev = running.dev();

    // 1. The bare 401 every real client starts from.
    let (status, challenge) = bare_initialize(&setup.mcp_url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let parsed = BearerChallenge::parse(&challenge).expect("a Bearer challenge");
    assert_eq!(
        parsed.resource_metadata.as_deref(),
        Some(setup.metadata_url.as_str())
    );

    // 2. rmcp's discovery from that challenge: protected-resource metadata, AS metadata, then
    //    dynamic registration and the authorization URL.
    let mut oauth = OAuthState::new(setup.mcp_url.as_str(), None)
        .await
        .expect("rmcp OAuth state");
    oauth
        .start_authorization(
            AuthorizationRequest::new(REDIRECT_URI)
                .with_client_name("mcp-auth rmcp interop test")
                .with_challenge(challenge),
        )
        .await
        .expect("rmcp discovers the authorization server and registers a client");
    let authorization_url = oauth
        .get_authorization_url()
        .await
        .expect("an authorization URL");
    let url = Url::parse(&authorization_url).expect("absolute URL");
    assert!(
        authorization_url.starts_with(&format!("{}/", dev.issuer())),
        "the authorization endpoint is the test server's: {authorization_url}"
    );
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("resource").as_deref(), Some(setup.resource.as_str()));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("code_challenge").is_some());
    let scope = param("scope").unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == REQUIRED_SCOPE),
        "rmcp asks for the challenged scope: {scope}"
    );

    // 3. The user agent: the test server auto-approves and redirects with a code.
    let callback = follow_authorization(&authorization_url).await;
    oauth
        .handle_callback_url(&callback)
        .await
        .expect("rmcp exchanges the code for a token");
    let manager = oauth
        .into_authorization_manager()
        .expect("authorized state");

    // 4. whoami through rmcp's AuthClient, which adds the token to every request.
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(setup.mcp_url.as_str()),
    );
    let identity = whoami_over(transport).await;
    let user = dev.sample_user();
    assert_eq!(identity["sub"], user.subject.as_str());
    assert_eq!(identity["name"], json!(user.name));
    assert_eq!(identity["email"], json!(user.email));
    assert_eq!(identity["username"], json!(user.username));
    assert_eq!(identity["issuer"], dev.issuer());
    assert_eq!(identity["audience"], json!([setup.resource]));
    assert!(
        identity["scopes"]
            .as_array()
            .expect("scopes")
            .contains(&json!(REQUIRED_SCOPE)),
        "{identity}"
    );
    assert_eq!(
        dev.request_count(Endpoint::Registration),
        1,
        "one registration"
    );
    assert_eq!(
        dev.request_count(Endpoint::Authorize),
        1,
        "one authorization"
    );
    assert_eq!(dev.request_count(Endpoint::Token), 1, "one token request");
    let token_request = &dev.requests(Endpoint::Token)[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&token_request.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("grant_type"), Some("authorization_code"));
    assert_eq!(field("resource"), Some(setup.resource.as_str()));
    assert!(field("code_verifier").is_some(), "PKCE verifier sent");
    let client_id = identity["client_id"].as_str().expect("client_id");
    assert_ne!(
        client_id,
        dev.client_id(),
        "the token went to the dynamically registered client, not the pre-registered one"
    );
}

#[tokio::test]
async fn rmcp_client_reports_insufficient_scope_with_the_required_scope() {
    let running = Running::start(&[REQUIRED_SCOPE]).await;
    let setup = &running.setup;
    let token = running
        .dev()
        .token()
        .audience(setup.resource.clone())
        .scope("read")
        .sign();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(setup.mcp_url.as_str()).auth_header(token),
    );
    let error = ()
        .serve(transport)
        .await
        .expect_err("a token without the required scope cannot start a session");
    let insufficient = find_in_chain::<InsufficientScopeError>(&error)
        .unwrap_or_else(|| panic!("rmcp reports insufficient scope, got: {error:?}"));
    assert_eq!(
        error.auth_challenge(),
        Some(insufficient.www_authenticate_header.as_str())
    );
    assert_eq!(insufficient.get_required_scope(), Some(REQUIRED_SCOPE));
    let challenge = BearerChallenge::parse(&insufficient.www_authenticate_header)
        .expect("rmcp keeps our challenge");
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(setup.metadata_url.as_str())
    );
}

#[tokio::test]
async fn rmcp_client_reports_auth_required_for_a_token_of_another_resource() {
    let running = Running::start(&[]).await;
    let setup = &running.setup;
    let token = running
        .dev()
        .token()
        .audience("https://other.example/mcp")
        .scope("read")
        .sign();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(setup.mcp_url.as_str()).auth_header(token),
    );
    let error = ()
        .serve(transport)
        .await
        .expect_err("a token for another resource cannot start a session");
    let required = find_in_chain::<AuthRequiredError>(&error)
        .unwrap_or_else(|| panic!("rmcp reports that authorization is required, got: {error:?}"));
    assert!(error.is_authorization_required());
    let challenge =
        BearerChallenge::parse(&required.www_authenticate_header).expect("a Bearer challenge");
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(setup.metadata_url.as_str())
    );
}

#[tokio::test]
async fn rmcp_client_in_discover_mode_speaks_2026_07_28_through_the_guard() {
    let running = Running::start(&[REQUIRED_SCOPE]).await;
    let setup = &running.setup;
    let discover = json!({"jsonrpc": "2.0", "id": "d", "method": "server/discover",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bare", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});

    // server/discover is no exception to "authorization MUST be included in every HTTP
    // request": without a token, the same 401 challenge as any other request.
    let bare = reqwest::Client::new()
        .post(&setup.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .body(discover.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let challenge = bare
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(BearerChallenge::parse)
        .expect("a challenge")
        .expect("a Bearer challenge");
    assert_eq!(challenge.error, None);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(setup.metadata_url.as_str())
    );
    assert_eq!(challenge.scope, [REQUIRED_SCOPE]);

    // With a token, rmcp's discover lifecycle: server/discover, then tools/list and
    // tools/call with per-request _meta and the Mcp-Method / Mcp-Name headers, which the
    // guard requires for 2026-07-28 and checks against the body.
    let token = running
        .dev()
        .token()
        .subject("alice")
        .audience(setup.resource.clone())
        .scope(REQUIRED_SCOPE)
        .sign();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(setup.mcp_url.as_str()).auth_header(token),
    );
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover succeeds with a token");
    let negotiated = client.peer_info().map(|info| info.protocol_version.clone());
    assert_eq!(negotiated, Some(ProtocolVersion::V_2026_07_28));
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect("tools/call whoami under 2026-07-28");
    assert_ne!(result.is_error, Some(true), "whoami failed: {result:?}");
    let identity = result.structured_content.clone().expect("identity");
    assert_eq!(identity["sub"], "alice");
    // The per-tool policy decides from the headers: `secret` needs `admin`.
    let refused = client
        .call_tool(CallToolRequestParams::new("secret"))
        .await
        .expect_err("secret needs admin");
    assert!(
        format!("{refused:?}").contains("insufficient_scope")
            || format!("{refused:?}").contains("403"),
        "{refused:?}"
    );
    let _ = client.cancel().await;
}
