//! The actix-web adapter over real HTTP on loopback, against the test authorization server:
//! the middleware's challenges, the metadata routes, a whole MCP session (rmcp's Streamable
//! HTTP service behind the middleware, the tool reading `AuthInfo` with mcp-auth's rmcp
//! extractor) with a minted token, the `AuthInfo` actix extractor, and byte-for-byte equality of
//! every refusal and metadata answer with the tower path.
#![cfg(all(feature = "test-util", feature = "actix-web"))]

use std::convert::Infallible;
use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyDataStream, BodyExt, Full};
use mcp_auth::bearer::BearerChallenge;
use mcp_auth::integrations::actix::{BearerAuthMiddleware, metadata_routes};
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, BearerAuth, McpAuth, MetadataService, ProtectedResource,
};
use rmcp::model::CallToolResult;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_router};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

/// The protocol version with an `initialize` handshake and sessions.
const PROTOCOL_VERSION: &str = "2025-11-25";

/// An actix app on a loopback port, the authorization server it trusts and the guard.
struct Fixture {
    auth_server: TestAuthServer,
    base: String,
    resource: String,
    auth: McpAuth,
    guard: BearerAuth,
    handle: ServerHandle,
    http: reqwest::Client,
}

/// The MCP server of the tests: one tool returning the caller's verified identity, read with
/// mcp-auth's rmcp extractor.
#[derive(Clone)]
struct WhoAmI;

#[tool_router(server_handler)]
impl WhoAmI {
    #[tool(description = "Returns the verified identity of the caller")]
    async fn whoami(&self, info: AuthInfo) -> CallToolResult {
        CallToolResult::structured(json!({
            "sub": info.subject,
            "issuer": info.issuer,
            "client_id": info.client_id,
            "scopes": info.scopes,
            "name": info.claim("name"),
            "email": info.claim("email"),
            "username": info.claim("username"),
        }))
    }
}

type McpService = StreamableHttpService<WhoAmI, LocalSessionManager>;

/// rmcp's service with its defaults (sessions, SSE answers).
fn mcp_service() -> McpService {
    StreamableHttpService::new(
        || Ok(WhoAmI),
        Default::default(),
        StreamableHttpServerConfig::default(),
    )
}

/// The bridge of `examples/whoami_actix.rs`: the actix request, with the `AuthInfo` the
/// middleware verified, handed to rmcp (`http` 1.x), and rmcp's answer copied back.
async fn mcp_endpoint(
    request: HttpRequest,
    body: web::Bytes,
    mcp: web::Data<McpService>,
) -> HttpResponse {
    let mut bridged = Request::builder()
        .method(request.method().as_str())
        .uri(request.uri().to_string());
    for (name, value) in request.headers() {
        bridged = bridged.header(name.as_str(), value.as_bytes());
    }
    let mut bridged = bridged
        .body(Full::new(body))
        .expect("an actix request is a valid http request");
    if let Some(info) = request.extensions().get::<AuthInfo>() {
        bridged.extensions_mut().insert(info.clone());
    }
    let (parts, body) = mcp.handle(bridged).await.into_parts();
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(parts.status.as_u16()).unwrap());
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    response.streaming(BodyDataStream::new(body))
}

/// A handler answering the extracted caller's subject.
async fn me(info: AuthInfo) -> HttpResponse {
    HttpResponse::Ok().body(info.subject.unwrap_or_default())
}

async fn maybe_me(info: Option<AuthInfo>) -> HttpResponse {
    HttpResponse::Ok().body(
        info.and_then(|i| i.subject)
            .unwrap_or_else(|| "anonymous".into()),
    )
}

fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    (listener, format!("http://127.0.0.1:{port}"))
}

fn serve<F>(listener: TcpListener, configure: F) -> ServerHandle
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("actix listens on the bound port")
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    handle
}

/// The guard of a resource trusting `auth_server`, with a fresh JWT verifier.
fn guard_for(auth: &McpAuth, resource: &str, auth_server: &AuthServer) -> BearerAuth {
    let verifier = JwtVerifier::builder()
        .authorization_server(auth_server.clone())
        .build()
        .expect("a valid JWT verifier");
    auth.bearer_auth(resource, verifier)
        .required_scopes(["read"])
        .show_error_details(true)
        .build()
        .expect("a configured resource")
}

