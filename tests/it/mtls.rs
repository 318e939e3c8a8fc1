#![cfg(feature = "test-util")]
//! Certificate-bound access tokens (RFC 8705 §3) over real loopback connections: the crate's
//! hyper `Server` terminating TLS with client certificates (rcgen PKI, reqwest clients with an
//! identity), a trusted proxy's `Client-Cert` header (RFC 9440) and nginx-style URL-encoded
//! PEM, introspection answers with a top-level `cnf`, and the metadata flag (PRM-12).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use mcp_auth::integrations::hyper::tls::{ClientAuth, rustls, tls_server_config};
use mcp_auth::integrations::hyper::{McpRouter, Server};
use mcp_auth::mtls::{CertificateSource, ClientCertificate, HeaderEncoding};
use mcp_auth::testing::TestAuthServer;
use mcp_auth::verify::IntrospectionVerifier;
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, ConfigError, McpAuth, ProtectedResource, TokenBinding,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower_layer::Layer;

use crate::support::hostile::{App, HANG};

/// A test certificate authority that signs a server certificate for 127.0.0.1 and client
/// certificates.
struct Pki {
    ca: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A client certificate with its key, as reqwest and the tests need them.
struct Client {
    certificate: ClientCertificate,
    pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(DnType::CommonName, "mcp-auth test CA");
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca,
            issuer: Issuer::new(params, key),
        }
    }

    fn roots(&self) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        Arc::new(roots)
    }

    fn server(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    fn client(&self, name: &str) -> Client {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Client {
            certificate: ClientCertificate::from_der(cert.der().to_vec()).unwrap(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A reqwest client trusting this CA, presenting `identity` if given.
    fn http_client(&self, identity: Option<&Client>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_der(self.ca.der()).unwrap();
        let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
        if let Some(client) = identity {
            let pem = format!("{}{}", client.pem, client.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

/// The crate's hyper `Server` over TLS on `127.0.0.1:0`, serving `/mcp` behind a JWT guard
/// whose certificate source is the TLS peer. The handler answers the token's binding.
struct TlsApp {
    addr: SocketAddr,
    resource: String,
    task: JoinHandle<()>,
}

impl Drop for TlsApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsApp {
    async fn serve(server: &TestAuthServer, pki: &Pki, client_auth: ClientAuth) -> TlsApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = format!("https://{addr}/mcp");
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource.clone()).authorization_server(
                    AuthServer::discover(server.issuer(), AuthServerType::Oidc),
                ),
            )
            .build()
            .unwrap();
        let guard = auth
            .bearer_auth_jwt(&resource)
            .client_certificates(CertificateSource::TlsPeer)
            .build()
            .unwrap();
        let handler = tower::service_fn(|request: Request<Incoming>| async move {
            let binding = match request
                .extensions()
                .get::<AuthInfo>()
                .map(AuthInfo::binding)
            {
                Some(TokenBinding::Certificate { x5t_s256 }) => x5t_s256.clone(),
                Some(TokenBinding::Unbound) => "unbound".to_owned(),
                other => format!("{other:?}"),
            };
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(binding))))
        });
        let app = McpRouter::new(
            auth.metadata_service(),
            "/mcp",
            guard.layer().layer(handler),
        );
        let (chain, key) = pki.server();
        let config = tls_server_config(chain, key, client_auth).unwrap();
        let server = Server::new(listener, app)
            .tls(Arc::new(config))
            .tls_handshake_timeout(Duration::from_secs(2));
        let task = tokio::spawn(async move {
            server.serve().await.unwrap();
        });
        TlsApp {
            addr,
            resource,
            task,
        }
    }

    /// `GET /mcp` with the bearer token: status, body, and the challenge's `error`.
    async fn get(
        &self,
        client: &reqwest::Client,
        token: &str,
    ) -> reqwest::Result<(u16, String, Option<String>)> {
        let request = client.get(&self.resource).bearer_auth(token).send();
        let response = tokio::time::timeout(HANG, request).await.expect("hung")?;
        let status = response.status().as_u16();
        let error = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await?;
        Ok((status, body, error))
    }
}

fn bound_token(server: &TestAuthServer, resource: &str, cert: &ClientCertificate) -> String {
    server
        .token()
        .audience(resource)
        .scope("read")
        .certificate_thumbprint(cert.thumbprint_s256())
        .sign()
}

fn assert_invalid_token(answer: &(u16, String, Option<String>)) {
    assert_eq!(answer.0, 401, "{answer:?}");
    let challenge = answer.2.as_deref().expect("a challenge");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn over_tls_a_bound_token_with_its_certificate_passes_and_reports_the_binding() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    let alice = pki.client("alice");
    let token = bound_token(&server, &app.resource, &alice.certificate);
    let client = pki.http_client(Some(&alice));
    let answer = app.get(&client, &token).await.unwrap();
    assert_eq!(answer.0, 200, "{answer:?}");
    assert_eq!(answer.1, alice.certificate.thumbprint_s256());
    // The configuration offers h2 by ALPN, so reqwest speaks HTTP/2: the certificate reaches
    // requests on multiplexed streams too.
    let response = client
        .get(&app.resource)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn over_tls_a_bound_token_with_another_certificate_is_refused() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let token = bound_token(&server, &app.resource, &alice.certificate);
    let answer = app
        .get(&pki.http_client(Some(&mallory)), &token)
        .await
        .unwrap();
    assert_invalid_token(&answer);
}

#[tokio::test]
async fn over_tls_a_bound_token_without_a_client_certificate_is_refused() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    let alice = pki.client("alice");
    let token = bound_token(&server, &app.resource, &alice.certificate);
    let answer = app.get(&pki.http_client(None), &token).await.unwrap();
    assert_invalid_token(&answer);
}

