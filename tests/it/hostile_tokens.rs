//! Hostile JWTs over real HTTP, one test per case: every one gets 401 `invalid_token`, the
//! protected handler never runs, and nothing is fetched from anywhere a token names.
//!
//! Tokens whose bytes no token builder would produce are signed with a key of the test's own,
//! published in the test authorization server's JWKS ([`Signer`]): their signature is valid,
//! so what refuses them is the rule under test, not the signature check.
//!
//! A note on floats: RFC 7519 §2 lets a NumericDate have a fraction, so a fractional `exp` in
//! the future is a valid token (the fraction is dropped). The hostile float cases are a
//! fractional `exp` that has passed and floats outside any date range.
#![cfg(feature = "test-util")]

use crate::support::hostile as hostile_support;

use hostile_support::{App, Signer, b64, unix_now};
use mcp_auth::testing::{Endpoint, TestAuthServer};
use mcp_auth::verify::{JwsAlgorithm, JwtVerifier};
use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};
use serde_json::{Value, json};

struct Fixture {
    server: TestAuthServer,
    signer: Signer,
    app: App,
}

impl Fixture {
    /// The JWT guard (`bearer_auth` with the issuer's JWKS), requiring `read`, allowing
    /// `Authorization` headers up to 256 KiB so that big tokens reach the verifier.
    async fn start() -> Fixture {
        let server = TestAuthServer::start().await.expect("test AS");
        let signer = Signer::publish(&server);
        let issuer = server.issuer().to_owned();
        let app = App::serve(|resource| {
            let as_server = AuthServer::discover(issuer, AuthServerType::Oidc);
            let auth = McpAuth::builder()
                .protected_resource(
                    ProtectedResource::new(resource).authorization_server(as_server.clone()),
                )
                .build()
                .expect("configuration");
            let jwt = JwtVerifier::builder()
                .authorization_server(as_server)
                .build()
                .expect("verifier");
            let guard = auth
                .bearer_auth(resource, jwt)
                .required_scopes(["read"])
                .max_header_bytes(256 * 1024)
                .build()
                .expect("guard");
            (auth, guard)
        })
        .await;
        Fixture {
            server,
            signer,
            app,
        }
    }

    /// The claims of a token that passes: our issuer, Alice, this resource, `read`, an hour.
    fn claims(&self) -> serde_json::Map<String, Value> {
        json!({
            "iss": self.server.issuer(),
            "sub": "alice",
            "aud": self.app.resource,
            "scope": "read",
            "iat": unix_now(),
            "exp": unix_now() + 3600,
        })
        .as_object()
        .expect("object")
        .clone()
    }

    /// Signs the claims with one member replaced by raw JSON text.
    fn signed_with(&self, name: &str, raw_value: &str) -> String {
        let mut claims = self.claims();
        claims.remove(name);
        let mut text = Value::Object(claims).to_string();
        text.pop(); // the closing brace
        text.push_str(&format!(",\"{name}\":{raw_value}}}"));
        self.signer.sign_payload(&text)
    }

    async fn expect_invalid(&self, token: &str) {
        let outcome = self.app.post(token).await;
        self.app.expect_invalid_token(&outcome);
    }

