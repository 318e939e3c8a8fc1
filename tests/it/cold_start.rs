//! Cold start: a server that has not yet fetched anything receives a burst of concurrent first
//! requests. Every one of them needs the authorization server's metadata (for its `jwks_uri`)
//! and its keys, yet the authorization server must see exactly one discovery request and one
//! JWKS request, counted by the test authorization server itself.
#![cfg(feature = "test-util")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::JwsAlgorithm;
use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::Barrier;

const RESOURCE: &str = "https://mcp.example.com/mcp";
const REQUESTS: usize = 1000;
/// Distinct tokens among the requests, over three algorithms of one JWKS, so that the test
/// does not depend on requests for the same token sharing a verification.
const DISTINCT_TOKENS: usize = 30;
/// The authorization server answers discovery and JWKS requests this late, so that the first
/// requests are still waiting when the others arrive.
const AS_DELAY: Duration = Duration::from_millis(500);

async fn whoami(auth: AuthInfo) -> String {
    auth.subject.unwrap_or_default()
}

/// Serves `/mcp` behind the JWT bearer guard of a resource whose authorization server is
/// discovered on first use. Returns the base URL.
async fn serve(issuer: &TestAuthServer) -> String {
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::discover(issuer.issuer(), AuthServerType::Oidc)),
        )
        .build()
        .expect("configuration");
    let guard = auth
        .bearer_auth_jwt(RESOURCE)
        .required_scopes(["read"])
        .build()
        .expect("guard");
    let app = Router::new()
        .route("/mcp", post(whoami))
        .layer(guard.layer());
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn discovery_requests(issuer: &TestAuthServer) -> usize {
    issuer.request_count(Endpoint::OidcMetadata) + issuer.request_count(Endpoint::OAuthMetadata)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_first_requests_cause_one_discovery_and_one_jwks_fetch() {
    let issuer = TestAuthServer::start()
        .await
        .expect("the test authorization server starts");
    issuer.fail(Endpoint::OidcMetadata, Fault::Delay(AS_DELAY));
    issuer.fail(Endpoint::Jwks, Fault::Delay(AS_DELAY));
    let url = format!("{}/mcp", serve(&issuer).await);
    let algs = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ];
    let tokens: Vec<Arc<str>> = (0..DISTINCT_TOKENS)
        .map(|i| {
            issuer
                .token()
                .alg(algs[i % algs.len()])
                .audience(RESOURCE)
                .scope("read")
                .sign()
                .into()
        })
        .collect();
    assert_eq!(discovery_requests(&issuer), 0);
    assert_eq!(issuer.request_count(Endpoint::Jwks), 0);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let start = Arc::new(Barrier::new(REQUESTS));
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (client, url, start) = (client.clone(), url.clone(), Arc::clone(&start));
            let token = Arc::clone(&tokens[i % tokens.len()]);
            tokio::spawn(async move {
                start.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(&*token)
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status();
                (status, response.text().await.expect("a body"))
            })
        })
        .collect();
    let mut accepted = 0;
    for request in requests {
        let (status, body) = request.await.expect("the request task completes");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, issuer.sample_user().subject);
        accepted += 1;
    }
    assert_eq!(accepted, REQUESTS);
    assert_eq!(
        discovery_requests(&issuer),
        1,
        "one discovery request for {REQUESTS} concurrent first requests"
    );
    assert_eq!(
        issuer.request_count(Endpoint::Jwks),
        1,
        "one JWKS request for {REQUESTS} concurrent first requests"
    );
}