impl Fixture {
    /// The app: metadata routes; `/mcp` (rmcp) and `/api/me` behind the middleware; `/down/me`
    /// behind a guard whose keys cannot be fetched (armed by the test); `/app-data/me` with the
    /// guard as app data only; `/unguarded/me` and `/maybe/me` with neither.
    async fn start() -> Self {
        let auth_server = TestAuthServer::start()
            .await
            .expect("the test authorization server starts");
        let (listener, base) = bind();
        let resource = format!("{base}/mcp");
        let server = AuthServer::discover(auth_server.issuer(), AuthServerType::OAuth);
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.as_str())
                    .authorization_server(server.clone())
                    .scopes_supported(["read", "write"]),
            )
            .build()
            .expect("a valid configuration");
        let guard = guard_for(&auth, &resource, &server);
        let down_guard = guard_for(&auth, &resource, &server);

        let metadata = auth.metadata_service();
        let mcp = web::Data::new(mcp_service());
        let app_guard = guard.clone();
        let handle = serve(listener, move |config: &mut web::ServiceConfig| {
            config
                .configure(metadata_routes(metadata.clone()))
                .service(
                    web::resource("/mcp")
                        .wrap(BearerAuthMiddleware::new(app_guard.clone()))
                        .app_data(mcp.clone())
                        .route(web::route().to(mcp_endpoint)),
                )
                .service(
                    web::scope("/api")
                        .wrap(app_guard.actix_middleware())
                        .route("/me", web::get().to(me)),
                )
                .service(
                    web::scope("/down")
                        .wrap(down_guard.actix_middleware())
                        .route("/me", web::get().to(me)),
                )
                .service(
                    web::scope("/app-data")
                        .app_data(app_guard.clone())
                        .route("/me", web::get().to(me)),
                )
                .route("/unguarded/me", web::get().to(me))
                .route("/maybe/me", web::get().to(maybe_me))
                .route(
                    "/.well-known/other",
                    web::get().to(|| async { HttpResponse::Ok().body("app route") }),
                );
        });
        Self {
            auth_server,
            base,
            resource,
            auth,
            guard,
            handle,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .expect("a reqwest client"),
        }
    }

    /// A valid token for the resource with `scope`, carrying the sample user's profile claims.
    fn token(&self, scope: &str) -> String {
        let user = self.auth_server.sample_user();
        self.auth_server
            .token()
            .audience(self.resource.as_str())
            .scope(scope)
            .claim("name", user.name.clone().unwrap_or_default())
            .claim("email", user.email.clone().unwrap_or_default())
            .claim("username", user.username.clone().unwrap_or_default())
            .sign()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.auth_server.shutdown().await;
    }
}

/// Status, headers (without the ones each server adds itself) and body of a response.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// Headers every HTTP server adds on its own; `Content-Length` is compared separately where it
/// matters.
fn is_server_added(name: &str) -> bool {
    matches!(name, "date" | "content-length")
}

