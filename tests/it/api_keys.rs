//! API keys beside OAuth over real HTTP: one guard, a `PrefixRouter` sending `mcpk_` tokens
//! to the `ApiKeyVerifier` and every other token to the JWT verifier of the test
//! authorization server; and the whoami example with `MCP_AUTH_API_KEYS`.
#![cfg(feature = "test-util")]

use crate::common;
use crate::support::hostile::{HANG, counting};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::any;
use common::config::{Command, Config};
use common::setup::Setup;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::{ApiKey, ApiKeyEntry, ApiKeyVerifier, JwtVerifier, PrefixRouter};
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The CI key: `read` and `files:write`.
const CI_KEY: &str = "mcpk_ci-secret-0123456789abcdefghijklmnopqrstuv";
/// The dashboard key: `files:write` only, so it lacks the required `read`.
const DASH_KEY: &str = "mcpk_dash-secret-0123456789abcdefghijklmnopqrstu";

/// `/mcp` behind a guard requiring `read`, answering with the verified `AuthInfo` as JSON.
struct Fixture {
    server: TestAuthServer,
    resource: String,
    metadata_url: String,
    /// Calls of the OAuth (JWT) verifier.
    oauth_calls: Arc<AtomicUsize>,
    /// Calls of the API-key verifier.
    key_calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Answer {
    status: u16,
    challenge: Option<BearerChallenge>,
    body: Value,
}

impl Fixture {
    async fn start() -> Fixture {
        let server = TestAuthServer::start().await.expect("test AS");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let resource = format!("{base}/mcp");

        let issuer = AuthServer::discover(server.issuer(), AuthServerType::Oidc);
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.as_str()).authorization_server(issuer.clone()),
            )
            .build()
            .expect("configuration");
        let oauth_calls = Arc::new(AtomicUsize::new(0));
        let key_calls = Arc::new(AtomicUsize::new(0));
        let jwt = JwtVerifier::builder()
            .authorization_server(issuer)
            .build()
            .expect("JWT verifier");
        let keys = ApiKeyVerifier::builder()
            .issuer(resource.clone())
            .key(ApiKeyEntry::new("ci", ApiKey::hash_of(CI_KEY)).scopes(["read", "files:write"]))
            .keys_from_str(&format!(
                "dashboard:{}:files:write",
                ApiKey::hash_of(DASH_KEY)
            ))
            .build()
            .expect("API-key verifier");
        let router = PrefixRouter::builder(counting(jwt, Arc::clone(&oauth_calls)))
            .route(
                ApiKey::DEFAULT_PREFIX,
                counting(keys, Arc::clone(&key_calls)),
            )
            .build()
            .expect("router");
        let guard = auth
            .bearer_auth(&resource, router)
            .required_scopes(["read"])
            .build()
            .expect("guard");

        let handler = |axum::Extension(info): axum::Extension<AuthInfo>| async move {
            axum::Json(json!({
                "sub": info.subject,
                "issuer": info.issuer,
                "scopes": info.scopes,
                "api_key": info.credential.api_key_name(),
                "is_api_key": info.credential.is_api_key(),
            }))
        };
        let app = axum::Router::new()
            .route("/mcp", any(handler))
            .route_layer(guard.layer())
            .fallback_service(auth.metadata_service());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fixture {
            server,
            metadata_url: format!("{base}/.well-known/oauth-protected-resource/mcp"),
            resource,
            oauth_calls,
            key_calls,
            task,
        }
    }

    async fn post(&self, token: &str) -> Answer {
        let request = reqwest::Client::new()
            .post(&self.resource)
            .header("authorization", format!("Bearer {token}"))
            .send();
        let response = tokio::time::timeout(HANG, request)
            .await
            .expect("the request hung")
            .expect("the request failed");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| BearerChallenge::parse(v.to_str().expect("ASCII")).expect("a challenge"));
        let body = response.json().await.expect("a JSON body");
        Answer {
            status,
            challenge,
            body,
        }
    }

    fn oauth_calls(&self) -> usize {
        self.oauth_calls.load(Ordering::SeqCst)
    }

    fn key_calls(&self) -> usize {
        self.key_calls.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_known_key_gets_200_as_an_api_key_with_its_scopes() {
    let fx = Fixture::start().await;
    let answer = fx.post(CI_KEY).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["is_api_key"], true);
    assert_eq!(answer.body["api_key"], "ci");
    assert_eq!(answer.body["sub"], "ci");
    assert_eq!(answer.body["scopes"], json!(["read", "files:write"]));
    // No trusted authorization server issued it, and it names no audience: the guard's
    // issuer and audience checks do not apply to API keys.
    assert_eq!(answer.body["issuer"], fx.resource.as_str());
    assert_eq!((fx.key_calls(), fx.oauth_calls()), (1, 0));
}

#[tokio::test]
async fn a_wrong_key_with_the_prefix_gets_401_and_never_reaches_the_oauth_verifier() {
    let fx = Fixture::start().await;
    for wrong in [
        "mcpk_not-a-configured-key",
        &CI_KEY[..CI_KEY.len() - 1],
        &format!("{CI_KEY}x"),
        "mcpk_",
    ] {
        let answer = fx.post(wrong).await;
        assert_eq!(answer.status, 401, "{wrong}: {}", answer.body);
        let challenge = answer.challenge.expect("a challenge");
        assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some(fx.metadata_url.as_str())
        );
        assert_eq!(answer.body["error"], "invalid_token");
        assert!(
            !answer.body.to_string().contains("mcpk_"),
            "{}",
            answer.body
        );
    }
    assert_eq!(fx.key_calls(), 4);
    assert_eq!(fx.oauth_calls(), 0, "a key reached the OAuth verifier");
}

