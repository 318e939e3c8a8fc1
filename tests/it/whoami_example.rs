//! The whoami examples' contract, over real HTTP on loopback.
//!
//! Most tests build the examples' apps through their shared module (`examples/common`) and
//! serve them on a port chosen by the OS, for both web stacks (axum: `examples/whoami.rs`,
//! hyper: `examples/whoami_hyper.rs`). The `binary_*` tests run the compiled example binaries
//! with `PORT=0`, read what they print, and execute the printed curl lines as printed.
#![cfg(feature = "test-util")]

use crate::common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::config::{Command, Config, VerifierKind};
use common::setup::Setup;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::integrations::hyper::Server;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::task::JoinHandle;

const ACCEPT: &str = "application/json, text/event-stream";

// ---------------------------------------------------------------------------------------------
// Running the apps

#[derive(Clone, Copy, Debug)]
enum Stack {
    Axum,
    Hyper,
}

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
    fn dev(&self) -> &TestAuthServer {
        self.setup
            .dev_server
            .as_ref()
            .expect("the built-in authorization server runs")
    }

    /// A token from the built-in server for this resource, with these scopes.
    fn token(&self, scope: &str) -> String {
        self.dev()
            .token()
            .audience(self.setup.resource.clone())
            .scope(scope)
            .claim("name", "Alice Example")
            .claim("email", "alice@example.com")
            .claim("username", "alice")
            .sign()
    }
}

async fn start(stack: Stack, config: Config) -> Running {
    start_configured(stack, config, |_| {}).await
}

/// [`start`], with `configure` applied to the set-up before the app is built.
async fn start_configured(
    stack: Stack,
    mut config: Config,
    configure: impl FnOnce(&mut Setup),
) -> Running {
    config.port = 0;
    let listener = common::setup::bind(&config).await.expect("bind");
    let mut setup = Setup::new(config, listener.local_addr().expect("addr"))
        .await
        .expect("set-up");
    configure(&mut setup);
    let task = match stack {
        Stack::Axum => {
            let app = common::apps::axum_app(&setup);
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            })
        }
        Stack::Hyper => {
            let app = common::apps::hyper_app(&setup);
            tokio::spawn(async move {
                let _ = Server::new(listener, app).serve().await;
            })
        }
    };
    Running { setup, task }
}

async fn start_default(stack: Stack) -> Running {
    start(stack, Config::new(0)).await
}

// ---------------------------------------------------------------------------------------------
// MCP over HTTP

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    /// The JSON body, or the last JSON-RPC message of an SSE body.
    fn json(&self) -> Value {
        if let Ok(value) = serde_json::from_str(&self.body) {
            return value;
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .next_back()
            .unwrap_or_else(|| panic!("no JSON in the body: {}", self.body))
    }

    fn challenge(&self) -> BearerChallenge {
        let value = self
            .headers
            .get("www-authenticate")
            .expect("a WWW-Authenticate header");
        BearerChallenge::parse(value.to_str().expect("ASCII")).expect("a Bearer challenge")
    }
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

fn whoami_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}})
}