#[tokio::test]
async fn over_tls_an_unbound_token_passes_with_or_without_a_certificate() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    let token = server.token().audience(app.resource.as_str()).sign();
    let alice = pki.client("alice");
    for client in [pki.http_client(None), pki.http_client(Some(&alice))] {
        let answer = app.get(&client, &token).await.unwrap();
        assert_eq!(answer.0, 200, "{answer:?}");
        assert_eq!(answer.1, "unbound");
    }
}

#[tokio::test]
async fn required_client_auth_fails_the_handshake_without_a_certificate_and_keeps_serving() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Required(pki.roots())).await;
    let alice = pki.client("alice");
    let token = bound_token(&server, &app.resource, &alice.certificate);
    assert!(app.get(&pki.http_client(None), &token).await.is_err());
    // A certificate from another CA fails the handshake too.
    let stranger = Pki::new().client("stranger");
    assert!(
        app.get(&pki.http_client(Some(&stranger)), &token)
            .await
            .is_err()
    );
    let answer = app
        .get(&pki.http_client(Some(&alice)), &token)
        .await
        .unwrap();
    assert_eq!(answer.0, 200, "{answer:?}");
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_off_without_holding_up_other_clients() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    // Connects and never says hello.
    let mut stalled = TcpStream::connect(app.addr).await.unwrap();
    let token = server.token().audience(app.resource.as_str()).sign();
    let answer = app.get(&pki.http_client(None), &token).await.unwrap();
    assert_eq!(
        answer.0, 200,
        "served while a handshake was pending: {answer:?}"
    );
    // The server closes the stalled connection once its handshake timeout (2 s) passes.
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(HANG, stalled.read(&mut buffer))
        .await
        .expect("the stalled connection was never closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_does_not_take_the_server_down() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = TlsApp::serve(&server, &pki, ClientAuth::Optional(pki.roots())).await;
    let mut plain = TcpStream::connect(app.addr).await.unwrap();
    plain
        .write_all(b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A TLS alert at most, then the connection is closed.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(HANG, plain.read_to_end(&mut answer))
        .await
        .expect("the connection was never closed");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let token = server.token().audience(app.resource.as_str()).sign();
    let answer = app.get(&pki.http_client(None), &token).await.unwrap();
    assert_eq!(answer.0, 200, "{answer:?}");
}

// Trusted proxy headers, over plain HTTP (the proxy terminated TLS).

/// The JWT guard of a fresh app trusting `server`, with `source` as certificate source.
async fn proxied(server: &TestAuthServer, source: Option<CertificateSource>) -> App {
    let issuer = server.issuer().to_owned();
    App::serve(|resource| {
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource)
                    .authorization_server(AuthServer::discover(issuer, AuthServerType::Oidc)),
            )
            .build()
            .unwrap();
        let mut guard = auth.bearer_auth_jwt(resource).required_scopes(["read"]);
        if let Some(source) = source {
            guard = guard.client_certificates(source);
        }
        (auth, guard.build().unwrap())
    })
    .await
}