#[tokio::test]
async fn an_oauth_jwt_gets_200_as_oauth_and_never_reaches_the_key_verifier() {
    let fx = Fixture::start().await;
    let token = fx
        .server
        .token()
        .audience(fx.resource.clone())
        .scope("read")
        .sign();
    let answer = fx.post(&token).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["is_api_key"], false);
    assert_eq!(answer.body["api_key"], Value::Null);
    assert_eq!(answer.body["issuer"], fx.server.issuer());
    assert_eq!((fx.key_calls(), fx.oauth_calls()), (0, 1));
}

#[tokio::test]
async fn oauth_tokens_keep_their_issuer_and_audience_checks() {
    let fx = Fixture::start().await;
    let other_audience = fx
        .server
        .token()
        .audience("https://other.example.com/mcp")
        .scope("read")
        .sign();
    let answer = fx.post(&other_audience).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        answer.challenge.expect("a challenge").error.as_deref(),
        Some("invalid_token")
    );
    // An opaque token that is neither a key nor a JWT goes to the OAuth verifier only.
    let answer = fx.post("opaque-token-value").await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!((fx.key_calls(), fx.oauth_calls()), (0, 2));
}

#[tokio::test]
async fn a_key_without_a_required_scope_gets_403_insufficient_scope() {
    let fx = Fixture::start().await;
    let answer = fx.post(DASH_KEY).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let challenge = answer.challenge.expect("a challenge");
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(fx.metadata_url.as_str())
    );
    assert_eq!(answer.body["error"], "insufficient_scope");
    assert_eq!(answer.body["missing_scopes"], json!(["read"]));
}

// ---------------------------------------------------------------------------------------------
// The whoami example with MCP_AUTH_API_KEYS

fn config(env: &[(&str, &str)]) -> Result<Config, common::config::ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Config::parse(0, |name| env.get(name).cloned(), Vec::new())? {
        Command::Run(config) => Ok(config),
        Command::Help => panic!("no --help was given"),
    }
}

/// POSTs a JSON-RPC message to the whoami app.
async fn rpc(url: &str, token: &str, body: &Value) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII").to_owned());
    (status, challenge, response.text().await.expect("body"))
}

/// initialize, initialized, then `tools/call whoami`: the identity, or the refusal's status.
async fn whoami(url: &str, token: &str) -> Result<Value, (u16, Option<String>)> {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let (status, challenge, body) = rpc(url, token, &init).await;
    if status != 200 {
        return Err((status, challenge));
    }
    assert!(body.contains("serverInfo"), "{body}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(rpc(url, token, &initialized).await.0, 202);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let (status, _, body) = rpc(url, token, &call).await;
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).expect("a JSON answer");
    Ok(reply["result"]["structuredContent"].clone())
}

#[tokio::test]
async fn whoami_accepts_mcp_auth_api_keys_beside_oauth_tokens() {
    let keys = format!(
        "ci:{}:read;reader:{}",
        ApiKey::hash_of(CI_KEY),
        ApiKey::hash_of(DASH_KEY)
    );
    let config = config(&[
        ("MCP_AUTH_API_KEYS", &keys),
        ("MCP_AUTH_REQUIRED_SCOPES", "read"),
    ])
    .expect("a valid configuration");
    let listener = common::setup::bind(&config).await.expect("bind");
    let setup = Setup::new(config, listener.local_addr().expect("address"))
        .await
        .expect("set-up");
    let app = common::apps::axum_app(&setup);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let url = setup.mcp_url.clone();

    let identity = whoami(&url, CI_KEY).await.expect("the key is accepted");
    assert_eq!(identity["credential"], "api_key");
    assert_eq!(identity["api_key"], "ci");
    assert_eq!(identity["sub"], "ci");
    assert_eq!(identity["scopes"], json!(["read"]));
    assert_eq!(identity["issuer"], setup.resource.as_str());

    let token = setup.sample_token().expect("the built-in server's token");
    let identity = whoami(&url, &token)
        .await
        .expect("the OAuth token is accepted");
    assert_eq!(identity["credential"], "oauth");
    assert_eq!(identity["sub"], "alice");

    let (status, challenge) = whoami(&url, "mcpk_unknown").await.expect_err("refused");
    assert_eq!(status, 401);
    assert!(
        challenge
            .expect("a challenge")
            .contains("error=\"invalid_token\"")
    );
    // The second key lacks the required `read`.
    let (status, challenge) = whoami(&url, DASH_KEY).await.expect_err("refused");
    assert_eq!(status, 403);
    assert!(
        challenge
            .expect("a challenge")
            .contains("error=\"insufficient_scope\"")
    );
    task.abort();
}

#[test]
fn whoami_refuses_a_malformed_mcp_auth_api_keys_at_start() {
    for bad in [
        CI_KEY.to_owned(),                                // the key itself, not its hash
        format!("ci:sha256:{}", "0".repeat(63)),          // a short hash
        format!("a:{h};a:{h}", h = ApiKey::hash_of("x")), // a duplicate name
        format!("a:{}:bad\"scope", ApiKey::hash_of("x")), // an invalid scope
    ] {
        let error = config(&[("MCP_AUTH_API_KEYS", &bad)]).expect_err(&bad);
        assert_eq!(error.variable, "MCP_AUTH_API_KEYS", "{bad}");
        assert!(!error.problem.contains(CI_KEY), "{}", error.problem);
    }
    assert_eq!(config(&[]).expect("defaults").api_keys, None);
}
