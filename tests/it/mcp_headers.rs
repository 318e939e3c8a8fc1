//! MCP 2026-07-28's `Mcp-Method` / `Mcp-Name` request headers over real HTTP: an rmcp
//! `StreamableHttpService` (stateless, JSON answers) behind
//! `guard.mcp_guard().operation_scopes(policy).layer()`, tokens from the test authorization
//! server. The same requests under 2025-06-18 / 2025-11-25 (and without a version) pin that the
//! body still decides for the older revisions.
#![cfg(feature = "test-util")]

use mcp_auth::bearer::BearerChallenge;
use mcp_auth::tower::{HEADER_MISMATCH_CODE, OperationScopes, OperationScopesBuilder};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::operation_scopes::Mcp;
use crate::support::mcp_client::Reply;
use crate::support::mcp_server::stateless;

const MODERN: &str = "2026-07-28";

/// The `operation_scopes` fixture (the same tools behind the same guard), stateless.
async fn serve(policy: OperationScopesBuilder) -> Mcp {
    crate::operation_scopes::serve(stateless(), policy).await
}

impl Mcp {
    /// POSTs `body` with `MCP-Protocol-Version: version` (none when `None`), the token, and
    /// `headers` (appended in order, so a name may repeat).
    async fn post(
        &self,
        version: Option<&str>,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = reqwest::Client::new()
            .post(&self.server.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(body);
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("request")).await
    }
}

fn policy() -> OperationScopesBuilder {
    OperationScopes::builder()
        .tool("admin_report", ["admin"])
        .method("resources/read", ["files:read"])
}

/// The per-request `_meta` a 2026-07-28 request carries (rmcp requires it).
fn meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 `tools/call` body for `tool`.
fn call(id: u64, tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": meta(MODERN)}})
    .to_string()
}

/// A `tools/call` body for `tool` without per-request metadata (2025-06-18 / 2025-11-25).
fn legacy_call(id: u64, tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
    .to_string()
}

