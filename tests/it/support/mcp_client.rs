//! A minimal MCP-over-HTTP client for the integration tests: one place for sending JSON-RPC
//! messages to a Streamable HTTP endpoint and reading the answer (JSON or SSE).
//!
//! Included with `#[path = "support/mcp_client.rs"] mod mcp_client;`; each test file uses part
//! of it.
#![allow(dead_code)]

use http::StatusCode;
use serde_json::{Value, json};

/// What came back: status, the headers the tests look at, and the body.
pub struct Reply {
    pub status: StatusCode,
    pub session: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Reply {
    /// Reads a whole response.
    pub async fn read(response: reqwest::Response) -> Reply {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Reply {
            status: response.status(),
            session: header("mcp-session-id"),
            www_authenticate: header("www-authenticate"),
            body: response.text().await.expect("body"),
        }
    }

    /// The JSON body, or the last JSON-RPC message of an SSE stream.
    pub fn json(&self) -> Value {
        if let Ok(value) = serde_json::from_str(&self.body) {
            return value;
        }
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .next_back()
            .unwrap_or_else(|| panic!("no JSON-RPC message in {:?}", self.body))
    }

    /// The text of a `tools/call` result.
    pub fn text(&self) -> String {
        let message = self.json();
        message["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text result: {message}"))
            .to_owned()
    }
}

/// Sends `method url` with the MCP headers, an optional bearer token, session id and body.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    Reply::read(request.send().await.expect("request")).await
}

/// POSTs raw bytes as a JSON-RPC body.
pub async fn post_raw(
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    send(reqwest::Method::POST, url, token, session, Some(body)).await
}

/// POSTs one JSON-RPC message.
pub async fn post(url: &str, token: Option<&str>, session: Option<&str>, body: Value) -> Reply {
    post_raw(url, token, session, body.to_string().into_bytes()).await
}

/// An `initialize` request.
pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

/// The `notifications/initialized` notification.
pub fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}