fn sorted_headers<'a>(
    headers: impl Iterator<Item = (&'a http::HeaderName, &'a http::HeaderValue)>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = headers
        .filter(|(name, _)| !is_server_added(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    headers
}

async fn answer_of(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = sorted_headers(response.headers().iter());
    let body = response.bytes().await.expect("a readable body");
    Answer {
        status,
        headers,
        body,
    }
}

/// The tower path: the same guard as a `BearerAuthLayer` around a service answering 200.
async fn tower_answer(guard: &BearerAuth, authorization: &[&str]) -> Answer {
    let service = guard
        .layer()
        .layer(service_fn(|_request: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
        }));
    let mut request = Request::builder().method("POST").uri("/mcp");
    for value in authorization {
        request = request.header(http::header::AUTHORIZATION, *value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = service.oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = sorted_headers(response.headers().iter());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

async fn actix_answer(fixture: &Fixture, path: &str, authorization: &[&str]) -> Answer {
    let mut request = fixture.http.post(fixture.url(path));
    for value in authorization {
        request = request.header(reqwest::header::AUTHORIZATION, *value);
    }
    answer_of(request.send().await.expect("the actix server answers")).await
}

fn challenge(answer: &Answer) -> BearerChallenge {
    let value = answer
        .headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.clone())
        .expect("a WWW-Authenticate header");
    BearerChallenge::parse(&value).expect("a well-formed Bearer challenge")
}

fn json_body(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

/// POSTs one JSON-RPC message to the MCP endpoint.
async fn mcp_post(
    fixture: &Fixture,
    token: &str,
    session: Option<&str>,
    message: Value,
) -> reqwest::Response {
    let mut request = fixture
        .http
        .post(fixture.url("/mcp"))
        .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        )
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(message.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.send().await.expect("the MCP endpoint answers")
}

/// The JSON-RPC response with `id` in a JSON or SSE answer.
async fn rpc_result(response: reqwest::Response, id: u64) -> Value {
    let is_sse = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    let text = response.text().await.expect("a readable body");
    let messages: Vec<Value> = if is_sse {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    } else {
        vec![serde_json::from_str(&text).expect("a JSON-RPC answer")]
    };
    messages
        .into_iter()
        .find(|message| message["id"] == json!(id))
        .unwrap_or_else(|| panic!("no JSON-RPC response with id {id} in {text:?}"))
}

#[actix_web::test]
async fn request_without_token_gets_401_pointing_to_metadata_whose_resource_is_the_url_called() {
    let fixture = Fixture::start().await;

    let answer = actix_answer(&fixture, "/mcp", &[]).await;
    assert_eq!(answer.status, 401);
    let challenge = challenge(&answer);
    assert_eq!(challenge.error, None);
    assert_eq!(challenge.scope, ["read"]);
    let metadata_url = challenge
        .resource_metadata
        .expect("resource_metadata in the challenge");
    assert_eq!(
        metadata_url,
        fixture.url("/.well-known/oauth-protected-resource/mcp")
    );

    let response = fixture
        .http
        .get(&metadata_url)
        .send()
        .await
        .expect("metadata answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let metadata: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(metadata["resource"], fixture.url("/mcp"));
    assert_eq!(
        metadata["authorization_servers"],
        json!([fixture.auth_server.issuer()])
    );
    assert_eq!(metadata["scopes_supported"], json!(["read", "write"]));

    fixture.stop().await;
}

#[actix_web::test]
async fn minted_token_initializes_an_mcp_session_and_whoami_returns_its_claims() {
    let fixture = Fixture::start().await;
    let token = fixture.token("read write");

    let response = mcp_post(
        &fixture,
        &token,
        None,
        json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "actix-adapter-test", "version": "0"}
            }
        }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|value| value.to_str().expect("an ASCII session id").to_owned());
    assert!(
        session.is_some(),
        "rmcp opens a session for {PROTOCOL_VERSION}"
    );
    let initialized = rpc_result(response, 1).await;
    assert!(
        initialized["result"]["serverInfo"].is_object(),
        "{initialized}"
    );

    let response = mcp_post(
        &fixture,
        &token,
        session.as_deref(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());

    let response = mcp_post(
        &fixture,
        &token,
        session.as_deref(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let called = rpc_result(response, 2).await;
    let who = &called["result"]["structuredContent"];
    let user = fixture.auth_server.sample_user();
    assert_eq!(who["sub"], json!(user.subject), "{called}");
    assert_eq!(who["issuer"], fixture.auth_server.issuer());
    assert_eq!(who["client_id"], "test-client");
    assert_eq!(who["scopes"], json!(["read", "write"]));
    assert_eq!(who["name"], json!(user.name));
    assert_eq!(who["email"], json!(user.email));
    assert_eq!(who["username"], json!(user.username));

    fixture.stop().await;
}

#[actix_web::test]
async fn wrong_audience_token_gets_401_invalid_token() {
    let fixture = Fixture::start().await;
    let token = fixture
        .auth_server
        .token()
        .audience("http://127.0.0.1:1/other")
        .scope("read")
        .sign();

    let answer = actix_answer(&fixture, "/mcp", &[&format!("Bearer {token}")]).await;
    assert_eq!(answer.status, 401);
    let challenge = challenge(&answer);
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(
        challenge.resource_metadata,
        Some(fixture.url("/.well-known/oauth-protected-resource/mcp"))
    );
    assert_eq!(json_body(&answer)["cause"]["code"], "invalid_audience");

    fixture.stop().await;
}

#[actix_web::test]
async fn token_without_required_scope_gets_403_insufficient_scope() {
    let fixture = Fixture::start().await;
    let token = fixture.token("write");

    let answer = actix_answer(&fixture, "/mcp", &[&format!("Bearer {token}")]).await;
    assert_eq!(answer.status, 403);
    let challenge = challenge(&answer);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
    assert!(challenge.resource_metadata.is_some());
    assert_eq!(json_body(&answer)["missing_scopes"], json!(["read"]));

    fixture.stop().await;
}

#[actix_web::test]
async fn every_refusal_is_byte_identical_to_the_tower_layer() {
    let fixture = Fixture::start().await;
    let wrong_audience = fixture
        .auth_server
        .token()
        .audience("https://elsewhere.example/mcp")
        .scope("read")
        .sign();
    let missing_scope = fixture.token("write");
    let wrong_audience = format!("Bearer {wrong_audience}");
    let missing_scope = format!("Bearer {missing_scope}");

    let cases: [(&str, Vec<&str>, u16); 8] = [
        ("no header", vec![], 401),
        ("Basic scheme", vec!["Basic dXNlcjpwYXNz"], 401),
        ("Bearer alone", vec!["Bearer"], 400),
        (
            "two Authorization headers",
            vec!["Bearer a", "Bearer b"],
            400,
        ),
        ("malformed credentials", vec!["Bearer a b"], 400),
        ("garbage token", vec!["Bearer not-a-jwt"], 401),
        ("wrong audience", vec![wrong_audience.as_str()], 401),
        ("missing scope", vec![missing_scope.as_str()], 403),
    ];
    for (case, authorization, status) in &cases {
        let actix = actix_answer(&fixture, "/mcp", authorization).await;
        let tower = tower_answer(&fixture.guard, authorization).await;
        assert_eq!(actix.status, *status, "{case}: {actix:?}");
        assert_eq!(actix, tower, "{case}");
        assert!(
            actix
                .headers
                .iter()
                .any(|(name, _)| name == "www-authenticate"),
            "{case}"
        );
    }

    // Authorization server unavailable: the keys of a fresh verifier cannot be fetched.
    fixture.auth_server.fail(Endpoint::Jwks, Fault::Status(503));
    let token = format!("Bearer {}", fixture.token("read"));
    let actix = actix_answer(&fixture, "/down/me", &[&token]).await;
    let down_guard = guard_for(
        &fixture.auth,
        &fixture.resource,
        &AuthServer::discover(fixture.auth_server.issuer(), AuthServerType::OAuth),
    );
    let tower = tower_answer(&down_guard, &[&token]).await;
    assert_eq!(actix.status, 503, "{actix:?}");
    assert_eq!(actix, tower);
    assert!(
        actix
            .headers
            .iter()
            .all(|(name, _)| name != "www-authenticate")
    );
    assert_eq!(json_body(&actix)["error"], "temporarily_unavailable");

    fixture.stop().await;
}

#[actix_web::test]
async fn metadata_routes_answer_exactly_like_the_metadata_service() {
    let fixture = Fixture::start().await;
    let metadata: MetadataService = fixture.auth.metadata_service();
    let path = "/.well-known/oauth-protected-resource/mcp";

    for method in ["GET", "HEAD", "OPTIONS", "POST", "DELETE", "PUT"] {
        let reqwest_method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = fixture
            .http
            .request(reqwest_method, fixture.url(path))
            .header("origin", "https://inspector.example")
            .send()
            .await
            .expect("the metadata route answers");
        let length = response.headers().get("content-length").cloned();
        let actix = answer_of(response).await;

        let expected = metadata
            .respond(&http::Method::from_bytes(method.as_bytes()).unwrap(), path)
            .await
            .expect("a metadata path");
        let expected_length = expected.headers().get("content-length").cloned();
        let expected = Answer {
            status: expected.status().as_u16(),
            headers: sorted_headers(expected.headers().iter()),
            body: expected.body().clone(),
        };
        assert_eq!(actix, expected, "{method}");
        if let Some(expected_length) = expected_length {
            assert_eq!(
                length.as_ref().and_then(|v| v.to_str().ok()),
                expected_length.to_str().ok(),
                "{method}: Content-Length"
            );
        }
    }

    let get = answer_of(fixture.http.get(fixture.url(path)).send().await.unwrap()).await;
    assert_eq!(get.status, 200);
    assert!(
        get.headers
            .iter()
            .any(|(name, value)| name == "cache-control" && value.starts_with("public, max-age="))
    );
    let options = answer_of(
        fixture
            .http
            .request(reqwest::Method::OPTIONS, fixture.url(path))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(options.status, 204);
    let delete = answer_of(fixture.http.delete(fixture.url(path)).send().await.unwrap()).await;
    assert_eq!(delete.status, 405);
    assert!(
        delete
            .headers
            .iter()
            .any(|(name, value)| name == "allow" && value == "GET, HEAD, OPTIONS")
    );

    fixture.stop().await;
}

#[actix_web::test]
async fn paths_the_metadata_service_does_not_serve_fall_through_to_the_app() {
    let fixture = Fixture::start().await;

    let other = fixture
        .http
        .get(fixture.url("/.well-known/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.text().await.unwrap(), "app route");
    let missing = fixture
        .http
        .get(fixture.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let neighbour = fixture
        .http
        .get(fixture.url("/.well-known/oauth-protected-resource/mcp/extra"))
        .send()
        .await
        .unwrap();
    assert_eq!(neighbour.status(), 404);

    fixture.stop().await;
}

#[actix_web::test]
async fn extractor_reads_the_middleware_result_or_authenticates_with_the_app_data_guard() {
    let fixture = Fixture::start().await;
    let token = format!("Bearer {}", fixture.token("read"));
    let subject = fixture.auth_server.sample_user().subject.clone();

    for path in ["/api/me", "/app-data/me"] {
        let response = fixture
            .http
            .get(fixture.url(path))
            .header("authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), subject, "{path}");
    }

    // Without a token the app-data guard refuses exactly as the middleware does.
    let guarded = answer_of(
        fixture
            .http
            .get(fixture.url("/api/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let app_data = answer_of(
        fixture
            .http
            .get(fixture.url("/app-data/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(guarded.status, 401);
    assert_eq!(app_data, guarded);

    fixture.stop().await;
}

#[actix_web::test]
async fn extractor_without_middleware_or_guard_answers_500_and_option_gives_none() {
    let fixture = Fixture::start().await;
    let token = format!("Bearer {}", fixture.token("read"));

    let answer = answer_of(
        fixture
            .http
            .get(fixture.url("/unguarded/me"))
            .header("authorization", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 500);
    assert!(
        !answer
            .headers
            .iter()
            .any(|(name, _)| name == "www-authenticate")
    );
    let body = json_body(&answer);
    assert_eq!(body["error"], "server_error");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("BearerAuthMiddleware")),
        "{body}"
    );

    let maybe = fixture
        .http
        .get(fixture.url("/maybe/me"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(maybe.status(), 200);
    assert_eq!(maybe.text().await.unwrap(), "anonymous");

    fixture.stop().await;
}

#[actix_web::test]
async fn authorization_server_mode_metadata_is_served_like_the_metadata_service() {
    let auth_server = TestAuthServer::start()
        .await
        .expect("the test authorization server starts");
    #[allow(deprecated)]
    let auth = mcp_auth::DelegatedAuth::new(AuthServer::discover(
        auth_server.issuer(),
        AuthServerType::OAuth,
    ))
    .expect("a valid configuration");
    let metadata = auth.metadata_service();
    let (listener, base) = bind();
    let served = metadata.clone();
    let handle = serve(listener, move |config: &mut web::ServiceConfig| {
        config.configure(metadata_routes(served.clone()));
    });
    let path = "/.well-known/oauth-authorization-server";

    let actix = answer_of(
        reqwest::get(format!("{base}{path}"))
            .await
            .expect("the route answers"),
    )
    .await;
    let expected = metadata
        .respond(&http::Method::GET, path)
        .await
        .expect("a metadata path");
    assert_eq!(actix.status, 200);
    assert_eq!(actix.headers, sorted_headers(expected.headers().iter()));
    assert_eq!(actix.body, expected.body());
    let document: Value = serde_json::from_slice(&actix.body).expect("a JSON document");
    assert_eq!(document["issuer"], auth_server.issuer());

    handle.stop(true).await;
    auth_server.shutdown().await;
}