fn client_cert_header(cert: &ClientCertificate) -> String {
    format!("Client-Cert: :{}:", STANDARD.encode(cert.der()))
}

async fn post_with(app: &App, token: &str, headers: &[String]) -> crate::support::hostile::Outcome {
    let authorization = format!("Authorization: Bearer {token}");
    let mut all: Vec<&[u8]> = vec![authorization.as_bytes()];
    all.extend(headers.iter().map(|h| h.as_bytes()));
    app.raw_post(&all).await
}

#[tokio::test]
async fn through_a_trusted_proxy_the_bound_certificate_passes_and_another_is_refused() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = proxied(&server, Some(CertificateSource::client_cert_header())).await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let token = bound_token(&server, &app.url(), &alice.certificate);

    // (Refusals first: they also check that the handler never ran.)
    let outcome = post_with(&app, &token, &[client_cert_header(&mallory.certificate)]).await;
    app.expect_invalid_token(&outcome);
    let outcome = post_with(&app, &token, &[]).await;
    app.expect_invalid_token(&outcome);

    let outcome = post_with(&app, &token, &[client_cert_header(&alice.certificate)]).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(app.handler_calls(), 1);
    // An unbound token needs no certificate.
    let unbound = server.token().audience(app.url()).scope("read").sign();
    assert_eq!(post_with(&app, &unbound, &[]).await.status, 200);
}

#[tokio::test]
async fn a_malformed_or_repeated_proxy_header_is_refused_never_ignored() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = proxied(&server, Some(CertificateSource::client_cert_header())).await;
    let alice = pki.client("alice");
    let token = bound_token(&server, &app.url(), &alice.certificate);
    let b64 = STANDARD.encode(alice.certificate.der());
    let good = client_cert_header(&alice.certificate);
    let cases: Vec<Vec<String>> = vec![
        vec![format!("Client-Cert: {b64}")],
        vec![format!("Client-Cert: :{b64}")],
        vec![format!("Client-Cert: :{b64}:;v=1")],
        vec![format!("Client-Cert: :{b64}:, :{b64}:")],
        vec![format!("Client-Cert: :{}:", &b64[..b64.len() - 8])],
        vec!["Client-Cert: :AAAA:".to_owned()],
        vec!["Client-Cert:".to_owned()],
        vec![good.clone(), good.clone()],
        vec![format!("Client-Cert: :{}:", "A".repeat(70_000))],
    ];
    for headers in cases {
        let outcome = post_with(&app, &token, &headers).await;
        assert_eq!(outcome.status, 401, "{headers:?}: {outcome:?}");
        assert_eq!(
            outcome.challenge().error.as_deref(),
            Some("invalid_token"),
            "{headers:?}"
        );
    }
    assert_eq!(app.handler_calls(), 0, "the protected handler ran");
}

#[tokio::test]
async fn nginx_url_encoded_pem_in_a_named_header_is_read() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let source = CertificateSource::trusted_proxy_header(
        HeaderName::from_static("x-ssl-client-cert"),
        HeaderEncoding::UrlEncodedPem,
    );
    let app = proxied(&server, Some(source)).await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let token = bound_token(&server, &app.url(), &alice.certificate);
    // What nginx's $ssl_client_escaped_cert gives: the PEM, percent-encoded.
    let escape = |pem: &str| -> String {
        pem.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let header = |c: &Client| format!("X-SSL-Client-Cert: {}", escape(&c.pem));
    app.expect_invalid_token(&post_with(&app, &token, &[header(&mallory)]).await);
    // The RFC 9440 header is not the configured one: ignored.
    app.expect_invalid_token(
        &post_with(&app, &token, &[client_cert_header(&alice.certificate)]).await,
    );
    let broken = format!("X-SSL-Client-Cert: {}%2", escape(&alice.pem));
    app.expect_invalid_token(&post_with(&app, &token, &[broken]).await);
    assert_eq!(post_with(&app, &token, &[header(&alice)]).await.status, 200);
}

#[tokio::test]
async fn a_proxy_header_without_a_configured_source_is_ignored_and_the_bound_token_refused() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let app = proxied(&server, None).await;
    let alice = pki.client("alice");
    let token = bound_token(&server, &app.url(), &alice.certificate);
    let outcome = post_with(&app, &token, &[client_cert_header(&alice.certificate)]).await;
    app.expect_invalid_token(&outcome);
    // A malformed one is ignored too: only a configured source is read.
    let unbound = server.token().audience(app.url()).scope("read").sign();
    let outcome = post_with(&app, &unbound, &["Client-Cert: garbage".to_owned()]).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
}

