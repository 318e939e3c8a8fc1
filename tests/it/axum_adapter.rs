//! The axum adapter over real HTTP: the metadata router, the bearer layer in each placement
//! axum offers, and `AuthInfo` / `Option<AuthInfo>` as extractors.
#![cfg(feature = "test-util")]

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Router};
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::integrations::axum::AuthInfoRejection;
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, BearerAuth, McpAuth, ProtectedResource};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tower::Layer;

struct Fixture {
    issuer: TestAuthServer,
    listener: TcpListener,
    base: String,
    resource: String,
    auth: McpAuth,
    guard: BearerAuth,
}

impl Fixture {
    /// A listener on a free port, and an `McpAuth` for `http://localhost:<port>/mcp`.
    async fn new() -> Self {
        let issuer = TestAuthServer::start().await.expect("authorization server");
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let base = format!(
            "http://localhost:{}",
            listener.local_addr().expect("addr").port()
        );
        let resource = format!("{base}/mcp");
        let server = AuthServer::discover(issuer.issuer(), AuthServerType::Oidc);
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.clone())
                    .authorization_server(server.clone())
                    .scopes_supported(["read", "write"]),
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
        Self {
            issuer,
            listener,
            base,
            resource,
            auth,
            guard,
        }
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    /// Serves `app`; the fixture keeps the authorization server alive.
    fn serve(self, app: Router) -> Served {
        let listener = self.listener;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Served {
            task,
            issuer: self.issuer,
            base: self.base,
            resource: self.resource,
        }
    }
}

struct Served {
    task: tokio::task::JoinHandle<()>,
    issuer: TestAuthServer,
    base: String,
    resource: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Served {
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

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, Option<BearerChallenge>, String) {
        let response = self.send(Method::GET, path, token).await;
        let status = response.status();
        let challenge = response.headers().get("www-authenticate").map(|v| {
            BearerChallenge::parse(v.to_str().expect("ASCII")).expect("a Bearer challenge")
        });
        (status, challenge, response.text().await.expect("body"))
    }
}

async fn whoami(auth: AuthInfo) -> String {
    auth.subject.unwrap_or_default()
}

async fn maybe_whoami(auth: Option<AuthInfo>) -> String {
    auth.and_then(|a| a.subject)
        .unwrap_or_else(|| "anonymous".into())
}

