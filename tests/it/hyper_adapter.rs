//! The hyper adapter over real HTTP: `McpRouter` (metadata, the guarded MCP path, 404) and
//! `Server` (hyper-util auto builder through `TowerToHyperService`, graceful shutdown, and
//! its header-read timeout, idle timeout, connection limit and HTTP/2 PINGs, each driven by a
//! raw `TcpStream` client).
//! The full whoami contract on hyper is in `tests/whoami_example.rs` (`hyper_stack`).
#![cfg(feature = "test-util")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use mcp_auth::integrations::hyper::{McpRouter, Server};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower::{Layer, service_fn};

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// Answers the caller's subject (from the `AuthInfo` the layer inserted), or `anonymous`.
async fn subject(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let subject = request
        .extensions()
        .get::<AuthInfo>()
        .and_then(|info| info.subject.clone())
        .unwrap_or_else(|| "anonymous".into());
    Ok(Response::new(Full::new(Bytes::from(subject))))
}

struct Guarded {
    issuer: TestAuthServer,
    base: String,
    resource: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), mcp_auth::ConfigError>>,
}

impl Guarded {
    /// `McpRouter` with the metadata and `subject` at `/mcp` behind the guard (scope `read`).
    async fn start() -> Self {
        let issuer = TestAuthServer::start().await.expect("authorization server");
        let (listener, port) = listener().await;
        let base = format!("http://localhost:{port}");
        let resource = format!("{base}/mcp");
        let server = AuthServer::discover(issuer.issuer(), AuthServerType::OAuth);
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.clone()).authorization_server(server.clone()),
            )
            .build()
            .expect("McpAuth");
        let verifier = JwtVerifier::builder()
            .authorization_server(server)
            .build()
            .expect("verifier");
        let guard = auth
            .bearer_auth(resource.as_str(), verifier)
            .required_scopes(["read"])
            .build()
            .expect("guard");
        let app = McpRouter::new(
            auth.metadata_service(),
            "/mcp",
            guard.layer().layer(service_fn(subject)),
        );
        assert_eq!(app.mcp_path(), "/mcp");
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(Server::new(listener, app).serve_with_shutdown(async {
            let _ = stopped.await;
        }));
        Self {
            issuer,
            base,
            resource,
            stop: Some(stop),
            server,
        }
    }

    fn token(&self, scope: &str) -> String {
        self.issuer
            .token()
            .audience(self.resource.clone())
            .scope(scope)
            .sign()
    }

    async fn send(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send().await.expect("request")
    }
}