#[tokio::test]
async fn an_introspection_answer_with_a_top_level_cnf_is_checked() {
    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let as_server = AuthServer::discover(server.issuer(), AuthServerType::OAuth);
    let (client_id, secret) = (
        server.client_id().to_owned(),
        server.client_secret().to_owned(),
    );
    let app = App::serve(|resource| {
        let auth = McpAuth::builder()
            .protected_resource(
                ProtectedResource::new(resource).authorization_server(as_server.clone()),
            )
            .build()
            .unwrap();
        let verifier = IntrospectionVerifier::builder(as_server)
            .client_secret_basic(client_id, secret)
            .build()
            .unwrap();
        let guard = auth
            .bearer_auth(resource, verifier)
            .required_scopes(["read"])
            .client_certificates(CertificateSource::client_cert_header())
            .build()
            .unwrap();
        (auth, guard)
    })
    .await;
    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let token = server.issue_opaque_token(json!({
        "aud": app.url(),
        "scope": "read",
        "cnf": { "x5t#S256": alice.certificate.thumbprint_s256() },
    }));
    app.expect_invalid_token(
        &post_with(&app, &token, &[client_cert_header(&mallory.certificate)]).await,
    );
    app.expect_invalid_token(&post_with(&app, &token, &[]).await);
    let outcome = post_with(&app, &token, &[client_cert_header(&alice.certificate)]).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
}

// Protected-resource metadata (PRM-12).

async fn metadata(app: &App) -> serde_json::Value {
    reqwest::get(&app.metadata_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_metadata_says_certificate_bound_exactly_when_a_source_is_configured() {
    let server = TestAuthServer::start().await.unwrap();
    let with = proxied(&server, Some(CertificateSource::TlsPeer)).await;
    assert_eq!(
        metadata(&with).await["tls_client_certificate_bound_access_tokens"],
        json!(true)
    );
    let without = proxied(&server, None).await;
    let document = metadata(&without).await;
    assert!(
        document
            .get("tls_client_certificate_bound_access_tokens")
            .is_none(),
        "{document}"
    );
}

#[test]
fn configuring_the_derived_metadata_flag_by_hand_is_refused() {
    let error = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new("https://api.example.com/mcp")
                .authorization_server(AuthServer::discover(
                    "https://auth.example.com",
                    AuthServerType::Oidc,
                ))
                .metadata(|m| m.tls_client_certificate_bound_access_tokens(true)),
        )
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::DerivedMetadataField {
                field: "tls_client_certificate_bound_access_tokens",
                ..
            }
        ),
        "{error:?}"
    );
}

// The actix-web middleware reads the trusted proxy header too (it hands every header over).

#[cfg(feature = "actix-web")]
#[actix_web::test]
async fn under_actix_web_the_proxy_header_proves_the_binding() {
    use actix_web::{HttpResponse, HttpServer, web};

    let (server, pki) = (TestAuthServer::start().await.unwrap(), Pki::new());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(resource.clone())
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc)),
        )
        .build()
        .unwrap();
    let guard = auth
        .bearer_auth_jwt(&resource)
        .client_certificates(CertificateSource::client_cert_header())
        .build()
        .unwrap();
    let http_server = HttpServer::new(move || {
        actix_web::App::new().service(web::scope("/mcp").wrap(guard.actix_middleware()).route(
            "",
            web::get().to(|info: AuthInfo| async move {
                match info.binding() {
                    TokenBinding::Certificate { x5t_s256 } => {
                        HttpResponse::Ok().body(x5t_s256.clone())
                    }
                    other => HttpResponse::Ok().body(format!("{other:?}")),
                }
            }),
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = http_server.handle();
    actix_web::rt::spawn(http_server);

    let (alice, mallory) = (pki.client("alice"), pki.client("mallory"));
    let token = bound_token(&server, &resource, &alice.certificate);
    let send = |cert: &ClientCertificate| {
        reqwest::Client::new()
            .get(&resource)
            .bearer_auth(&token)
            .header("client-cert", format!(":{}:", STANDARD.encode(cert.der())))
            .send()
    };
    let response = send(&alice.certificate).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        alice.certificate.thumbprint_s256()
    );
    let response = send(&mallory.certificate).await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    handle.stop(false).await;
}