/// initialize, notifications/initialized, tools/call whoami; the identity returned.
async fn whoami(url: &str, token: &str) -> Value {
    let init = post(url, Some(token), &initialize_body()).await;
    assert_eq!(init.status, StatusCode::OK, "initialize: {}", init.body);
    assert_eq!(init.json()["result"]["protocolVersion"], "2025-06-18");
    let initialized = post(
        url,
        Some(token),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(initialized.status, StatusCode::ACCEPTED);
    let call = post(url, Some(token), &whoami_body()).await;
    assert_eq!(call.status, StatusCode::OK, "tools/call: {}", call.body);
    let result = call.json();
    assert_eq!(result["result"]["isError"], false, "{result}");
    result["result"]["structuredContent"].clone()
}

// ---------------------------------------------------------------------------------------------
// The contract, for both stacks

macro_rules! for_both_stacks {
    ($($name:ident),* $(,)?) => {
        mod axum_stack {
            $(#[tokio::test] async fn $name() { super::$name(super::Stack::Axum).await; })*
        }
        mod hyper_stack {
            $(#[tokio::test] async fn $name() { super::$name(super::Stack::Hyper).await; })*
        }
    };
}

for_both_stacks!(
    request_without_token_gets_401_challenge_with_resource_metadata,
    metadata_resource_equals_the_url_called,
    minted_token_initializes_and_whoami_returns_the_claims,
    wrong_audience_token_gets_401_invalid_token,
    missing_scope_gets_403_insufficient_scope,
    userinfo_verifier_returns_the_userinfo_claims,
    introspection_verifier_accepts_an_introspected_token,
    full_dev_flow_register_authorize_token_then_whoami,
    other_paths_are_not_found,
    secret_without_admin_gets_403_step_up_challenge_and_works_with_admin,
    secret_step_up_through_the_dev_authorization_flow,
    sessions_are_bound_to_the_caller_that_created_them,
    browser_clients_get_preflights_answered_and_can_read_the_challenge,
);

async fn request_without_token_gets_401_challenge_with_resource_metadata(stack: Stack) {
    let app = start_default(stack).await;
    let reply = post(&app.setup.mcp_url, None, &initialize_body()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.challenge();
    assert_eq!(
        challenge.error, None,
        "no error code without credentials (RFC 6750 §3.1)"
    );
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(app.setup.metadata_url.as_str())
    );
    assert_eq!(reply.json()["error"], "unauthorized");
}

async fn browser_clients_get_preflights_answered_and_can_read_the_challenge(stack: Stack) {
    let app = start_default(stack).await;
    assert_browser_cors(&app.setup.mcp_url, &app.setup.metadata_url).await;
}

/// What a web page on another origin needs: preflights answered without a token, the 401's
/// challenge exposed, and a single `Access-Control-Allow-Origin` on the metadata.
async fn assert_browser_cors(mcp_url: &str, metadata_url: &str) {
    let client = reqwest::Client::new();
    let origin = "https://inspector.example";
    let values = |headers: &HeaderMap, name: &str| -> String {
        headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().expect("ASCII"))
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase()
    };

    // The preflight carries no token: the CORS layer in front of the guard answers it.
    let preflight = client
        .request(reqwest::Method::OPTIONS, mcp_url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,mcp-protocol-version",
        )
        .send()
        .await
        .expect("preflight");
    assert!(
        preflight.status().is_success(),
        "preflight: {}",
        preflight.status()
    );
    assert_eq!(
        values(preflight.headers(), "access-control-allow-origin"),
        "*"
    );
    let allowed = values(preflight.headers(), "access-control-allow-headers");
    for header in ["authorization", "content-type", "mcp-protocol-version"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    // The 401 is readable from the page: its challenge is exposed.
    let refused = client
        .post(mcp_url)
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(initialize_body().to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(
        values(refused.headers(), "access-control-allow-origin"),
        "*"
    );
    let exposed = values(refused.headers(), "access-control-expose-headers");
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    assert!(exposed.contains("mcp-session-id"), "{exposed}");

    // The metadata carries one `Access-Control-Allow-Origin`, not one per layer.
    let metadata = client
        .get(metadata_url)
        .header("origin", origin)
        .send()
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), StatusCode::OK);
    assert_eq!(
        values(metadata.headers(), "access-control-allow-origin"),
        "*"
    );
}

async fn metadata_resource_equals_the_url_called(stack: Stack) {
    let app = start_default(stack).await;
    let url_called = format!("http://localhost:{}/mcp", app.setup.local_addr.port());
    let challenge = post(&url_called, None, &initialize_body())
        .await
        .challenge();
    let metadata_url = challenge.resource_metadata.expect("resource_metadata");
    assert_eq!(
        metadata_url,
        format!(
            "http://localhost:{}/.well-known/oauth-protected-resource/mcp",
            app.setup.local_addr.port()
        )
    );
    let response = reqwest::get(&metadata_url).await.expect("metadata");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let metadata: Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
    assert_eq!(metadata["resource"], url_called);
    assert_eq!(
        metadata["authorization_servers"],
        json!([app.dev().issuer()])
    );
}

async fn minted_token_initializes_and_whoami_returns_the_claims(stack: Stack) {
    let app = start_default(stack).await;
    let token = app
        .setup
        .sample_token()
        .expect("a sample token from the built-in server");
    let identity = whoami(&app.setup.mcp_url, &token).await;
    assert_eq!(identity["sub"], "alice");
    assert_eq!(identity["issuer"], app.dev().issuer());
    assert_eq!(identity["client_id"], "test-client");
    assert_eq!(identity["scopes"], json!(["read", "write"]));
    assert_eq!(identity["audience"], json!([app.setup.resource]));
    assert_eq!(identity["name"], "Alice Example");
    assert_eq!(identity["email"], "alice@example.com");
    assert_eq!(identity["username"], "alice");
    assert!(
        identity.get("iss").is_none() && identity.get("jti").is_none(),
        "{identity}"
    );
}

async fn wrong_audience_token_gets_401_invalid_token(stack: Stack) {
    let app = start_default(stack).await;
    let token = app
        .dev()
        .token()
        .audience("http://localhost:1/another-server")
        .scope("read")
        .sign();
    let reply = post(&app.setup.mcp_url, Some(&token), &initialize_body()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.challenge();
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(app.setup.metadata_url.as_str())
    );
    assert_eq!(reply.json()["cause"]["code"], "invalid_audience");
}

async fn missing_scope_gets_403_insufficient_scope(stack: Stack) {
    let mut config = Config::new(0);
    config.required_scopes = vec!["read".into()];
    let app = start(stack, config).await;
    let reply = post(
        &app.setup.mcp_url,
        Some(&app.token("write")),
        &initialize_body(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let challenge = reply.challenge();
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(app.setup.metadata_url.as_str())
    );
    assert_eq!(reply.json()["missing_scopes"], json!(["read"]));
    // With the scope, the same call goes through.
    let identity = whoami(&app.setup.mcp_url, &app.token("read")).await;
    assert_eq!(identity["scopes"], json!(["read"]));
}

async fn userinfo_verifier_returns_the_userinfo_claims(stack: Stack) {
    let mut config = Config::new(0);
    config.verifier = VerifierKind::Userinfo;
    let app = start(stack, config).await;
    // A bare token: the identity claims come from the userinfo answer.
    let token = app
        .dev()
        .token()
        .audience(app.setup.resource.clone())
        .sign();
    let identity = whoami(&app.setup.mcp_url, &token).await;
    assert_eq!(identity["sub"], "alice");
    assert_eq!(identity["name"], "Alice Example");
    assert_eq!(identity["email"], "alice@example.com");
}

async fn introspection_verifier_accepts_an_introspected_token(stack: Stack) {
    let mut config = Config::new(0);
    config.verifier = VerifierKind::Introspection;
    let app = start(stack, config).await;
    let opaque = app
        .dev()
        .issue_opaque_token(json!({"aud": app.setup.resource, "scope": "read"}));
    let identity = whoami(&app.setup.mcp_url, &opaque).await;
    assert_eq!(identity["sub"], "alice");
    assert_eq!(identity["scopes"], json!(["read"]));
    app.dev().revoke(&opaque);
    let other = app
        .dev()
        .issue_opaque_token(json!({"aud": "http://localhost:1/elsewhere"}));
    assert_eq!(
        post(&app.setup.mcp_url, Some(&other), &initialize_body())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

async fn other_paths_are_not_found(stack: Stack) {
    let app = start_default(stack).await;
    let url = format!("http://localhost:{}/not-mcp", app.setup.local_addr.port());
    let token = app.setup.sample_token().expect("token");
    assert_eq!(
        post(&url, Some(&token), &initialize_body()).await.status,
        StatusCode::NOT_FOUND
    );
}

/// What an MCP client does from a bare 401: discovery, registration, authorization code with
/// PKCE (S256) and the resource indicator, token, then the call.
fn secret_body(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "secret", "arguments": {}}})
}

async fn secret_without_admin_gets_403_step_up_challenge_and_works_with_admin(stack: Stack) {
    let mut config = Config::new(0);
    config.required_scopes = vec!["read".into()];
    let app = start(stack, config).await;
    let url = &app.setup.mcp_url;

    let refused = post(url, Some(&app.token("read write")), &secret_body(1)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let challenge = refused.challenge();
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    // The required scope, then the tool's: a client asking for exactly these loses nothing.
    assert_eq!(challenge.scope, ["read", "admin"]);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(app.setup.metadata_url.as_str())
    );
    assert_eq!(refused.json()["missing_scopes"], json!(["admin"]));
    // whoami needs no more than the required scope.
    assert_eq!(whoami(url, &app.token("read")).await["sub"], "alice");

    let reply = post(
        url,
        Some(&app.token(&challenge.scope.join(" "))),
        &secret_body(2),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let result = reply.json();
    assert_eq!(result["result"]["isError"], false, "{result}");
    assert_eq!(result["result"]["structuredContent"]["sub"], "alice");
    assert_eq!(
        result["result"]["structuredContent"]["scopes"],
        json!(["read", "admin"])
    );
}

/// What a spec-following MCP client does on the 403: authorize again with the challenged
/// scope (here through the built-in server's auto-approving flow), then retry.
async fn secret_step_up_through_the_dev_authorization_flow(stack: Stack) {
    let app = start_default(stack).await;
    let mcp_url = app.setup.mcp_url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let as_metadata: Value = serde_json::from_str(
        &http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                app.dev().issuer()
            ))
            .send()
            .await
            .expect("AS metadata")
            .text()
            .await
            .expect("body"),
    )
    .expect("JSON");
    let endpoint = |name: &str| as_metadata[name].as_str().expect(name).to_owned();
    let redirect_uri = "http://127.0.0.1:33418/callback";
    let client: Value = serde_json::from_str(
        &http
            .post(endpoint("registration_endpoint"))
            .header("content-type", "application/json")
            .body(
                json!({"client_name": "step-up test", "redirect_uris": [redirect_uri],
                       "token_endpoint_auth_method": "none"})
                .to_string(),
            )
            .send()
            .await
            .expect("register")
            .text()
            .await
            .expect("body"),
    )
    .expect("JSON");
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();
    let verifier = "step-up-verifier-step-up-verifier-step-up-verifier-0123456789";
    let challenge_s256 = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    // Authorization code + PKCE + resource for `scope`; the access token.
    let authorize = |scope: String| {
        let http = http.clone();
        let (authorize, token) = (
            endpoint("authorization_endpoint"),
            endpoint("token_endpoint"),
        );
        let (client_id, mcp_url, challenge_s256) =
            (client_id.clone(), mcp_url.clone(), challenge_s256.clone());
        async move {
            let mut url = reqwest::Url::parse(&authorize).expect("URL");
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_challenge", &challenge_s256)
                .append_pair("code_challenge_method", "S256")
                .append_pair("scope", &scope)
                .append_pair("resource", &mcp_url);
            let redirect = http.get(url).send().await.expect("authorize");
            let location =
                reqwest::Url::parse(redirect.headers()["location"].to_str().expect("ASCII"))
                    .expect("URL");
            let code = location
                .query_pairs()
                .find(|(k, _)| k == "code")
                .expect("a code")
                .1
                .into_owned();
            let form = [
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("client_id", &client_id),
                ("code_verifier", verifier),
                ("resource", &mcp_url),
            ];
            let tokens: Value = serde_json::from_str(
                &http
                    .post(token)
                    .form(&form)
                    .send()
                    .await
                    .expect("token")
                    .text()
                    .await
                    .expect("body"),
            )
            .expect("JSON");
            tokens["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned()
        }
    };

    let first = authorize("read".to_owned()).await;
    assert_eq!(whoami(&mcp_url, &first).await["scopes"], json!(["read"]));
    let refused = post(&mcp_url, Some(&first), &secret_body(3)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let scope = refused.challenge().scope.join(" ");
    assert_eq!(scope, "admin");

    let stepped_up = authorize(scope).await;
    let reply = post(&mcp_url, Some(&stepped_up), &secret_body(4)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["result"]["structuredContent"]["sub"], "alice");
}

async fn sessions_are_bound_to_the_caller_that_created_them(stack: Stack) {
    let app = start_configured(stack, Config::new(0), |setup| setup.sessions = true).await;
    let url = &app.setup.mcp_url;
    let alice = app.token("read");
    let bob = app
        .dev()
        .token()
        .subject("bob")
        .audience(app.setup.resource.clone())
        .scope("read")
        .sign();
    let send = |token: Option<String>, session: Option<String>, body: Value| async move {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.expect("request");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    };

    let init = send(Some(alice.clone()), None, initialize_body()).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.body);
    let session = init.headers["mcp-session-id"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let ack = send(Some(alice.clone()), Some(session.clone()), initialized).await;
    assert_eq!(ack.status, StatusCode::ACCEPTED);

    let hijack = send(Some(bob), Some(session.clone()), whoami_body()).await;
    assert_eq!(hijack.status, StatusCode::FORBIDDEN, "{}", hijack.body);
    assert_eq!(hijack.json()["error"], "session_forbidden");
    let anonymous = send(None, Some(session.clone()), whoami_body()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let call = send(Some(alice), Some(session), whoami_body()).await;
    assert_eq!(call.status, StatusCode::OK, "{}", call.body);
    assert_eq!(call.json()["result"]["structuredContent"]["sub"], "alice");
}

async fn full_dev_flow_register_authorize_token_then_whoami(stack: Stack) {
    let app = start_default(stack).await;
    let mcp_url = app.setup.mcp_url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get_json = |url: String| {
        let http = http.clone();
        async move {
            let response = http.get(&url).send().await.expect("GET");
            assert_eq!(response.status(), StatusCode::OK, "GET {url}");
            serde_json::from_str::<Value>(&response.text().await.expect("body")).expect("JSON")
        }
    };

    // 1. The 401 names the resource metadata, which names the authorization server.
    let challenge = post(&mcp_url, None, &initialize_body()).await.challenge();
    let resource_metadata = get_json(challenge.resource_metadata.expect("resource_metadata")).await;
    assert_eq!(resource_metadata["resource"], mcp_url);
    let issuer = resource_metadata["authorization_servers"][0]
        .as_str()
        .expect("an issuer")
        .to_owned();
    // 2. RFC 8414 discovery.
    let as_metadata = get_json(format!("{issuer}/.well-known/oauth-authorization-server")).await;
    assert_eq!(as_metadata["issuer"], issuer);
    assert!(
        as_metadata["code_challenge_methods_supported"]
            .as_array()
            .expect("PKCE methods")
            .contains(&json!("S256"))
    );

    // 3. Dynamic client registration (a public client with a loopback redirect).
    let redirect_uri = "http://127.0.0.1:33418/callback";
    let registration = http
        .post(as_metadata["registration_endpoint"].as_str().expect("registration_endpoint"))
        .header("content-type", "application/json")
        .body(
            json!({"client_name": "test client", "redirect_uris": [redirect_uri],
                   "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]})
            .to_string(),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(registration.status(), StatusCode::CREATED);
    let client: Value =
        serde_json::from_str(&registration.text().await.expect("body")).expect("JSON");
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();

    // 4. Authorization request with PKCE; the server approves at once and redirects back.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-with-enough-entropy";
    let challenge_s256 = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    let authorization_endpoint = as_metadata["authorization_endpoint"]
        .as_str()
        .expect("authorize")
        .to_owned();
    let authorize = || async {
        let mut url = reqwest::Url::parse(&authorization_endpoint).expect("URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &challenge_s256)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "xyz")
            .append_pair("scope", "read")
            .append_pair("resource", &mcp_url);
        let redirect = http.get(url).send().await.expect("authorize");
        assert!(
            redirect.status().is_redirection(),
            "authorize answered {}",
            redirect.status()
        );
        let location = reqwest::Url::parse(redirect.headers()["location"].to_str().expect("ASCII"))
            .expect("URL");
        assert!(location.as_str().starts_with(redirect_uri), "{location}");
        let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
        query.get("code").expect("a code").clone()
    };
    let token_endpoint = as_metadata["token_endpoint"]
        .as_str()
        .expect("token_endpoint")
        .to_owned();
    let exchange = |code: String, code_verifier: &'static str| {
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", redirect_uri.to_owned()),
            ("client_id", client_id.clone()),
            ("code_verifier", code_verifier.to_owned()),
            ("resource", mcp_url.clone()),
        ];
        http.post(&token_endpoint).form(&form).send()
    };

    // 5. Token request: a wrong PKCE verifier is refused, the right one gets a token.
    let refused = exchange(
        authorize().await,
        "not-the-verifier-not-the-verifier-not-the-verifier",
    )
    .await
    .expect("token");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let token_response = exchange(authorize().await, verifier).await.expect("token");
    assert_eq!(token_response.status(), StatusCode::OK);
    let tokens: Value =
        serde_json::from_str(&token_response.text().await.expect("body")).expect("JSON");
    let access_token = tokens["access_token"].as_str().expect("access_token");

    // 6. The token works, and carries the sample user's identity.
    let identity = whoami(&mcp_url, access_token).await;
    assert_eq!(identity["sub"], "alice");
    assert_eq!(identity["client_id"], client_id);
    assert_eq!(identity["scopes"], json!(["read"]));
    assert_eq!(identity["audience"], json!([mcp_url]));
    assert_eq!(identity["name"], "Alice Example");
}

#[tokio::test]
async fn configured_issuer_is_used_instead_of_the_built_in_server() {
    let real = TestAuthServer::start()
        .await
        .expect("an authorization server");
    let mut config = Config::new(0);
    config.issuer = Some(real.issuer().to_owned());
    let app = start(Stack::Axum, config).await;
    assert!(app.setup.dev_server.is_none());
    assert!(app.setup.sample_token().is_none());
    assert_eq!(app.setup.issuer, real.issuer());
    let token = real
        .token()
        .audience(app.setup.resource.clone())
        .claim("email", "alice@example.com")
        .sign();
    let identity = whoami(&app.setup.mcp_url, &token).await;
    assert_eq!(identity["issuer"], real.issuer());
    assert_eq!(identity["email"], "alice@example.com");
}

#[tokio::test]
async fn resource_can_be_set_and_the_mcp_path_follows_it() {
    let mut config = Config::new(0);
    config.resource = Some("https://mcp.example.com/api/mcp".into());
    let app = start(Stack::Axum, config).await;
    assert_eq!(app.setup.mcp_path, "/api/mcp");
    let port = app.setup.local_addr.port();
    assert_eq!(
        app.setup.mcp_url,
        format!("http://localhost:{port}/api/mcp")
    );
    let metadata: Value = serde_json::from_str(
        &reqwest::get(format!(
            "http://localhost:{port}/.well-known/oauth-protected-resource/api/mcp"
        ))
        .await
        .expect("metadata")
        .text()
        .await
        .expect("body"),
    )
    .expect("JSON");
    assert_eq!(metadata["resource"], "https://mcp.example.com/api/mcp");
    let identity = whoami(
        &app.setup.mcp_url,
        &app.setup.sample_token().expect("token"),
    )
    .await;
    assert_eq!(
        identity["audience"],
        json!(["https://mcp.example.com/api/mcp"])
    );
}

// ---------------------------------------------------------------------------------------------
// Faults of the authorization server at start

/// A loopback address nothing listens on (the OS picked the port, then it was released).
async fn free_loopback_addr() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

/// Expects the answer of a server whose authorization server cannot be used: 503, no
/// challenge, a JSON body saying `temporarily_unavailable`.
fn expect_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.headers.get("www-authenticate").is_none(),
        "no challenge while the authorization server is down"
    );
    assert_eq!(
        reply.json()["error"],
        "temporarily_unavailable",
        "{}",
        reply.body
    );
}

/// A JWT for `issuer` and `resource` that no key ever signed: well-formed enough that the
/// verifier needs the authorization server's keys to refuse it.
fn unverifiable_token(issuer: &str, resource: &str) -> String {
    let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT", "kid": "unknown"})),
        part(json!({"iss": issuer, "aud": resource, "sub": "alice", "exp": exp})),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// Calls `tools/call whoami` with `token` every 100 ms until it succeeds; the time it took.
/// Panics after `limit`.
async fn time_to_recover(url: &str, token: &str, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let reply = post(url, Some(token), &whoami_body()).await;
        if reply.status == StatusCode::OK {
            return started.elapsed();
        }
        expect_unavailable(&reply);
        assert!(
            started.elapsed() < limit,
            "still {} after {limit:?}: {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_unreachable_issuer_does_not_stop_the_server_and_it_heals_without_a_restart() {
    let addr = free_loopback_addr().await;
    let mut config = Config::new(0);
    config.issuer = Some(format!("http://{addr}"));
    let app = start(Stack::Axum, config).await;
    // The metadata the client needs to find the authorization server is served regardless.
    let metadata = reqwest::get(&app.setup.metadata_url)
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), StatusCode::OK);
    let waiting = unverifiable_token(&app.setup.issuer, &app.setup.resource);
    expect_unavailable(&post(&app.setup.mcp_url, Some(&waiting), &whoami_body()).await);

    let healed = TestAuthServer::builder()
        .bind(addr)
        .start()
        .await
        .expect("the authorization server, on the address it was expected at");
    let token = healed.token().audience(app.setup.resource.clone()).sign();
    let took = time_to_recover(&app.setup.mcp_url, &token, Duration::from_secs(10)).await;
    eprintln!("recovered {took:?} after the authorization server came up");
    healed.shutdown().await;
}

#[tokio::test]
async fn garbage_or_huge_metadata_at_start_gets_503_until_the_server_heals() {
    let garbage = Fault::Body {
        status: 200,
        content_type: "application/json".into(),
        body: bytes::Bytes::from_static(b"<html>not metadata</html>"),
    };
    for fault in [garbage, Fault::Oversized(10 << 20), Fault::Status(502)] {
        let server = TestAuthServer::start()
            .await
            .expect("an authorization server");
        for endpoint in [Endpoint::OAuthMetadata, Endpoint::OidcMetadata] {
            server.fail(endpoint, fault.clone());
        }
        let mut config = Config::new(0);
        config.issuer = Some(server.issuer().to_owned());
        let app = start(Stack::Hyper, config).await;
        let token = server.token().audience(app.setup.resource.clone()).sign();
        expect_unavailable(&post(&app.setup.mcp_url, Some(&token), &whoami_body()).await);
        server.heal_all();
        let took = time_to_recover(&app.setup.mcp_url, &token, Duration::from_secs(10)).await;
        eprintln!("{fault:?}: recovered {took:?} after healing");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn binary_whoami_starts_with_its_authorization_server_down_and_heals_within_ten_seconds() {
    let addr = free_loopback_addr().await;
    let binary = example_binary("whoami").await;
    let mut child = example_command(&binary)
        .env("MCP_AUTH_ISSUER", format!("http://{addr}"))
        .spawn()
        .expect("start the example");
    let banner = read_banner(&mut child).await;
    let mcp_url = banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("MCP endpoint"))
        .map(|url| url.trim().to_owned())
        .expect("the MCP endpoint line");
    let resource = banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("protected resource"))
        .map(|url| url.trim().to_owned())
        .expect("the protected resource line");
    let waiting = unverifiable_token(&format!("http://{addr}"), &resource);
    expect_unavailable(&post(&mcp_url, Some(&waiting), &whoami_body()).await);
    assert!(
        child.try_wait().expect("status").is_none(),
        "the example exited"
    );

    let healed = TestAuthServer::builder()
        .bind(addr)
        .start()
        .await
        .expect("the authorization server, on the address it was expected at");
    let token = healed.token().audience(resource).sign();
    let took = time_to_recover(&mcp_url, &token, Duration::from_secs(10)).await;
    eprintln!("the whoami binary recovered {took:?} after its authorization server came up");
    let identity = whoami(&mcp_url, &token).await;
    assert_eq!(identity["issuer"], healed.issuer());
    child.kill().await.expect("stop the example");
    healed.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Configuration parsing

fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Command, common::config::ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::parse(
        3001,
        |name| env.get(name).cloned(),
        args.iter().map(|a| (*a).to_owned()),
    )
}

fn config(env: &[(&str, &str)], args: &[&str]) -> Config {
    match parse(env, args) {
        Ok(Command::Run(config)) => config,
        other => panic!("expected a configuration, got {other:?}"),
    }
}

fn error_variable(env: &[(&str, &str)], args: &[&str]) -> String {
    parse(env, args)
        .expect_err("a configuration error")
        .variable
}

#[test]
fn no_configuration_means_port_3001_built_in_server_jwt() {
    let config = config(&[], &[]);
    assert_eq!(config, Config::new(3001));
    assert_eq!(config.port, 3001);
    assert_eq!(config.issuer, None);
    assert_eq!(config.verifier, VerifierKind::Jwt);
    assert_eq!(config.server_type, mcp_auth::AuthServerType::Oidc);
}

#[test]
fn port_comes_from_port_or_the_port_flag_which_wins() {
    assert_eq!(config(&[("PORT", "4000")], &[]).port, 4000);
    assert_eq!(config(&[("PORT", "4000")], &["--port", "0"]).port, 0);
    assert_eq!(config(&[], &["--port=5000"]).port, 5000);
    assert_eq!(
        config(&[("PORT", "")], &[]).port,
        3001,
        "an empty variable counts as unset"
    );
    assert!(matches!(parse(&[], &["--help"]), Ok(Command::Help)));
}

#[test]
fn every_setting_is_read() {
    let config = config(
        &[
            ("MCP_AUTH_ISSUER", "https://tenant.logto.app/oidc"),
            ("MCP_AUTH_SERVER_TYPE", "OAuth"),
            ("MCP_AUTH_VERIFIER", "introspection"),
            ("MCP_AUTH_CLIENT_ID", "rs"),
            ("MCP_AUTH_CLIENT_SECRET", "s3cret"),
            ("MCP_AUTH_RESOURCE", "https://mcp.example.com/mcp"),
            (
                "MCP_AUTH_AUDIENCE",
                "https://mcp.example.com/mcp  api://mcp",
            ),
            ("MCP_AUTH_REQUIRED_SCOPES", "read write"),
        ],
        &[],
    );
    assert_eq!(
        config.issuer.as_deref(),
        Some("https://tenant.logto.app/oidc")
    );
    assert_eq!(config.server_type, mcp_auth::AuthServerType::OAuth);
    assert_eq!(config.verifier, VerifierKind::Introspection);
    assert_eq!(
        config.client_credentials,
        Some(("rs".into(), "s3cret".into()))
    );
    assert_eq!(
        config.resource.as_deref(),
        Some("https://mcp.example.com/mcp")
    );
    assert_eq!(
        config.audience,
        ["https://mcp.example.com/mcp", "api://mcp"]
    );
    assert_eq!(config.required_scopes, ["read", "write"]);
}

#[test]
fn bad_settings_are_reported_by_variable_name() {
    assert_eq!(error_variable(&[("PORT", "http")], &[]), "PORT");
    assert_eq!(error_variable(&[("PORT", "70000")], &[]), "PORT");
    assert_eq!(error_variable(&[], &["--port", "x"]), "--port");
    assert_eq!(error_variable(&[], &["--port"]), "--port");
    assert_eq!(error_variable(&[], &["--verbose"]), "--verbose");
    assert_eq!(
        error_variable(&[("MCP_AUTH_ISSUER", "auth.example.com")], &[]),
        "MCP_AUTH_ISSUER"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_ISSUER", "ftp://auth.example.com")], &[]),
        "MCP_AUTH_ISSUER"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_SERVER_TYPE", "saml")], &[]),
        "MCP_AUTH_SERVER_TYPE"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_VERIFIER", "magic")], &[]),
        "MCP_AUTH_VERIFIER"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_CLIENT_ID", "rs")], &[]),
        "MCP_AUTH_CLIENT_SECRET"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_CLIENT_SECRET", "s")], &[]),
        "MCP_AUTH_CLIENT_ID"
    );
    assert_eq!(
        error_variable(
            &[
                ("MCP_AUTH_ISSUER", "https://as.example.com"),
                ("MCP_AUTH_VERIFIER", "introspection")
            ],
            &[]
        ),
        "MCP_AUTH_CLIENT_ID"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_RESOURCE", "http://mcp.example.com/mcp")], &[]),
        "MCP_AUTH_RESOURCE"
    );
    assert_eq!(
        error_variable(&[("MCP_AUTH_REQUIRED_SCOPES", "read wr\"ite")], &[]),
        "MCP_AUTH_REQUIRED_SCOPES"
    );
}

#[test]
fn http_issuer_is_allowed_only_on_loopback() {
    assert_eq!(
        error_variable(&[("MCP_AUTH_ISSUER", "http://auth.example.com")], &[]),
        "MCP_AUTH_ISSUER"
    );
    for loopback in [
        "http://localhost:3000/oidc",
        "http://127.0.0.1:8080",
        "http://[::1]:9000",
    ] {
        assert_eq!(
            config(&[("MCP_AUTH_ISSUER", loopback)], &[])
                .issuer
                .as_deref(),
            Some(loopback)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The compiled example binaries

/// The example binary, up to date: `cargo test` builds examples next to the test binaries
/// (`target/<profile>/examples/`), but `cargo test --test it` does not, so this
/// runs `cargo build --example` (a no-op when the binary is fresh).
async fn example_binary(name: &str) -> std::path::PathBuf {
    static BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let _one_build_at_a_time = BUILD.lock().await;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = tokio::process::Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    let status = build.status().await.expect("cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}

/// Starts an example with `PORT=0` and no `MCP_AUTH_*` settings.
fn example_command(binary: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_AUTH_") {
            command.env_remove(name);
        }
    }
    command
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// The printed lines up to the end of the copy-paste block.
async fn read_banner(child: &mut tokio::process::Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            let end = line == common::banner::BLOCK_END;
            banner.push(line);
            if end {
                return;
            }
        }
        panic!("the example exited before printing its curl block: {banner:#?}");
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the banner within 2 minutes");
    // Keep reading, so that the example never writes to a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    banner
}

/// Shell words of one line, with `$NAME` expanded from `vars` outside single quotes.
fn shell_words(line: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let expand = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String| {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        out.push_str(
            vars.get(&name)
                .unwrap_or_else(|| panic!("undefined shell variable ${name}")),
        );
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '$' => expand(&mut chars, w),
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '$' => expand(&mut chars, word.get_or_insert_with(String::new)),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Runs one printed curl command with reqwest.
async fn run_curl(words: &[String]) -> Reply {
    assert_eq!(words.first().map(String::as_str), Some("curl"));
    let (mut method, mut url, mut headers, mut data) = (None, None, Vec::new(), None);
    let mut args = words.iter().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-s" | "-S" | "-sS" | "-i" => {}
            "-w" => {
                args.next();
            }
            "-X" => method = args.next().cloned(),
            "-H" => headers.push(args.next().expect("a header").clone()),
            "-d" => data = args.next().cloned(),
            other if other.starts_with('-') => {
                panic!("the test does not know the curl option {other}")
            }
            other => url = Some(other.to_owned()),
        }
    }
    let method = method.unwrap_or_else(|| {
        if data.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut request = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        url.expect("a URL"),
    );
    for header in headers {
        let (name, value) = header.split_once(':').expect("Name: value");
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = data {
        request = request.body(data);
    }
    let response = request.send().await.expect("the printed request");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// The copy-paste block: (comment, curl words) per request, and the shell script itself.
fn curl_block(banner: &[String]) -> (Vec<Vec<String>>, String) {
    let start = banner
        .iter()
        .position(|l| l == common::banner::BLOCK_START)
        .expect("block start");
    let block = &banner[start..];
    let mut vars = HashMap::new();
    let mut commands = Vec::new();
    for line in block {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((name, _)) = line.split_once('=')
            && !name.contains(' ')
        {
            let value = shell_words(&line[name.len() + 1..], &vars).concat();
            vars.insert(name.to_owned(), value);
            continue;
        }
        commands.push(shell_words(line, &vars));
    }
    (commands, block.join("\n"))
}

async fn check_printed_curl_lines_work_as_printed(example: &str) {
    let binary = example_binary(example).await;
    let mut child = example_command(&binary).spawn().expect("start the example");
    let banner = read_banner(&mut child).await;
    let text = banner.join("\n");
    assert!(text.contains("LOCAL DEVELOPMENT AND TESTS ONLY"), "{text}");
    let (commands, script) = curl_block(&banner);
    assert_eq!(commands.len(), 5, "{script}");

    let token_line = banner
        .iter()
        .find(|l| l.starts_with("TOKEN='"))
        .expect("the token line");
    assert!(token_line.len() > 100, "a JWT is printed: {token_line}");

    // 1. no token → 401 with resource_metadata
    let unauthorized = run_curl(&commands[0]).await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    let metadata_url = unauthorized
        .challenge()
        .resource_metadata
        .expect("resource_metadata");
    // 2. metadata → its resource is the URL the requests call
    let metadata = run_curl(&commands[1]).await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(commands[1].last(), Some(&metadata_url));
    let mcp_url = commands[4]
        .iter()
        .find(|w| w.starts_with("http://"))
        .expect("the MCP URL")
        .clone();
    assert_eq!(metadata.json()["resource"], mcp_url);
    assert!(
        mcp_url.starts_with("http://localhost:") && mcp_url.ends_with("/mcp"),
        "{mcp_url}"
    );
    // 3-5. initialize, initialized, whoami
    let init = run_curl(&commands[2]).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.body);
    assert!(
        init.json()["result"]["serverInfo"].is_object(),
        "{}",
        init.body
    );
    assert_eq!(run_curl(&commands[3]).await.status, StatusCode::ACCEPTED);
    let call = run_curl(&commands[4]).await;
    assert_eq!(call.status, StatusCode::OK);
    let identity = &call.json()["result"]["structuredContent"];
    assert_eq!(identity["sub"], "alice");
    assert_eq!(identity["name"], "Alice Example");
    assert_eq!(identity["email"], "alice@example.com");
    assert_eq!(identity["username"], "alice");
    // Web pages on other origins can use it too.
    assert_browser_cors(&mcp_url, &metadata_url).await;

    // The same block, pasted into a real shell, when curl is installed.
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    let has_bash = std::process::Command::new("bash")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if has_curl && has_bash {
        let output = tokio::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .await
            .expect("bash");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("HTTP/1.1 401"), "{stdout}");
        assert!(stdout.contains("resource_metadata="), "{stdout}");
        assert!(stdout.contains(r#""sub":"alice""#), "{stdout}");
        assert!(stdout.contains(r#""name":"Alice Example""#), "{stdout}");
    }
    child.kill().await.expect("stop the example");
}

#[tokio::test]
async fn binary_whoami_prints_a_token_and_curl_lines_that_work_as_printed() {
    check_printed_curl_lines_work_as_printed("whoami").await;
}

#[tokio::test]
async fn binary_whoami_hyper_prints_a_token_and_curl_lines_that_work_as_printed() {
    check_printed_curl_lines_work_as_printed("whoami_hyper").await;
}

#[tokio::test]
async fn binary_whoami_actix_prints_a_token_and_curl_lines_that_work_as_printed() {
    check_printed_curl_lines_work_as_printed("whoami_actix").await;
}

#[tokio::test]
async fn binary_with_bad_configuration_exits_non_zero_naming_the_variable() {
    for example in ["whoami", "whoami_hyper", "whoami_actix"] {
        let binary = example_binary(example).await;
        for (variable, value) in [
            ("PORT", "not-a-port"),
            ("MCP_AUTH_ISSUER", "http://auth.example.com"),
            ("MCP_AUTH_VERIFIER", "magic"),
        ] {
            let output = example_command(&binary)
                .env(variable, value)
                .stderr(Stdio::piped())
                .output()
                .await
                .expect("run the example");
            assert_eq!(
                output.status.code(),
                Some(2),
                "{example}: {variable}={value}"
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("{variable}:")),
                "{example}: {variable}={value}: {stderr}"
            );
        }
    }
}
