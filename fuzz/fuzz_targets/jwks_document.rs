//! The JWKS deserialiser: hostile JWKS documents served over loopback by the crate's test
//! authorization server, fetched and parsed by a fresh `JwtVerifier` for each input (the JWKS
//! parser is crate-internal, so it is reached the way a real document reaches it: through the
//! bounded HTTP client, the JSON reader, the key-set hygiene rules and the key selection).
//!
//! The token presented is signed with a key published nowhere, so no JWKS may make it pass.
//! The first byte of the input picks the token's algorithm and `kid`; the rest is the JWKS
//! body. Findings: a panic, a hang, an accepted token, or a misconfiguration reported for a
//! document (a bad document is the authorization server's fault: 401 or 503).
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::JwsAlgorithm;
use mcp_auth::verify::JwtVerifier;
use mcp_auth::{HttpClient, TokenVerifier, VerifyError};

const ISSUER: &str = "https://issuer.example";

struct State {
    runtime: tokio::runtime::Runtime,
    server: TestAuthServer,
    http: HttpClient,
    /// Tokens signed with keys nobody publishes, one per (algorithm, kid) choice.
    tokens: Vec<String>,
}

static STATE: LazyLock<State> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(TestAuthServer::start()).expect("test AS");
    let mut tokens = Vec::new();
    for alg in [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
    ] {
        for kid in [Some("k1"), None] {
            let mut builder = server.token().alg(alg).issuer(ISSUER);
            builder = match kid {
                Some(kid) => builder.kid(kid),
                None => builder.remove_header("kid"),
            };
            tokens.push(builder.sign_with_unknown_key());
        }
    }
    State {
        runtime,
        server,
        http: HttpClient::default(),
        tokens,
    }
});

fuzz_target!(|data: &[u8]| {
    let state = &*STATE;
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let token = &state.tokens[usize::from(*selector) % state.tokens.len()];
    state.server.fail(
        Endpoint::Jwks,
        Fault::Body {
            status: 200,
            content_type: "application/json".into(),
            body: Bytes::copy_from_slice(body),
        },
    );
    let verifier = JwtVerifier::builder()
        .issuer_jwks(ISSUER, state.server.jwks_uri())
        .http_client(state.http.clone())
        .build()
        .expect("verifier");
    match state.runtime.block_on(verifier.verify(token)) {
        Ok(_) => panic!("a JWKS made a token signed with an unpublished key pass"),
        Err(VerifyError::Misconfigured { reason }) => {
            panic!("a JWKS document was reported as our misconfiguration: {reason}")
        }
        Err(_) => {}
    }
});
