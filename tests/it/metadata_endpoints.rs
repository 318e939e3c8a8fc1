//! The well-known metadata endpoints: exact bytes and headers for several resource shapes,
//! methods, CORS, and the deprecated authorization-server metadata, in-process and over HTTP.
#![cfg(feature = "test-util")]
#![allow(deprecated)] // DelegatedAuth is deprecated on purpose; it is tested here.

use std::time::Duration;

use crate::support::fixtures::as_metadata;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::{
    AuthServer, AuthServerType, DelegatedAuth, McpAuth, MetadataService, ProtectedResource,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = "https://auth.example.com";

fn resource(identifier: &str) -> ProtectedResource {
    ProtectedResource::new(identifier)
        .authorization_server(AuthServer::from_metadata(as_metadata(ISSUER)))
}

fn service_for(resources: impl IntoIterator<Item = ProtectedResource>) -> MetadataService {
    let mut builder = McpAuth::builder();
    for r in resources {
        builder = builder.protected_resource(r);
    }
    builder
        .build()
        .expect("valid configuration")
        .metadata_service()
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Calls the service as tower would, with a real `http::Request`.
async fn call(service: &MetadataService, method: Method, path: &str) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", "Bearer this-is-ignored")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

#[tokio::test]
async fn metadata_bytes_are_exact_for_each_resource_shape() {
    let cases = [
        ("https://h", "/.well-known/oauth-protected-resource"),
        ("https://h/", "/.well-known/oauth-protected-resource"),
        ("https://h/mcp", "/.well-known/oauth-protected-resource/mcp"),
        (
            "https://h:8443/a/b/",
            "/.well-known/oauth-protected-resource/a/b/",
        ),
        (
            "https://H.Example:443/Mcp",
            "/.well-known/oauth-protected-resource/Mcp",
        ),
    ];
    for (identifier, path) in cases {
        let service = service_for([resource(identifier)]);
        assert_eq!(service.paths().collect::<Vec<_>>(), [path], "{identifier}");
        let answer = call(&service, Method::GET, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{identifier}");
        let expected = format!(
            "{{\"resource\":\"{identifier}\",\"authorization_servers\":[\"https://auth.example.com\"]}}"
        );
        assert_eq!(answer.body, expected.as_bytes(), "{identifier}");
    }
}

#[tokio::test]
async fn a_path_resource_is_not_served_at_neighbouring_paths() {
    let service = service_for([resource("https://h:8443/a/b/")]);
    for path in [
        "/.well-known/oauth-protected-resource/a/b",
        "/.well-known/oauth-protected-resource",
        "/a/b/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/a/b//",
    ] {
        assert_eq!(
            call(&service, Method::GET, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert!(
            service.respond(&Method::GET, path).await.is_none(),
            "{path}"
        );
        assert!(!service.handles(path));
    }
}

#[tokio::test]
async fn configured_fields_are_served_in_a_fixed_order_and_empty_ones_omitted() {
    let service = service_for([resource("https://api.example.com/mcp")
        .scopes_supported(["read", "write"])
        .resource_name("Example")
        .metadata(|m| {
            m.resource_documentation("https://docs.example.com")
                .extra("resource_name#it", "Esempio")
                // Overridden: the published servers are the configured AuthServers.
                .authorization_servers(["https://ignored.example.com"])
        })]);
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    assert_eq!(
        answer.body,
        "{\"resource\":\"https://api.example.com/mcp\",\"authorization_servers\":[\"https://auth.example.com\"],\
         \"scopes_supported\":[\"read\",\"write\"],\"resource_name\":\"Example\",\
         \"resource_documentation\":\"https://docs.example.com\",\"resource_name#it\":\"Esempio\"}"
    );
}

#[tokio::test]
async fn get_answers_200_json_with_cors_and_cache_headers() {
    let service = service_for([resource("https://h/mcp")]);
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(answer.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(
        answer.header("content-length"),
        Some(answer.body.len().to_string().as_str())
    );
    let document: Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(document.is_object());
}

#[tokio::test]
async fn the_cache_max_age_is_configurable() {
    let service = service_for([resource("https://h/mcp")]).max_age(Duration::from_secs(60));
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    assert_eq!(answer.header("cache-control"), Some("public, max-age=60"));
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let service = service_for([resource("https://h/mcp")]);
    let get = call(
        &service,
        Method::GET,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    let head = call(
        &service,
        Method::HEAD,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    for name in [
        "content-type",
        "content-length",
        "cache-control",
        "access-control-allow-origin",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
}

#[tokio::test]
async fn options_preflight_answers_204_with_cors_headers() {
    let service = service_for([resource("https://h/mcp")]);
    let answer = call(
        &service,
        Method::OPTIONS,
        "/.well-known/oauth-protected-resource/mcp",
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        answer.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(
        answer.header("access-control-allow-headers"),
        Some("*, Authorization")
    );
    assert!(answer.header("access-control-max-age").is_some());
}

#[tokio::test]
async fn other_methods_answer_405_with_allow() {
    let service = service_for([resource("https://h/mcp")]);
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = call(
            &service,
            method.clone(),
            "/.well-known/oauth-protected-resource/mcp",
        )
        .await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD, OPTIONS"));
        assert!(answer.body.is_empty());
    }
}

#[tokio::test]
async fn each_resource_on_a_shared_host_has_its_own_document() {
    let service = service_for([resource("https://h/a/mcp"), resource("https://h/b/mcp")]);
    for (path, identifier) in [
        (
            "/.well-known/oauth-protected-resource/a/mcp",
            "https://h/a/mcp",
        ),
        (
            "/.well-known/oauth-protected-resource/b/mcp",
            "https://h/b/mcp",
        ),
    ] {
        let answer = call(&service, Method::GET, path).await;
        let document: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(document["resource"], identifier);
    }
}

#[tokio::test]
async fn resource_mode_does_not_serve_authorization_server_metadata() {
    let service = service_for([resource("https://h/mcp")]);
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delegated_mode_serves_the_resolved_authorization_server_metadata() {
    let metadata = as_metadata(ISSUER);
    let auth = DelegatedAuth::new(AuthServer::from_metadata(metadata.clone())).unwrap();
    let service = auth.metadata_service();
    assert_eq!(
        service.paths().collect::<Vec<_>>(),
        ["/.well-known/oauth-authorization-server"]
    );
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, serde_json::to_vec(&metadata).unwrap());
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let document: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        call(
            &service,
            Method::OPTIONS,
            "/.well-known/oauth-authorization-server"
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &service,
            Method::GET,
            "/.well-known/oauth-protected-resource"
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn delegated_mode_discovers_on_first_request_then_serves_from_cache() {
    let server = TestAuthServer::start().await.unwrap();
    let auth =
        DelegatedAuth::new(AuthServer::discover(server.issuer(), AuthServerType::OAuth)).unwrap();
    assert_eq!(
        server.request_count(Endpoint::OAuthMetadata),
        0,
        "no fetch at construction"
    );
    let service = auth.metadata_service();
    let first = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    let served: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(served, server.metadata());
    let second = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(second.body, first.body);
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn delegated_mode_answers_503_when_the_metadata_cannot_be_fetched() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(Endpoint::OAuthMetadata, Fault::Status(502));
    let auth = DelegatedAuth::new(
        AuthServer::discover(server.issuer(), AuthServerType::OAuth)
            .with_retry_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let service = auth.metadata_service();
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    // A failure is retried after a short backoff: once the server heals, a request after it
    // succeeds.
    server.heal_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = call(
        &service,
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn delegated_mode_refuses_to_serve_discovered_metadata_without_s256() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"code_challenge_methods_supported": ["plain"]})));
    let auth =
        DelegatedAuth::new(AuthServer::discover(server.issuer(), AuthServerType::OAuth)).unwrap();
    let answer = call(
        &auth.metadata_service(),
        Method::GET,
        "/.well-known/oauth-authorization-server",
    )
    .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["error"], "server_error");
    server.shutdown().await;
}

// ---- over real HTTP ------------------------------------------------------------------------

async fn serve(service: MetadataService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback_service(service);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn over_http_get_head_and_options_carry_the_exact_bytes_and_headers() {
    let service = service_for([resource("https://h"), resource("https://h:8443/a/b/")]);
    let base = serve(service).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("public, max-age=3600")
    );
    assert_eq!(
        response.bytes().await.unwrap(),
        "{\"resource\":\"https://h\",\"authorization_servers\":[\"https://auth.example.com\"]}"
    );

    let response = client
        .get(format!("{base}/.well-known/oauth-protected-resource/a/b/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.bytes().await.unwrap(),
        "{\"resource\":\"https://h:8443/a/b/\",\"authorization_servers\":[\"https://auth.example.com\"]}"
    );

    let response = client
        .head(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let get_length =
        "{\"resource\":\"https://h\",\"authorization_servers\":[\"https://auth.example.com\"]}"
            .len();
    assert_eq!(
        header(&response, "content-length"),
        Some(get_length.to_string())
    );
    assert!(response.bytes().await.unwrap().is_empty());

    let response = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/.well-known/oauth-protected-resource"),
        )
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&response, "access-control-allow-methods").as_deref(),
        Some("GET, HEAD, OPTIONS")
    );

    let response = client
        .post(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        header(&response, "allow").as_deref(),
        Some("GET, HEAD, OPTIONS")
    );

    let response = client
        .get(format!("{base}/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
