//! Shared by the hostile-input and fault tests: a guarded app on a loopback port, a raw
//! HTTP/1.1 client for bytes reqwest will not send, and a signer for tokens whose every byte
//! the test chooses.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::{AuthInfo, BearerAuth, McpAuth, TokenVerifier};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest any single exchange may take before the test calls it a hang. Far above every
/// timeout configured in these tests: it bounds, it does not measure.
pub const HANG: Duration = Duration::from_secs(30);

/// `/mcp` (any method) behind a bearer guard, and the metadata endpoints, on `127.0.0.1:0`.
pub struct App {
    pub addr: SocketAddr,
    pub base: String,
    pub resource: String,
    pub metadata_url: String,
    /// How many requests reached the protected handler.
    pub handler_calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// Binds a port, lets `build` make the configuration and guard for the resource
    /// `http://127.0.0.1:<port>/mcp`, and serves.
    pub async fn serve(build: impl FnOnce(&str) -> (McpAuth, BearerAuth)) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");
        let resource = format!("{base}/mcp");
        let (auth, guard) = build(&resource);
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&handler_calls);
        let handler = move |axum::Extension(info): axum::Extension<AuthInfo>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { info.subject.unwrap_or_default() }
        };
        let app = axum::Router::new()
            .route("/mcp", any(handler))
            .route_layer(guard.layer())
            .fallback_service(auth.metadata_service());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        App {
            addr,
            metadata_url: format!("{base}/.well-known/oauth-protected-resource/mcp"),
            base,
            resource,
            handler_calls,
            task,
        }
    }

    pub fn url(&self) -> String {
        self.resource.clone()
    }

    pub fn handler_calls(&self) -> usize {
        self.handler_calls.load(Ordering::SeqCst)
    }

    /// `POST /mcp` with `Authorization: Bearer <token>` through reqwest.
    pub async fn post(&self, token: &str) -> Outcome {
        let request = reqwest::Client::new()
            .post(self.url())
            .header("authorization", format!("Bearer {token}"))
            .send();
        let response = tokio::time::timeout(HANG, request)
            .await
            .expect("the request hung")
            .expect("the request failed");
        let status = response.status().as_u16();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ASCII challenge").to_owned());
        let body = response.bytes().await.expect("body").to_vec();
        Outcome {
            status,
            www_authenticate,
            body,
        }
    }

    /// `POST /mcp` written byte for byte: the request line, `Host`, each of `headers` (without
    /// CRLF), `Content-Length: 0`, `Connection: close`.
    pub async fn raw_post(&self, headers: &[&[u8]]) -> Outcome {
        let mut request = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
        for header in headers {
            request.extend_from_slice(header);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"Content-Length: 0\r\nConnection: close\r\n\r\n");
        raw_exchange(self.addr, request).await
    }

    /// Expects the challenge of this app (`resource_metadata`, the required scopes) with the
    /// given `error` (none for the bare 401), and that the handler never ran.
    pub fn expect_refusal(&self, outcome: &Outcome, status: u16, error: Option<&str>) {
        assert_eq!(outcome.status, status, "{outcome:?}");
        let challenge = outcome.challenge();
        assert_eq!(challenge.error.as_deref(), error, "{outcome:?}");
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some(self.metadata_url.as_str())
        );
        assert_eq!(challenge.scope, ["read"]);
        let body = outcome.json();
        assert_eq!(body["error"], error.unwrap_or("unauthorized"), "{body}");
        assert_eq!(self.handler_calls(), 0, "the protected handler ran");
    }

    /// Expects 401 `invalid_token` and that the handler never ran.
    pub fn expect_invalid_token(&self, outcome: &Outcome) {
        self.expect_refusal(outcome, 401, Some("invalid_token"));
    }

    /// Expects a server-side failure (`status` 500 or 503, no challenge, the OAuth code in the
    /// body) and that the handler never ran. Returns the body's `cause.reason` when present.
    pub fn expect_server_side(&self, outcome: &Outcome, status: u16) -> String {
        assert_eq!(outcome.status, status, "{outcome:?}");
        assert!(outcome.www_authenticate.is_none(), "{outcome:?}");
        let body = outcome.json();
        let code = if status == 503 {
            "temporarily_unavailable"
        } else {
            "server_error"
        };
        assert_eq!(body["error"], code, "{body}");
        assert_eq!(self.handler_calls(), 0, "the protected handler ran");
        body["cause"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Wraps a verifier to count its calls.
pub fn counting<V: TokenVerifier>(inner: V, calls: Arc<AtomicUsize>) -> impl TokenVerifier {
    let inner = Arc::new(inner);
    move |token: String| {
        calls.fetch_add(1, Ordering::SeqCst);
        let inner = Arc::clone(&inner);
        async move { inner.verify(&token).await }
    }
}

/// A response: status, `WWW-Authenticate`, body.
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: Vec<u8>,
}

impl Outcome {
    pub fn challenge(&self) -> BearerChallenge {
        let value = self
            .www_authenticate
            .as_deref()
            .expect("a WWW-Authenticate header");
        BearerChallenge::parse(value).expect("a well-formed Bearer challenge")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Writes `request` to `addr` and reads the answer until the server closes the connection.
/// The write runs beside the read, so a server that answers before reading everything (431)
/// is heard even if it then resets the connection.
pub async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> Outcome {
    let exchange = async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&request).await;
            let _ = writer.flush().await;
            writer
        });
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
        drop(write.await);
        answer
    };
    let answer = tokio::time::timeout(HANG, exchange)
        .await
        .expect("the raw exchange hung");
    parse_response(&answer)
}

fn parse_response(answer: &[u8]) -> Outcome {
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP response head in {:?}",
                String::from_utf8_lossy(answer)
            )
        });
    let head = std::str::from_utf8(&answer[..head_end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut www_authenticate = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        let value = value.trim();
        if name.eq_ignore_ascii_case("www-authenticate") {
            www_authenticate = Some(value.to_owned());
        }
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let mut body = answer[head_end + 4..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    Outcome {
        status,
        www_authenticate,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// An Ed25519 key of the test's own, published beside the test authorization server's keys
/// under `kid` [`Signer::KID`], signing any header and payload bytes.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl Signer {
    pub const KID: &'static str = "hostile-test-key";

    /// Generates the key and publishes it in `server`'s JWKS (with the server's own keys).
    pub fn publish(server: &TestAuthServer) -> Signer {
        let key = Ed25519KeyPair::generate().expect("Ed25519 key");
        let mut jwks = server.public_jwks();
        jwks["keys"]
            .as_array_mut()
            .expect("a keys array")
            .push(json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                "kid": Self::KID,
                "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
            }));
        server.set_jwks_override(Some(jwks));
        Signer { key }
    }

    /// A compact JWS of exactly these header and payload bytes, signed with the key.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// Signs `payload` (raw JSON text) under the usual header `{"alg":"EdDSA","kid":KID}`.
    pub fn sign_payload(&self, payload: &str) -> String {
        let header = json!({"alg": "EdDSA", "kid": Self::KID, "typ": "at+jwt"}).to_string();
        self.sign_raw(header.as_bytes(), payload.as_bytes())
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub use super::clock::unix_now;
