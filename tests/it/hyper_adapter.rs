//! The hyper adapter over real HTTP: `McpRouter` (metadata, the guarded MCP path, 404) and
//! `Server` (hyper-util auto builder through `TowerToHyperService`, graceful shutdown).
//! The full whoami contract on hyper is in `tests/whoami_example.rs` (`hyper_stack`).
#![cfg(feature = "test-util")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use mcp_auth::integrations::hyper::{McpRouter, Server};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
use reqwest::{Method, StatusCode};
use tokio::net::TcpListener;
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
    server: tokio::task::JoinHandle<()>,
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
        .expect("no panic");
    let after = reqwest::Client::new()
        .get(format!("{}/mcp", app.base))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed");
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (listener, port) = listener().await;
    let slow = service_fn(|_: Request<Incoming>| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(listener, slow).serve_with_shutdown(async {
        let _ = stopped.await;
    }));
    let in_flight = tokio::spawn(reqwest::get(format!("http://127.0.0.1:{port}/")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).expect("signal");
    let response = in_flight
        .await
        .expect("task")
        .expect("the request completes");
    assert_eq!(response.text().await.expect("body"), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("returns")
        .expect("no panic");
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait_for_a_hanging_request() {
    let (listener, port) = listener().await;
    let hanging = service_fn(|_: Request<Incoming>| {
        std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(listener, hanging).shutdown_grace(Duration::from_millis(200));
    let server = tokio::spawn(server.serve_with_shutdown(async {
        let _ = stopped.await;
    }));
    let hung = tokio::spawn(reqwest::get(format!("http://127.0.0.1:{port}/")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("returns")
        .expect("no panic");
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