#[tokio::test]
async fn mcp_router_guards_the_mcp_path_and_serves_the_metadata_without_a_token() {
    let app = Guarded::start().await;

    let refused = app.send(Method::POST, "/mcp", None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", app.base);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );

    let accepted = app
        .send(Method::POST, "/mcp", Some(&app.token("read")))
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(accepted.text().await.expect("body"), "alice");

    let forbidden = app
        .send(Method::POST, "/mcp", Some(&app.token("write")))
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(
        forbidden.headers()["www-authenticate"]
            .to_str()
            .expect("ASCII")
            .contains("insufficient_scope")
    );

    let metadata = app
        .send(
            Method::GET,
            "/.well-known/oauth-protected-resource/mcp",
            None,
        )
        .await;
    assert_eq!(metadata.status(), StatusCode::OK);
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    let document: serde_json::Value =
        serde_json::from_str(&metadata.text().await.expect("body")).expect("JSON");
    assert_eq!(document["resource"], app.resource);
    let preflight = app
        .send(
            Method::OPTIONS,
            "/.well-known/oauth-protected-resource/mcp",
            None,
        )
        .await;
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn mcp_router_answers_404_elsewhere_even_with_a_token() {
    let app = Guarded::start().await;
    let token = app.token("read");
    for path in [
        "/",
        "/mcp/",
        "/mcpx",
        "/.well-known/oauth-protected-resource",
    ] {
        assert_eq!(
            app.send(Method::GET, path, Some(&token)).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn server_speaks_http1_and_http2() {
    let app = Guarded::start().await;
    let token = app.token("read");
    for (client, expected) in [
        (
            reqwest::Client::builder()
                .http1_only()
                .build()
                .expect("client"),
            reqwest::Version::HTTP_11,
        ),
        (
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .expect("client"),
            reqwest::Version::HTTP_2,
        ),
    ] {
        let response = client
            .post(format!("{}/mcp", app.base))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request");
        let version = response.version();
        assert_eq!(version, expected);
        assert_eq!(response.status(), StatusCode::OK, "{version:?}");
        assert_eq!(response.text().await.expect("body"), "alice", "{version:?}");
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let mut app = Guarded::start().await;
    assert_eq!(
        app.send(
            Method::GET,
            "/.well-known/oauth-protected-resource/mcp",
            None
        )
        .await
        .status(),
        200
    );
    app.stop.take().expect("running").send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), &mut app.server)
        .await
        .expect("serve_with_shutdown returns")
        .expect("no panic")
        .expect("valid limits");
    let after = reqwest::Client::new()
        .get(format!("{}/mcp", app.base))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed");
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (listener, port) = listener().await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let slow = service_fn({
        let arrived = Arc::clone(&arrived);
        move |_: Request<Incoming>| {
            arrived.notify_one();
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
            }
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(listener, slow).serve_with_shutdown(async {
        let _ = stopped.await;
    }));
    let in_flight = tokio::spawn(reqwest::get(format!("http://127.0.0.1:{port}/")));
    // Only a request the server has read is in flight; one still on the wire is not.
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the request reaches the service");
    stop.send(()).expect("signal");
    let response = in_flight
        .await
        .expect("task")
        .expect("the request completes");
    assert_eq!(response.text().await.expect("body"), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("valid limits");
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait_for_a_hanging_request() {
    let (listener, port) = listener().await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let hanging = service_fn({
        let arrived = Arc::clone(&arrived);
        move |_: Request<Incoming>| {
            arrived.notify_one();
            std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(listener, hanging).shutdown_grace(Duration::from_millis(200));
    let server = tokio::spawn(server.serve_with_shutdown(async {
        let _ = stopped.await;
    }));
    let hung = tokio::spawn(reqwest::get(format!("http://127.0.0.1:{port}/")));
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the request reaches the service");
    let started = Instant::now();
    stop.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("returns")
        .expect("no panic")
        .expect("valid limits");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The hanging connection was closed, not left running.
    let outcome = tokio::time::timeout(Duration::from_secs(5), hung)
        .await
        .expect("the client sees the end");
    assert!(
        outcome.expect("task").is_err(),
        "the hanging request has no answer"
    );
}

// ---------------------------------------------------------------------------------------------
// Connection limits, over raw TCP: clients that hold connections without using them.

/// A limit short enough for a test to wait it out.
const SHORT: Duration = Duration::from_millis(300);
/// A limit the test never reaches: whatever closes the connection, this limit did not.
const LONG: Duration = Duration::from_secs(30);
/// How long a test waits for a connection the server should close. Far above `SHORT`: it
/// bounds, it does not measure.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// A `Server` on `127.0.0.1:0`, stopped when dropped.
struct Running {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }
}

/// Serves `service` with the limits `configure` sets.
async fn limited<S>(service: S, configure: impl FnOnce(Server<S>) -> Server<S>) -> Running
where
    S: tower::Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (listener, _) = listener().await;
    let addr = listener.local_addr().expect("addr");
    let server = configure(Server::new(listener, service));
    let task = tokio::spawn(async move {
        server.serve().await.expect("valid limits");
    });
    Running { addr, task }
}

/// Answers `ok` at once.
fn ok() -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

/// Never answers.
fn hanging() -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    service_fn(|_: Request<Incoming>| {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
    })
}

/// Sends one keep-alive `GET /` and reads its whole response, leaving the connection open.
async fn exchange(stream: &mut TcpStream) -> String {
    request(stream, GET).await
}

/// Sends `head` and reads the whole response (head and `Content-Length` body).
async fn request(stream: &mut TcpStream, head: &[u8]) -> String {
    stream.write_all(head).await.expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().expect("length"));
                if answer.len() >= head_end + 4 + length {
                    return String::from_utf8(answer.clone()).expect("UTF-8");
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed before the response: {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(CLOSE_BOUND, read)
        .await
        .expect("no response")
}

/// Reads until the server closes the connection (end of stream or reset) and returns what it
/// sent; panics if it is still open after `CLOSE_BOUND`.
async fn closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(CLOSE_BOUND, read)
        .await
        .expect("the server kept the connection open");
    received
}

/// Whether the connection is still open and silent after `wait`.
async fn open_after(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut chunk))
        .await
        .is_err()
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off_after_the_header_read_timeout() {
    let server = limited(ok(), |s| s.header_read_timeout(SHORT).idle_timeout(LONG)).await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("write");
    let received = closed(&mut slow).await;
    assert!(
        received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn a_silent_client_and_a_partial_http2_preface_are_cut_off_after_the_header_read_timeout() {
    // hyper-util's protocol detection reads the first bytes with no timer of its own.
    let server = limited(ok(), |s| s.header_read_timeout(SHORT).idle_timeout(LONG)).await;
    let mut silent = server.connect().await;
    let mut preface = server.connect().await;
    preface
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("write");
    assert_eq!(closed(&mut silent).await, b"");
    assert_eq!(closed(&mut preface).await, b"");
}

#[tokio::test]
async fn a_partial_head_after_a_keep_alive_request_is_cut_off_after_the_header_read_timeout() {
    let server = limited(ok(), |s| s.header_read_timeout(SHORT).idle_timeout(LONG)).await;
    let mut client = server.connect().await;
    assert!(exchange(&mut client).await.starts_with("HTTP/1.1 200"));
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: 127")
        .await
        .expect("write");
    assert_eq!(closed(&mut client).await, b"");
}

#[tokio::test]
async fn an_http1_connection_waiting_for_its_next_request_gets_the_header_read_timeout() {
    // hyper's header timer starts as soon as the connection waits for the next request head.
    let server = limited(ok(), |s| s.header_read_timeout(SHORT).idle_timeout(LONG)).await;
    let mut client = server.connect().await;
    assert!(exchange(&mut client).await.starts_with("HTTP/1.1 200"));
    assert_eq!(closed(&mut client).await, b"");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = limited(ok(), |s| s.header_read_timeout(LONG).idle_timeout(SHORT)).await;
    let mut client = server.connect().await;
    assert!(exchange(&mut client).await.starts_with("HTTP/1.1 200"));
    assert_eq!(closed(&mut client).await, b"");
}

#[tokio::test]
async fn a_connection_used_within_the_idle_window_stays_open() {
    let server = limited(ok(), |s| s.header_read_timeout(LONG).idle_timeout(SHORT)).await;
    let mut client = server.connect().await;
    let started = Instant::now();
    // Well past the idle timeout in total, never idle for a third of it.
    while started.elapsed() < 4 * SHORT {
        assert!(exchange(&mut client).await.ends_with("ok"));
        tokio::time::sleep(SHORT / 3).await;
    }
    assert!(exchange(&mut client).await.ends_with("ok"), "still open");
}

#[tokio::test]
async fn a_request_in_flight_is_not_idle() {
    // `/slow` answers late and `/stream` sends an SSE-like body slowly, each past the idle
    // timeout; the connection stays usable after both (a connection closed for idleness
    // meanwhile would be closed after the response).
    let service = service_fn(|request: Request<Incoming>| async move {
        let body = match request.uri().path() {
            "/slow" => {
                tokio::time::sleep(3 * SHORT).await;
                Either::Left(Full::new(Bytes::from_static(b"late")))
            }
            "/stream" => {
                let ticks = futures_util::stream::unfold(0u8, |sent| async move {
                    tokio::time::sleep(SHORT).await;
                    let frame = hyper::body::Frame::data(Bytes::from_static(b"tick\n"));
                    (sent < 3).then_some((Ok::<_, Infallible>(frame), sent + 1))
                });
                Either::Right(http_body_util::StreamBody::new(ticks))
            }
            _ => Either::Left(Full::new(Bytes::from_static(b"ok"))),
        };
        Ok::<_, Infallible>(Response::new(body))
    });
    let (listener, _) = listener().await;
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(listener, service)
        .header_read_timeout(LONG)
        .idle_timeout(SHORT);
    let task = tokio::spawn(server.serve());
    let mut client = TcpStream::connect(addr).await.expect("connect");

    let slow = request(
        &mut client,
        b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert!(slow.ends_with("late"), "{slow}");

    client
        .write_all(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut streamed = Vec::new();
    let mut chunk = [0u8; 4096];
    while !streamed.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(CLOSE_BOUND, client.read(&mut chunk))
            .await
            .expect("the stream goes on")
            .expect("read");
        assert!(
            n > 0,
            "closed mid-stream: {:?}",
            String::from_utf8_lossy(&streamed)
        );
        streamed.extend_from_slice(&chunk[..n]);
    }
    let streamed = String::from_utf8(streamed).expect("UTF-8");
    assert_eq!(streamed.matches("tick").count(), 3, "{streamed}");
    assert!(
        !streamed.to_ascii_lowercase().contains("connection: close"),
        "{streamed}"
    );

    assert!(
        exchange(&mut client).await.ends_with("ok"),
        "still open after both"
    );
    task.abort();
}

#[tokio::test]
async fn a_connection_over_the_limit_waits_until_one_closes() {
    let server = limited(ok(), |s| {
        s.header_read_timeout(LONG)
            .idle_timeout(LONG)
            .max_connections(2)
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    assert!(exchange(&mut first).await.ends_with("ok"));
    assert!(exchange(&mut second).await.ends_with("ok"));

    // The third connects (the operating system's backlog) but is not served...
    let mut third = server.connect().await;
    third.write_all(GET).await.expect("write");
    assert!(
        open_after(&mut third, 3 * SHORT).await,
        "served over the limit"
    );
    // ... until a place is free.
    drop(first);
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.ends_with(b"ok") {
        let n = tokio::time::timeout(CLOSE_BOUND, third.read(&mut chunk))
            .await
            .expect("served once a place is free")
            .expect("read");
        assert!(n > 0, "closed instead of served");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert!(
        exchange(&mut second).await.ends_with("ok"),
        "the others stay"
    );
}

#[tokio::test]
async fn zero_limits_are_refused_before_serving() {
    let (listener, _) = listener().await;
    let refused = Server::new(listener, ok())
        .idle_timeout(Duration::ZERO)
        .serve()
        .await;
    assert!(
        matches!(
            refused,
            Err(mcp_auth::ConfigError::ZeroSetting {
                setting: "idle_timeout",
                ..
            })
        ),
        "{refused:?}"
    );
}

// HTTP/2 by hand: the frames a client sends, enough to open a stream and answer PINGs.

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const HEADERS: u8 = 0x1;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("small frame");
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Connects with the HTTP/2 preface, an empty SETTINGS frame and, on stream 1, `GET /`
/// (HPACK: `:method GET`, `:scheme http`, `:path /` from the static table, `:authority`
/// literal).
async fn h2_get(server: &Running) -> TcpStream {
    let mut stream = server.connect().await;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 9];
    block.extend_from_slice(b"127.0.0.1");
    hello.extend(frame(HEADERS, 0x1 | 0x4, 1, &block)); // END_STREAM | END_HEADERS
    stream.write_all(&hello).await.expect("write");
    stream
}

/// Reads frames until the server closes the connection, acknowledging its SETTINGS (and its
/// PINGs when `answer_pings`); returns the frame types received. Panics if still open after
/// `CLOSE_BOUND`.
async fn h2_frames_until_closed(stream: &mut TcpStream, answer_pings: bool) -> Vec<u8> {
    let mut kinds = Vec::new();
    let read = async {
        loop {
            let mut head = [0u8; 9];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let length =
                usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let mut payload = vec![0u8; length];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
            kinds.push(kind);
            let answer = match kind {
                SETTINGS if flags & ACK == 0 => Some(frame(SETTINGS, ACK, 0, &[])),
                PING if flags & ACK == 0 && answer_pings => Some(frame(PING, ACK, 0, &payload)),
                _ => None,
            };
            if let Some(answer) = answer
                && stream.write_all(&answer).await.is_err()
            {
                return;
            }
        }
    };
    tokio::time::timeout(CLOSE_BOUND, read)
        .await
        .expect("the server kept the HTTP/2 connection open");
    kinds
}

#[tokio::test]
async fn an_idle_http2_connection_gets_goaway_after_the_idle_timeout() {
    let server = limited(ok(), |s| s.header_read_timeout(LONG).idle_timeout(SHORT)).await;
    let mut client = h2_get(&server).await;
    let kinds = h2_frames_until_closed(&mut client, true).await;
    assert!(
        kinds.contains(&HEADERS),
        "the request was answered: {kinds:?}"
    );
    assert!(kinds.contains(&GOAWAY), "closed with GOAWAY: {kinds:?}");
}

#[tokio::test]
async fn an_http2_client_that_does_not_answer_pings_is_closed_even_mid_request() {
    // The request never ends, so the connection is never idle; only the PING finds out.
    let server = limited(hanging(), |s| {
        s.header_read_timeout(LONG)
            .idle_timeout(LONG)
            .http2_keep_alive_interval(SHORT)
    })
    .await;
    let mut client = h2_get(&server).await;
    let kinds = h2_frames_until_closed(&mut client, false).await;
    assert!(kinds.contains(&PING), "pinged: {kinds:?}");
    assert!(!kinds.contains(&HEADERS), "never answered: {kinds:?}");
}