    /// The control: a token built the same way with nothing hostile passes.
    async fn expect_control_passes(&self) {
        let token = self
            .signer
            .sign_payload(&Value::Object(self.claims()).to_string());
        let outcome = self.app.post(&token).await;
        assert_eq!(outcome.status, 200, "control token refused: {outcome:?}");
        self.app
            .handler_calls
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn segments_that_are_not_base64url_get_401() {
    let f = Fixture::start().await;
    f.expect_control_passes().await;
    let good = f
        .signer
        .sign_payload(&Value::Object(f.claims()).to_string());
    let parts: Vec<&str> = good.split('.').collect();
    for token in [
        // `+`, `/`, `~` and trailing `=` are b64token characters but not base64url (a `=`
        // inside the token is not even b64token: 400, see hostile_headers.rs).
        format!("{}+.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}/.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}~", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        // A length no base64 text has.
        format!("{}A.{}.{}", parts[0], parts[1], parts[2]),
    ] {
        f.expect_invalid(&token).await;
    }
}

#[tokio::test]
async fn a_wrong_number_of_segments_gets_401() {
    let f = Fixture::start().await;
    let good = f
        .signer
        .sign_payload(&Value::Object(f.claims()).to_string());
    let parts: Vec<&str> = good.split('.').collect();
    for token in [
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{good}.{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        "...".to_owned(),
    ] {
        f.expect_invalid(&token).await;
    }
}

#[tokio::test]
async fn header_or_payload_json_that_is_not_an_object_gets_401() {
    let f = Fixture::start().await;
    let payload = Value::Object(f.claims()).to_string();
    let header = json!({"alg": "EdDSA", "kid": Signer::KID}).to_string();
    for not_object in [
        "[\"EdDSA\"]",
        "\"EdDSA\"",
        "42",
        "null",
        "true",
        "",
        "{",
        "not json",
    ] {
        f.expect_invalid(&f.signer.sign_raw(not_object.as_bytes(), payload.as_bytes()))
            .await;
        f.expect_invalid(&f.signer.sign_raw(header.as_bytes(), not_object.as_bytes()))
            .await;
    }
    // Claims as an array of the same values (a positional reading would accept it).
    let array = json!([
        f.server.issuer(),
        "alice",
        f.app.resource,
        "read",
        0,
        unix_now() + 3600
    ]);
    f.expect_invalid(
        &f.signer
            .sign_raw(header.as_bytes(), array.to_string().as_bytes()),
    )
    .await;
}

#[tokio::test]
async fn a_token_with_huge_claims_gets_401_before_any_parsing() {
    let f = Fixture::start().await;
    let huge = f.signed_with("padding", &format!("\"{}\"", "x".repeat(100 * 1024)));
    assert!(huge.len() > 128 * 1024);
    f.expect_invalid(&huge).await;
}

#[tokio::test]
async fn deeply_nested_claims_get_401_without_exhausting_the_stack() {
    let f = Fixture::start().await;
    for depth in [200, 20_000] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        f.expect_invalid(&f.signed_with("nested", &nested)).await;
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        f.expect_invalid(&f.signed_with("nested", &objects)).await;
    }
    f.expect_control_passes().await;
}

/// RFC 7519 §4 lets a parser keep the last of duplicate claim names; a parser that kept the
/// first would read another token than the one verified here. Refusing them removes the
/// ambiguity.
#[tokio::test]
async fn duplicate_claim_names_get_401() {
    let f = Fixture::start().await;
    for (name, first, second) in [
        ("sub", "\"mallory\"", "\"alice\""),
        (
            "aud",
            "\"https://other.example\"",
            &*format!("\"{}\"", f.app.resource),
        ),
        ("scope", "\"\"", "\"read\""),
        ("exp", "1", &*(unix_now() + 3600).to_string()),
    ] {
        let mut claims = f.claims();
        claims.remove(name);
        let mut text = Value::Object(claims).to_string();
        text.pop();
        text.push_str(&format!(",\"{name}\":{first},\"{name}\":{second}}}"));
        f.expect_invalid(&f.signer.sign_payload(&text)).await;
    }
}

/// RFC 7515 §5.2: the decoded header must be UTF-8 JSON text. Found by the `jwt_preparse`
/// fuzz target: an unknown header member holding invalid UTF-8 is skipped unchecked.
#[tokio::test]
async fn a_header_that_is_not_utf8_gets_401() {
    let f = Fixture::start().await;
    let payload = Value::Object(f.claims()).to_string();
    let mut header = br#"{"alg":"EdDSA","kid":""#.to_vec();
    header.extend_from_slice(Signer::KID.as_bytes());
    header.extend_from_slice(b"\",\"x\":\"\xf7\"}");
    f.expect_invalid(&f.signer.sign_raw(&header, payload.as_bytes()))
        .await;
}

#[tokio::test]
async fn exp_as_a_string_gets_401() {
    let f = Fixture::start().await;
    let exp = (unix_now() + 3600).to_string();
    f.expect_invalid(&f.signed_with("exp", &format!("\"{exp}\"")))
        .await;
    f.expect_invalid(&f.signed_with("exp", "\"tomorrow\""))
        .await;
    f.expect_control_passes().await;
}

#[tokio::test]
async fn exp_as_a_fractional_date_that_has_passed_gets_401() {
    let f = Fixture::start().await;
    let past = format!("{}.999", unix_now() - 3600);
    f.expect_invalid(&f.signed_with("exp", &past)).await;
    f.expect_invalid(&f.signed_with("exp", "0.5")).await;
}

#[tokio::test]
async fn exp_as_a_float_outside_any_date_range_gets_401() {
    let f = Fixture::start().await;
    for float in ["1e300", "1.7976931348623157e308", "-1e300", "9.3e18"] {
        f.expect_invalid(&f.signed_with("exp", float)).await;
    }
}

#[tokio::test]
async fn a_negative_exp_gets_401() {
    let f = Fixture::start().await;
    for negative in ["-1", "-9223372036854775808", "-0"] {
        f.expect_invalid(&f.signed_with("exp", negative)).await;
    }
}

#[tokio::test]
async fn an_overflowing_exp_gets_401() {
    let f = Fixture::start().await;
    for overflowing in [
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999999",
        "1e400",
    ] {
        f.expect_invalid(&f.signed_with("exp", overflowing)).await;
    }
}

#[tokio::test]
async fn aud_as_a_number_gets_401() {
    let f = Fixture::start().await;
    f.expect_invalid(&f.signed_with("aud", "42")).await;
    f.expect_invalid(&f.signed_with("aud", "true")).await;
}

#[tokio::test]
async fn aud_as_a_nested_array_gets_401() {
    let f = Fixture::start().await;
    let resource = json!(f.app.resource);
    for nested in [
        json!([[resource]]),
        json!([resource, [resource]]),
        json!([{"aud": resource}]),
    ] {
        f.expect_invalid(&f.signed_with("aud", &nested.to_string()))
            .await;
    }
}

#[tokio::test]
async fn scope_as_an_object_gets_401() {
    let f = Fixture::start().await;
    f.expect_invalid(&f.signed_with("scope", r#"{"read":true}"#))
        .await;
    f.expect_invalid(&f.signed_with("scope", r#"["read",{"write":1}]"#))
        .await;
    f.expect_control_passes().await;
}

#[tokio::test]
async fn a_kid_with_path_or_sql_characters_gets_401_and_fetches_at_most_once() {
    let f = Fixture::start().await;
    f.expect_control_passes().await;
    let fetches = f.server.request_count(Endpoint::Jwks);
    for kid in [
        "../../../../etc/passwd",
        "/dev/null",
        "..%2f..%2fjwks",
        "' OR '1'='1",
        "k1'; DROP TABLE keys; --",
        "\u{0000}",
        "https://evil.example/jwks.json",
    ] {
        let token = f
            .server
            .token()
            .audience(f.app.resource.as_str())
            .scope("read")
            .kid(kid)
            .sign();
        f.expect_invalid(&token).await;
    }
    // Unknown kids may trigger one refresh per cooldown (30 s by default), not one each.
    assert!(f.server.request_count(Endpoint::Jwks) <= fetches + 1);
}

#[tokio::test]
async fn a_crit_header_gets_401_whatever_it_names() {
    let f = Fixture::start().await;
    let payload = Value::Object(f.claims()).to_string();
    for crit in [
        json!(["exp"]),
        json!(["b64"]),
        json!([]),
        json!("b64"),
        json!(null),
    ] {
        let header = json!({"alg": "EdDSA", "kid": Signer::KID, "crit": crit, "b64": false});
        f.expect_invalid(
            &f.signer
                .sign_raw(header.to_string().as_bytes(), payload.as_bytes()),
        )
        .await;
    }
}

#[tokio::test]
async fn a_nested_jwt_gets_401() {
    let f = Fixture::start().await;
    let inner = f
        .signer
        .sign_payload(&Value::Object(f.claims()).to_string());
    for header in [
        json!({"alg": "EdDSA", "kid": Signer::KID, "cty": "JWT"}),
        json!({"alg": "EdDSA", "kid": Signer::KID}),
    ] {
        // The payload is the inner JWT itself (RFC 7519 §5.2), not a claims object.
        let outer = f
            .signer
            .sign_raw(header.to_string().as_bytes(), inner.as_bytes());
        f.expect_invalid(&outer).await;
        // Or a JSON string holding it.
        let quoted = json!(inner).to_string();
        let outer = f
            .signer
            .sign_raw(header.to_string().as_bytes(), quoted.as_bytes());
        f.expect_invalid(&outer).await;
    }
}

#[tokio::test]
async fn alg_none_in_any_spelling_gets_401() {
    let f = Fixture::start().await;
    let payload = b64(Value::Object(f.claims()).to_string().as_bytes());
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = b64(json!({"alg": alg}).to_string().as_bytes());
        f.expect_invalid(&format!("{header}.{payload}.")).await;
        // With a signature segment anyway, and with a kid that exists.
        let header = b64(json!({"alg": alg, "kid": Signer::KID})
            .to_string()
            .as_bytes());
        f.expect_invalid(&format!("{header}.{payload}.c2ln")).await;
    }
    let unsigned = f
        .server
        .token()
        .audience(f.app.resource.as_str())
        .scope("read")
        .unsigned();
    f.expect_invalid(&unsigned).await;
}

#[tokio::test]
async fn alg_hs256_gets_401() {
    let f = Fixture::start().await;
    for secret in [&b"secret"[..], b""] {
        let token = f
            .server
            .token()
            .audience(f.app.resource.as_str())
            .scope("read")
            .sign_hs256_with(secret);
        f.expect_invalid(&token).await;
    }
}

#[tokio::test]
async fn an_unknown_alg_gets_401() {
    let f = Fixture::start().await;
    let payload = Value::Object(f.claims()).to_string();
    for alg in [
        json!("ES512"),
        json!("RSA-OAEP"),
        json!("rs256"),
        json!("EdDSA "),
        json!(""),
        json!(["EdDSA"]),
        json!(null),
    ] {
        let header = json!({"alg": alg, "kid": Signer::KID});
        f.expect_invalid(
            &f.signer
                .sign_raw(header.to_string().as_bytes(), payload.as_bytes()),
        )
        .await;
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_published_public_key_gets_401() {
    let f = Fixture::start().await;
    let pem = f.server.rsa_public_key_pem();
    let der = f.server.rsa_public_key_der();
    let jwk = f.server.jwk(JwsAlgorithm::Rs256).to_string();
    let jwks = f.server.public_jwks().to_string();
    for secret in [pem.as_bytes(), &der, jwk.as_bytes(), jwks.as_bytes()] {
        let token = f
            .server
            .token()
            .audience(f.app.resource.as_str())
            .scope("read")
            .sign_hs256_with(secret);
        f.expect_invalid(&token).await;
    }
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_kids_key_gets_401() {
    let f = Fixture::start().await;
    let rsa_kid = f.server.kid(JwsAlgorithm::Rs256);
    let ec_kid = f.server.kid(JwsAlgorithm::Es256);
    let ed_kid = f.server.kid(JwsAlgorithm::EdDsa);
    let token = |alg: JwsAlgorithm, kid: &str| {
        f.server
            .token()
            .alg(alg)
            .kid(kid)
            .audience(f.app.resource.as_str())
            .scope("read")
            .sign()
    };
    for forged in [
        // Same RSA key, another algorithm than the JWK's `alg` allows.
        token(JwsAlgorithm::Ps256, &rsa_kid),
        token(JwsAlgorithm::Rs512, &rsa_kid),
        // Key types that cannot fit.
        token(JwsAlgorithm::Es256, &rsa_kid),
        token(JwsAlgorithm::EdDsa, &ec_kid),
        token(JwsAlgorithm::Rs256, &ed_kid),
    ] {
        f.expect_invalid(&forged).await;
    }
}

#[tokio::test]
async fn an_embedded_jwk_or_x5c_key_is_never_trusted() {
    let f = Fixture::start().await;
    let attacker = TestAuthServer::start().await.expect("attacker AS");
    let attacker_jwk = attacker.jwk(JwsAlgorithm::Rs256);
    for (member, value) in [
        ("jwk", attacker_jwk.clone()),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
    ] {
        let token = attacker
            .token()
            .issuer(f.server.issuer())
            .audience(f.app.resource.as_str())
            .scope("read")
            .header(member, value)
            .sign();
        f.expect_invalid(&token).await;
    }
    attacker.shutdown().await;
}

#[tokio::test]
async fn a_jku_or_x5u_pointing_elsewhere_is_never_fetched() {
    let f = Fixture::start().await;
    let attacker = TestAuthServer::start().await.expect("attacker AS");
    for member in ["jku", "x5u"] {
        let token = attacker
            .token()
            .issuer(f.server.issuer())
            .audience(f.app.resource.as_str())
            .scope("read")
            .header(member, attacker.jwks_uri())
            .sign();
        f.expect_invalid(&token).await;
    }
    assert_eq!(attacker.request_count(Endpoint::Jwks), 0);
    attacker.shutdown().await;
}

#[tokio::test]
async fn a_token_naming_our_issuer_but_signed_by_another_servers_key_gets_401() {
    let f = Fixture::start().await;
    let other = TestAuthServer::start().await.expect("other AS");
    let token = other
        .token()
        .issuer(f.server.issuer())
        .kid(f.server.kid(JwsAlgorithm::Rs256))
        .audience(f.app.resource.as_str())
        .scope("read")
        .sign();
    f.expect_invalid(&token).await;
    let forged = f
        .server
        .token()
        .audience(f.app.resource.as_str())
        .scope("read")
        .sign_with_unknown_key();
    f.expect_invalid(&forged).await;
    assert_eq!(other.request_count(Endpoint::Jwks), 0);
    other.shutdown().await;
}