#[tokio::test]
async fn metadata_router_serves_the_document_with_cors_and_all_methods() {
    let fixture = Fixture::new().await;
    let resource = fixture.resource.clone();
    let app = Router::new().merge(fixture.auth.metadata_router());
    let served = fixture.serve(app);
    let path = "/.well-known/oauth-protected-resource/mcp";

    let response = served.send(Method::GET, path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .expect("ASCII")
            .contains("max-age=")
    );
    let metadata: Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
    assert_eq!(metadata["resource"], resource);
    assert_eq!(metadata["authorization_servers"][0], served.issuer.issuer());
    assert_eq!(
        metadata["scopes_supported"],
        serde_json::json!(["read", "write"])
    );

    let head = served.send(Method::HEAD, path, None).await;
    assert_eq!(head.status(), StatusCode::OK);
    let options = served.send(Method::OPTIONS, path, None).await;
    assert_eq!(options.status(), StatusCode::NO_CONTENT);
    assert!(
        options
            .headers()
            .contains_key("access-control-allow-methods")
    );
    let post = served.send(Method::POST, path, None).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        served
            .send(
                Method::GET,
                "/.well-known/oauth-protected-resource/other",
                None
            )
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_delegated_mode_has_a_metadata_router_too() {
    let fixture = Fixture::new().await;
    #[allow(deprecated)]
    let delegated = mcp_auth::DelegatedAuth::new(AuthServer::discover(
        fixture.issuer.issuer(),
        AuthServerType::Oidc,
    ))
    .expect("delegated mode");
    #[allow(deprecated)]
    let app = Router::new().merge(delegated.metadata_router());
    let served = fixture.serve(app);
    let response = served
        .send(Method::GET, "/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let metadata: Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
    assert_eq!(metadata["issuer"], served.issuer.issuer());
}

#[tokio::test]
async fn route_layer_guards_the_routes_and_leaves_the_metadata_open() {
    let fixture = Fixture::new().await;
    let metadata_url = fixture.metadata_url();
    let app = Router::new()
        .route("/mcp", get(whoami))
        .route_layer(fixture.guard.layer())
        .merge(fixture.auth.metadata_router());
    let served = fixture.serve(app);

    let (status, challenge, _) = served.get("/mcp", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.expect("a challenge");
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some(metadata_url.as_str())
    );
    assert_eq!(challenge.scope, ["read"]);

    let (status, _, body) = served.get("/mcp", Some(&served.token("read"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

    let (status, _, _) = served
        .get("/.well-known/oauth-protected-resource/mcp", None)
        .await;
    assert_eq!(status, StatusCode::OK, "the metadata needs no token");
    // route_layer leaves unmatched paths alone: 404, not 401.
    assert_eq!(served.get("/nowhere", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn router_layer_refuses_wrong_audience_401_and_missing_scope_403() {
    let fixture = Fixture::new().await;
    let wrong_audience = fixture
        .issuer
        .token()
        .audience("http://localhost:1/other")
        .scope("read")
        .sign();
    let app = Router::new()
        .route("/mcp", get(whoami))
        .layer(fixture.guard.layer())
        .merge(fixture.auth.metadata_router());
    let served = fixture.serve(app);

    let (status, challenge, _) = served.get("/mcp", Some(&wrong_audience)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.expect("challenge").error.as_deref(),
        Some("invalid_token")
    );

    let (status, challenge, body) = served.get("/mcp", Some(&served.token("write"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = challenge.expect("challenge");
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["missing_scopes"], serde_json::json!(["read"]));

    // Merged after `.layer`, the metadata routes stay open.
    assert_eq!(
        served
            .get("/.well-known/oauth-protected-resource/mcp", None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn layer_around_a_nested_service_guards_everything_below_it() {
    let fixture = Fixture::new().await;
    let inner = Router::new()
        .route("/whoami", get(whoami))
        .route("/maybe", get(maybe_whoami));
    let app = Router::new()
        .nest_service("/api", fixture.guard.layer().layer(inner))
        .route("/public", get(maybe_whoami))
        .merge(fixture.auth.metadata_router());
    let served = fixture.serve(app);

    assert_eq!(
        served.get("/api/whoami", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let token = served.token("read write");
    assert_eq!(served.get("/api/whoami", Some(&token)).await.2, "alice");
    assert_eq!(served.get("/api/maybe", Some(&token)).await.2, "alice");
    // Outside the nested service there is no guard: `Option<AuthInfo>` is None.
    assert_eq!(
        served.get("/public", Some(&token)).await,
        (StatusCode::OK, None, "anonymous".to_owned())
    );
}

#[tokio::test]
async fn extractor_without_the_layer_answers_500_naming_the_layer() {
    // A route without the layer is a server bug: the one answer to a missing AuthInfo, also
    // when the route carries the guard as an extension (only the layer authenticates).
    let fixture = Fixture::new().await;
    let app = Router::new().route("/unguarded", get(whoami)).route(
        "/with-extension",
        get(whoami).layer(Extension(fixture.guard.clone())),
    );
    let served = fixture.serve(app);
    for path in ["/unguarded", "/with-extension"] {
        let (status, challenge, body) = served.get(path, Some("anything")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(challenge, None, "{path}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["error"], "server_error");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("BearerAuthLayer")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn handlers_can_take_a_result_to_see_the_rejection() {
    async fn explain(auth: Result<AuthInfo, AuthInfoRejection>) -> String {
        match auth {
            Ok(auth) => auth.subject.unwrap_or_default(),
            Err(rejection) => format!("{}: {}", rejection.rejection().status().as_u16(), rejection),
        }
    }
    let fixture = Fixture::new().await;
    let served = fixture.serve(Router::new().route("/explain", get(explain)));
    let (_, _, body) = served.get("/explain", None).await;
    assert!(
        body.starts_with("500: ") && body.contains("BearerAuthLayer"),
        "{body}"
    );
}

async fn preflight(served: &Served, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}{path}", served.base))
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight")
}

fn header_values(response: &reqwest::Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect()
}

// With a CORS layer in front (the guide's "Browser-based clients (CORS)"), preflights are
// answered and the challenge is exposed: `tests/whoami_example.rs` checks that on all three
// stacks, through the examples' shared policy.
#[tokio::test]
async fn without_a_cors_layer_the_guard_refuses_a_preflight_like_any_request_without_a_token() {
    let fixture = Fixture::new().await;
    let app = Router::new().route_service(
        "/mcp",
        fixture.guard.layer().layer(axum::routing::post(whoami)),
    );
    let served = fixture.serve(app);
    let response = preflight(&served, "/mcp").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(header_values(&response, "access-control-allow-origin").is_empty());
}