fn named(tool: &str) -> [(&'static str, &str); 2] {
    [("Mcp-Method", "tools/call"), ("Mcp-Name", tool)]
}

/// Asserts the answer is the transport's `400` with a JSON-RPC `HeaderMismatch` error, with
/// the request's `id` when given, and returns the error message.
fn assert_header_mismatch(reply: &Reply, id: Option<Value>) -> String {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], HEADER_MISMATCH_CODE, "{body}");
    assert_eq!(body.get("id").cloned(), id, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

fn challenge(reply: &Reply) -> BearerChallenge {
    BearerChallenge::parse(reply.www_authenticate.as_deref().expect("a challenge"))
        .expect("a Bearer challenge")
}

#[tokio::test]
async fn agreeing_headers_decide_the_scopes_and_the_operation_runs() {
    let mcp = serve(policy()).await;
    let base = mcp.token("alice", "read");
    let reply = mcp
        .post(Some(MODERN), &base, &named("public"), call(1, "public"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json()["result"]["content"][0]["text"],
        "public for alice"
    );

    let refused = mcp
        .post(
            Some(MODERN),
            &base,
            &named("admin_report"),
            call(2, "admin_report"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(challenge(&refused).scope, ["read", "admin"]);

    let admin = mcp.token("alice", "read admin");
    let reply = mcp
        .post(
            Some(MODERN),
            &admin,
            &named("admin_report"),
            call(3, "admin_report"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(mcp.ran(), 2, "public and the admin report ran");
}

#[tokio::test]
async fn a_refusal_from_the_headers_reads_no_body() {
    let mcp = serve(policy()).await;
    // Not JSON at all: had the body been read, the answer would be a 400 about it.
    let refused = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &named("admin_report"),
            "\u{0}not json",
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(
        challenge(&refused).error.as_deref(),
        Some("insufficient_scope")
    );
}

#[tokio::test]
async fn default_challenge_scopes_follow_the_request_revision() {
    let mcp = serve(policy().known_scopes(["files:write"])).await;
    let token = mcp.token("alice", "openid read files:write");
    // 2026-07-28: only what the operation needs (the client accumulates scopes).
    let modern = mcp
        .post(
            Some(MODERN),
            &token,
            &named("admin_report"),
            call(1, "admin_report"),
        )
        .await;
    assert_eq!(challenge(&modern).scope, ["read", "admin"]);
    // 2025-11-25 and 2025-06-18 (and no version): the relevant granted scopes too.
    for version in [Some("2025-11-25"), Some("2025-06-18"), None] {
        let legacy = mcp
            .post(version, &token, &[], legacy_call(1, "admin_report"))
            .await;
        assert_eq!(legacy.status, StatusCode::FORBIDDEN, "{version:?}");
        assert_eq!(
            challenge(&legacy).scope,
            ["read", "admin", "files:write"],
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn a_body_naming_another_tool_than_mcp_name_gets_400_and_never_runs() {
    let mcp = serve(policy()).await;
    // The headers name a tool the token may call; the body calls the one it may not.
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &named("public"),
            call(7, "admin_report"),
        )
        .await;
    let message = assert_header_mismatch(&reply, Some(json!(7)));
    assert!(
        message.contains("Mcp-Name") && message.contains("params.name"),
        "{message}"
    );
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn a_body_with_another_method_than_mcp_method_gets_400() {
    let mcp = serve(policy()).await;
    let body = json!({"jsonrpc": "2.0", "id": "x", "method": "prompts/get",
        "params": {"name": "public", "_meta": meta(MODERN)}});
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &named("public"),
            body.to_string(),
        )
        .await;
    let message = assert_header_mismatch(&reply, Some(json!("x")));
    assert!(message.contains("Mcp-Method"), "{message}");
}

#[tokio::test]
async fn resources_read_compares_mcp_name_with_the_uri() {
    let mcp = serve(policy()).await;
    let token = mcp.token("alice", "read files:read");
    let body = |uri: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read",
            "params": {"uri": uri, "_meta": meta(MODERN)}})
        .to_string()
    };
    let headers = [
        ("Mcp-Method", "resources/read"),
        ("Mcp-Name", "file:///public.txt"),
    ];
    let reply = mcp
        .post(Some(MODERN), &token, &headers, body("file:///secret.txt"))
        .await;
    let message = assert_header_mismatch(&reply, Some(json!(1)));
    assert!(message.contains("params.uri"), "{message}");
    // Agreeing: the guard lets it through and rmcp answers (this server has no resources).
    let reply = mcp
        .post(Some(MODERN), &token, &headers, body("file:///public.txt"))
        .await;
    assert_ne!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_ne!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    // Without files:read: the step-up challenge, from the method's header.
    let refused = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &headers,
            body("file:///public.txt"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(challenge(&refused).scope, ["read", "files:read"]);
}

#[tokio::test]
async fn a_2026_07_28_request_without_the_headers_gets_400() {
    let mcp = serve(policy()).await;
    let token = mcp.token("alice", "read admin");
    let no_method = mcp.post(Some(MODERN), &token, &[], call(1, "public")).await;
    let message = assert_header_mismatch(&no_method, None);
    assert!(message.contains("Mcp-Method"), "{message}");
    let no_name = mcp
        .post(
            Some(MODERN),
            &token,
            &[("Mcp-Method", "tools/call")],
            call(2, "public"),
        )
        .await;
    let message = assert_header_mismatch(&no_name, None);
    assert!(message.contains("Mcp-Name"), "{message}");
    // A version the crate cannot read is treated as the newest revision: headers required.
    for odd in ["2099-01-01", "latest", "2025-11-25 2026-07-28"] {
        let reply = mcp
            .post(Some(odd), &token, &[], legacy_call(3, "admin_report"))
            .await;
        assert_header_mismatch(&reply, None);
    }
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn older_revisions_keep_the_body_probe_and_ignore_the_headers() {
    let mcp = serve(policy()).await;
    let base = mcp.token("alice", "read");
    for version in [Some("2025-06-18"), Some("2025-11-25"), None] {
        let reply = mcp
            .post(version, &base, &[], legacy_call(1, "public"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{version:?}: {}", reply.body);
        let refused = mcp
            .post(version, &base, &[], legacy_call(2, "admin_report"))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{version:?}");
        // Headers claiming a harmless tool are not trusted: the body decides.
        let misleading = mcp
            .post(
                version,
                &base,
                &named("public"),
                legacy_call(3, "admin_report"),
            )
            .await;
        assert_eq!(misleading.status, StatusCode::FORBIDDEN, "{version:?}");
    }
    assert_eq!(mcp.ran(), 3, "only the public calls ran");
}

#[tokio::test]
async fn a_base64_encoded_mcp_name_is_decoded_before_deciding_and_comparing() {
    let mcp = serve(policy()).await;
    // "admin_report" as =?base64?…?=: decided as admin_report.
    let encoded = [
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "=?base64?YWRtaW5fcmVwb3J0?="),
    ];
    let refused = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &encoded,
            call(1, "admin_report"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read admin"),
            &encoded,
            call(2, "admin_report"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Encoded "public" with a body calling admin_report: a mismatch after decoding.
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &[
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", "=?base64?cHVibGlj?="),
            ],
            call(3, "admin_report"),
        )
        .await;
    assert_header_mismatch(&reply, Some(json!(3)));
    // Not Base64 inside the markers: malformed.
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "=?base64?***?=")],
            call(4, "public"),
        )
        .await;
    assert_header_mismatch(&reply, None);
    assert_eq!(mcp.ran(), 1);
}

#[tokio::test]
async fn a_batch_under_2026_07_28_is_refused() {
    let mcp = serve(policy()).await;
    let batch = format!("[{},{}]", call(1, "public"), call(2, "admin_report"));
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &named("public"),
            batch,
        )
        .await;
    let message = assert_header_mismatch(&reply, None);
    assert!(message.contains("batch"), "{message}");
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn repeated_headers_and_repeated_body_members_are_refused() {
    let mcp = serve(policy()).await;
    let token = mcp.token("alice", "read admin");
    // Header names are case-insensitive: these are two values of one header.
    for headers in [
        vec![
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "public"),
            ("MCP-NAME", "public"),
        ],
        vec![
            ("Mcp-Method", "tools/call"),
            ("mcp-method", "tools/call"),
            ("Mcp-Name", "public"),
        ],
        vec![
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "public"),
            ("MCP-Protocol-Version", MODERN),
        ],
    ] {
        let reply = mcp
            .post(Some(MODERN), &token, &headers, call(1, "public"))
            .await;
        let message = assert_header_mismatch(&reply, None);
        assert!(message.contains("more than once"), "{message}");
    }
    // One comma-joined value is one (unknown) name, which the body does not match.
    let reply = mcp
        .post(
            Some(MODERN),
            &token,
            &named("public, admin_report"),
            call(2, "public"),
        )
        .await;
    assert_header_mismatch(&reply, Some(json!(2)));
    // The body names the tool twice: which one counts is up to the parser, so refused.
    let twice = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"public","name":"admin_report","arguments":{{}},"_meta":{}}}}}"#,
        meta(MODERN)
    );
    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &named("public"),
            twice,
        )
        .await;
    let message = assert_header_mismatch(&reply, Some(json!(3)));
    assert!(message.contains("params.name"), "{message}");
    assert_eq!(mcp.ran(), 0);
}

