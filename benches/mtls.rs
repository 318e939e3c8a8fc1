//! The added cost of proving a certificate-bound token (RFC 8705) per request, against the same
//! guard accepting an unbound token: the guard's own work only (a no-op verifier returns a fixed
//! `AuthInfo`), through `BearerAuth::authenticate_request`.
//!
//! - `binding/unbound`: an unbound token (the baseline: header, issuer, audience, scopes);
//! - `binding/tls_peer`: a `cnf.x5t#S256` token, the certificate in the request's extensions
//!   (what the hyper `Server` with TLS puts there): SHA-256 of the DER, constant-time compare;
//! - `binding/client_cert_header`: the same token, the certificate in an RFC 9440 `Client-Cert`
//!   header: also the structured-field and base64 decoding.
//!
//! The certificate is a real rcgen ECDSA P-256 client certificate (about 400 bytes of DER).
//! Run with `cargo bench --bench mtls`.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http::request::Parts;
use mcp_auth::mtls::{CertificateSource, ClientCertificate};
use mcp_auth::{
    AuthInfo, AuthServer, AuthorizationServerMetadata, BearerAuth, McpAuth, ProtectedResource,
};
use serde_json::json;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://api.example.com/mcp";

fn guard(source: CertificateSource, x5t: Option<String>) -> BearerAuth {
    let metadata = AuthorizationServerMetadata::authorization_code(
        ISSUER,
        "https://auth.example.com/authorize",
        "https://auth.example.com/token",
    );
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(RESOURCE)
                .authorization_server(AuthServer::from_metadata(metadata)),
        )
        .build()
        .expect("configuration");
    let mut identity = AuthInfo::new("", ISSUER)
        .with_subject("alice")
        .with_scopes(["read"])
        .with_audience([RESOURCE]);
    if let Some(x5t) = x5t {
        identity
            .claims
            .insert("cnf".into(), json!({ "x5t#S256": x5t }));
    }
    auth.bearer_auth(RESOURCE, move |token: String| {
        let mut info = identity.clone();
        info.token = token;
        async move { Ok(info) }
    })
    .required_scopes(["read"])
    .client_certificates(source)
    .build()
    .expect("guard")
}

fn certificate() -> ClientCertificate {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench client");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    ClientCertificate::from_der(cert.der().to_vec()).expect("DER")
}

fn parts(cert: Option<&ClientCertificate>, header: Option<&str>) -> Parts {
    let mut request = Request::builder()
        .method("POST")
        .uri(RESOURCE)
        .header("authorization", format!("Bearer eyJ{}", "a".repeat(697)));
    if let Some(cert) = cert {
        request = request.extension(cert.clone());
    }
    if let Some(header) = header {
        request = request.header("client-cert", header);
    }
    request.body(()).expect("request").into_parts().0
}

fn binding_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cert = certificate();
    let x5t = cert.thumbprint_s256();
    let header = format!(":{}:", STANDARD.encode(cert.der()));
    let cases = [
        (
            "unbound",
            guard(CertificateSource::TlsPeer, None),
            parts(Some(&cert), None),
        ),
        (
            "tls_peer",
            guard(CertificateSource::TlsPeer, Some(x5t.clone())),
            parts(Some(&cert), None),
        ),
        (
            "client_cert_header",
            guard(CertificateSource::client_cert_header(), Some(x5t)),
            parts(None, Some(&header)),
        ),
    ];
    let mut group = c.benchmark_group("binding");
    for (name, guard, parts) in cases {
        // Each case must pass, or it would measure a refusal.
        rt.block_on(guard.authenticate_request(&parts))
            .unwrap_or_else(|refusal| panic!("{name}: {refusal:?}"));
        group.bench_function(name, |b| {
            b.iter(|| {
                let info = rt.block_on(guard.authenticate_request(black_box(&parts)));
                black_box(info.is_ok())
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = binding_benches
}
criterion_main!(benches);