#[tokio::test]
async fn with_mcp_headers_checked_by_service_rmcp_refuses_the_mismatch_itself() {
    let mcp = serve(policy().mcp_headers_checked_by_service()).await;
    let base = mcp.token("alice", "read");
    let reply = mcp
        .post(Some(MODERN), &base, &named("public"), call(1, "public"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The guard passes the body on unread; rmcp 3.11 compares and answers -32020.
    let reply = mcp
        .post(
            Some(MODERN),
            &base,
            &named("public"),
            call(2, "admin_report"),
        )
        .await;
    assert_header_mismatch(&reply, Some(json!(2)));
    assert_eq!(mcp.ran(), 1, "the admin report never ran");
    // The headers still decide: no admin scope, no admin report.
    let refused = mcp
        .post(
            Some(MODERN),
            &base,
            &named("admin_report"),
            call(3, "admin_report"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A version whose header rules the crate does not know: the guard checks the body again.
    let reply = mcp
        .post(
            Some("2099-01-01"),
            &base,
            &named("public"),
            call(4, "admin_report"),
        )
        .await;
    assert_header_mismatch(&reply, Some(json!(4)));
}

#[tokio::test]
async fn server_discover_needs_a_token_like_every_request() {
    let mcp = serve(policy()).await;
    let body = json!({"jsonrpc": "2.0", "id": "d", "method": "server/discover",
        "params": {"_meta": meta(MODERN)}})
    .to_string();
    let anonymous = reqwest::Client::new()
        .post(&mcp.server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "server/discover")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    let anonymous = Reply::read(anonymous).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    let challenge = challenge(&anonymous);
    assert_eq!(challenge.error, None);
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(mcp.server.metadata_url.as_str())
    );
    assert_eq!(challenge.scope, ["read"]);

    let reply = mcp
        .post(
            Some(MODERN),
            &mcp.token("alice", "read"),
            &[("Mcp-Method", "server/discover")],
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let result = &reply.json()["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .is_some_and(|versions| versions.contains(&json!(MODERN))),
        "{result}"
    );
}
