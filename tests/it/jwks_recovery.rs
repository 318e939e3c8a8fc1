//! The JWKS cache when its endpoint fails, over real HTTP: a failed fetch is retried after a
//! short backoff (so valid tokens verify again within seconds of the endpoint healing, not after
//! the 30 s cooldown), fetches stay few under a flood of unknown `kid`s, stale-if-error ends at
//! `jwks_max_staleness`, the response's `Cache-Control` sets the refresh age within bounds, and
//! a seeded key set verifies tokens before, or without, any fetch.
//!
//! Faults come from the test authorization server's switches; the `Cache-Control` tests use a
//! small JWKS endpoint of their own ([`HintedJwks`]), since the test authorization server always
//! sends `max-age=300`.
#![cfg(feature = "test-util")]

use crate::support::hostile::{App, Outcome};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::jwt::DEFAULT_JWKS_REFRESH_COOLDOWN;
use mcp_auth::verify::{JwkSet, JwsAlgorithm, JwtVerifier, JwtVerifierBuilder};
use mcp_auth::{
    AuthInfo, AuthServer, AuthServerType, ConfigError, HttpClient, McpAuth, ProtectedResource,
    TokenVerifier, VerifyError,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long a test waits for a recovery before calling it missing: far below the default
/// 30 s cooldown that recovery used to take, far above the ~1 s it takes now.
const RECOVERY_BUDGET: Duration = Duration::from_secs(10);

async fn start() -> TestAuthServer {
    TestAuthServer::start()
        .await
        .expect("the test authorization server starts")
}

/// A guarded app whose authorization server is `issuer` (discovered), with `http` for every
/// fetch and the JWT verifier as `configure` leaves it (the default cooldown unless changed).
async fn serve(
    issuer: &TestAuthServer,
    http: HttpClient,
    configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
) -> Result<App, ConfigError> {
    let issuer = issuer.issuer().to_owned();
    let mut refused = None;
    let app = App::serve(|resource| {
        let server = AuthServer::discover(issuer, AuthServerType::Oidc).with_http_client(http);
        let auth = McpAuth::builder()
            .protected_resource(ProtectedResource::new(resource).authorization_server(server))
            .build()
            .expect("configuration");
        let guard = auth
            .bearer_auth_jwt_with(resource, configure)
            .required_scopes(["read"])
            .show_error_details(true)
            .build();
        let guard = match guard {
            Ok(guard) => guard,
            Err(error) => {
                refused = Some(error);
                // Any guard, so the app can start; the caller gets the error.
                auth.bearer_auth(resource, |_: String| async {
                    Err::<AuthInfo, _>(VerifyError::invalid_token("unused"))
                })
                .build()
                .expect("a plain guard")
            }
        };
        (auth, guard)
    })
    .await;
    match refused {
        Some(error) => Err(error),
        None => Ok(app),
    }
}

fn token(server: &TestAuthServer, app: &App) -> String {
    server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .sign()
}

/// Sends `token` every 50 ms until it gets 200, within [`RECOVERY_BUDGET`]. Returns the
/// refusals seen before and how long the recovery took.
async fn until_ok(app: &App, token: &str) -> (Vec<Outcome>, Duration) {
    let started = Instant::now();
    let mut refused = Vec::new();
    while started.elapsed() < RECOVERY_BUDGET {
        let outcome = app.post(token).await;
        if outcome.status == 200 {
            return (refused, started.elapsed());
        }
        refused.push(outcome);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no 200 within {RECOVERY_BUDGET:?} of the JWKS healing: last {:?}",
        refused.last()
    );
}

/// Verifies `token` every 50 ms until it verifies, within [`RECOVERY_BUDGET`]; the errors seen
/// before are returned.
async fn until_verified(verifier: &JwtVerifier, token: &str) -> Vec<VerifyError> {
    let started = Instant::now();
    let mut errors = Vec::new();
    while started.elapsed() < RECOVERY_BUDGET {
        match verifier.verify(token).await {
            Ok(_) => return errors,
            Err(error) => errors.push(error),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the token did not verify within {RECOVERY_BUDGET:?}: last {:?}",
        errors.last()
    );
}

/// After the JWKS endpoint failed with `fault` on a cold server, a valid token gets 503 on the
/// wire, then 200 within seconds of the endpoint healing, with the default 30 s cooldown.
async fn recovers_after(fault: Fault, http: HttpClient) {
    let server = start().await;
    server.fail(Endpoint::Jwks, fault.clone());
    let app = serve(&server, http, |jwt| jwt).await.expect("guard");
    let valid = token(&server, &app);
    let outcome = app.post(&valid).await;
    let reason = app.expect_server_side(&outcome, 503);
    assert!(reason.contains("signing keys"), "{fault:?}: {reason}");

    server.heal(Endpoint::Jwks);
    let (refused, took) = until_ok(&app, &valid).await;
    assert!(
        refused.iter().all(|o| o.status == 503),
        "{fault:?}: {refused:?}"
    );
    assert!(took < DEFAULT_JWKS_REFRESH_COOLDOWN);
    eprintln!("{fault:?}: 200 again {took:?} after the JWKS endpoint healed");
    // The failed fetch, perhaps a retry that came too early, the successful one.
    let fetches = server.request_count(Endpoint::Jwks);
    assert!(
        (2..=4).contains(&fetches),
        "{fault:?}: {fetches} JWKS fetches"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_cold_server_whose_first_jwks_fetch_timed_out_serves_valid_tokens_within_seconds_of_healing()
 {
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    recovers_after(Fault::Hang, http).await;
}

#[tokio::test]
async fn a_cold_server_that_got_a_garbage_jwks_serves_valid_tokens_within_seconds_of_healing() {
    let garbage = Fault::Body {
        status: 200,
        content_type: "application/json".into(),
        body: Bytes::from_static(b"<html>{\"keys\": [oops"),
    };
    recovers_after(garbage, HttpClient::default()).await;
}

/// 200 concurrent verifications of tokens whose `kid`s no JWKS has.
async fn flood_of_unknown_kids(server: &TestAuthServer, verifier: &JwtVerifier, round: usize) {
    let tasks: Vec<JoinHandle<Result<AuthInfo, VerifyError>>> = (0..200)
        .map(|i| {
            let token = server.token().kid(format!("unknown-{round}-{i}")).sign();
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("the verification task completes");
        assert!(result.is_err(), "an unknown kid verified");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_costs_a_handful_of_jwks_fetches_during_an_outage_and_after_it() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Status(503));
    let cooldown = Duration::from_secs(1);
    let verifier = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .jwks_refresh_cooldown(cooldown)
        .build()
        .expect("verifier");
    let fetches = || server.request_count(Endpoint::Jwks);

    // Cold and failing: 200 unknown kids share one fetch; the others get its error (503).
    flood_of_unknown_kids(&server, &verifier, 0).await;
    let unknown = server.token().kid("unknown").sign();
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(VerifyError::Unavailable { .. })
    ));
    let after_first = fetches();
    assert!(
        (1..=2).contains(&after_first),
        "{after_first} fetches for the first flood"
    );

    // Past the backoff: one more attempt for the next flood, not 200.
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    flood_of_unknown_kids(&server, &verifier, 1).await;
    let after_second = fetches();
    assert!(
        after_second - after_first <= 1,
        "{} fetches for the second flood",
        after_second - after_first
    );

    // Healed: a valid token verifies after the backoff; then unknown kids are 401 and the
    // healthy set is asked at most once per cooldown.
    server.heal(Endpoint::Jwks);
    let errors = until_verified(&verifier, &server.token().sign()).await;
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, VerifyError::Unavailable { .. })),
        "{errors:?}"
    );
    let healthy_since = Instant::now();
    let after_recovery = fetches();
    flood_of_unknown_kids(&server, &verifier, 2).await;
    flood_of_unknown_kids(&server, &verifier, 3).await;
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    let healthy_fetches = fetches() - after_recovery;
    let allowed = 1 + (healthy_since.elapsed().as_millis() / cooldown.as_millis()) as usize;
    assert!(
        healthy_fetches <= allowed,
        "{healthy_fetches} fetches for 400 unknown kids on a healthy set, {allowed} allowed"
    );
    // 800 unknown kids and a recovery: a handful of fetches in all.
    let total = fetches();
    assert!(total <= 6, "{total} JWKS fetches in all");
    server.shutdown().await;
}

#[tokio::test]
async fn cached_keys_stop_verifying_after_max_staleness_while_the_jwks_fails_then_work_once_healed()
{
    let server = start().await;
    let max_staleness = Duration::from_secs(1);
    let verifier = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .jwks_refresh_cooldown(Duration::from_millis(200))
        .jwks_max_staleness(max_staleness)
        .build()
        .expect("verifier");
    let cached = server.token().sign();
    verifier.verify(&cached).await.expect("the JWKS is healthy");
    let fetched = Instant::now();
    server.fail(Endpoint::Jwks, Fault::Status(500));

    // Within the staleness bound: the keys fetched keep working (stale-if-error).
    let fresh = server.token().sign();
    let (cached_result, fresh_result) = (
        verifier.verify(&cached).await,
        verifier.verify(&fresh).await,
    );
    if fetched.elapsed() < max_staleness {
        cached_result.expect("a cached token within max_staleness");
        fresh_result.expect("a new token with a cached key within max_staleness");
    }

    // Past it: 503, for the cached verification as well as for new tokens.
    tokio::time::sleep(max_staleness + Duration::from_millis(200)).await;
    for token in [&cached, &server.token().sign()] {
        match verifier.verify(token).await {
            Err(VerifyError::Unavailable { reason }) => {
                assert!(reason.contains("max_staleness"), "{reason}");
            }
            other => panic!("expected 503 past max_staleness, got {other:?}"),
        }
    }

    server.heal(Endpoint::Jwks);
    let errors = until_verified(&verifier, &cached).await;
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, VerifyError::Unavailable { .. })),
        "{errors:?}"
    );
    verifier.verify(&fresh).await.expect("fresh keys again");
    server.shutdown().await;
}

/// A JWKS endpoint on loopback serving a fixed document with the `Cache-Control` the test
/// chooses, counting its requests.
struct HintedJwks {
    url: String,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for HintedJwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HintedJwks {
    async fn serve(jwks: &Value, cache_control: Option<&'static str>) -> HintedJwks {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("address"));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let body = Bytes::from(serde_json::to_vec(jwks).expect("JSON"));
        let handler = move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                let headers = response.headers_mut();
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                if let Some(value) = cache_control {
                    headers.insert(
                        axum::http::header::CACHE_CONTROL,
                        axum::http::HeaderValue::from_static(value),
                    );
                }
                response
            }
        };
        let app = axum::Router::new().route("/jwks", axum::routing::get(handler));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HintedJwks { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A verifier of `signer`'s tokens whose JWKS comes from a [`HintedJwks`] with
/// `cache_control`, and a token it verifies (the first fetch is done when this returns).
async fn hinted(
    signer: &TestAuthServer,
    cache_control: Option<&'static str>,
    cooldown: Duration,
    max_age: Duration,
) -> (HintedJwks, JwtVerifier, String, Instant) {
    let jwks = HintedJwks::serve(&signer.public_jwks(), cache_control).await;
    let verifier = JwtVerifier::builder()
        .issuer_jwks(signer.issuer(), &jwks.url)
        .jwks_refresh_cooldown(cooldown)
        .jwks_max_age(max_age)
        .build()
        .expect("verifier");
    let started = Instant::now();
    let token = signer.token().sign();
    verifier.verify(&token).await.expect("the first fetch");
    assert_eq!(jwks.hits(), 1);
    (jwks, verifier, token, started)
}

/// Verifies `token` until `jwks` has seen `hits` requests (each verification may start a
/// background refresh), within 3 s; returns the hits seen.
async fn verify_until_hits(
    jwks: &HintedJwks,
    verifier: &JwtVerifier,
    token: &str,
    hits: usize,
) -> usize {
    let started = Instant::now();
    while jwks.hits() < hits && started.elapsed() < Duration::from_secs(3) {
        verifier.verify(token).await.expect("the keys stay usable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    jwks.hits()
}

/// Verifies `token` every 50 ms while less than `until` has passed since `since`; returns
/// whether any verification ran (a loaded machine may already be past it).
async fn verify_while(
    verifier: &JwtVerifier,
    token: &str,
    since: Instant,
    until: Duration,
) -> bool {
    let mut ran = false;
    while since.elapsed() + Duration::from_millis(100) < until {
        verifier.verify(token).await.expect("the keys stay usable");
        ran = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ran
}

#[tokio::test]
async fn a_cache_control_max_age_above_the_cooldown_makes_the_refresh_come_after_it() {
    let signer = start().await;
    let cooldown = Duration::from_millis(200);
    let (jwks, verifier, token, started) = hinted(
        &signer,
        Some("public, max-age=1"),
        cooldown,
        Duration::from_secs(600),
    )
    .await;
    // Before max-age: no refresh, however many tokens.
    if verify_while(&verifier, &token, started, Duration::from_secs(1)).await {
        assert_eq!(jwks.hits(), 1, "a refresh before max-age");
    }
    // After it (and long before the 10-minute jwks_max_age): one background refresh.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(verify_until_hits(&jwks, &verifier, &token, 2).await, 2);
    signer.shutdown().await;
}

#[tokio::test]
async fn without_cache_control_the_keys_are_used_for_jwks_max_age() {
    let signer = start().await;
    let (jwks, verifier, token, _) = hinted(
        &signer,
        None,
        Duration::from_millis(200),
        Duration::from_secs(600),
    )
    .await;
    // Past where `max-age=1` refreshed: nothing, since no hint says so.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..5 {
        verifier.verify(&token).await.expect("usable");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(jwks.hits(), 1);
    signer.shutdown().await;
}

#[tokio::test]
async fn a_cache_control_max_age_above_jwks_max_age_is_cut_to_it() {
    let signer = start().await;
    let (jwks, verifier, token, _) = hinted(
        &signer,
        Some("max-age=86400"),
        Duration::from_millis(200),
        Duration::from_secs(1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(verify_until_hits(&jwks, &verifier, &token, 2).await, 2);
    signer.shutdown().await;
}

#[tokio::test]
async fn a_tiny_max_age_or_no_store_never_refreshes_before_the_cooldown() {
    let signer = start().await;
    let cooldown = Duration::from_millis(700);
    for hint in ["max-age=0", "no-store", "no-cache, max-age=5"] {
        let (jwks, verifier, token, started) =
            hinted(&signer, Some(hint), cooldown, Duration::from_secs(600)).await;
        if verify_while(&verifier, &token, started, cooldown).await {
            assert_eq!(jwks.hits(), 1, "{hint}: a refresh before the cooldown");
        }
        // At the floor: refreshed, and at most once per cooldown from then on.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            verify_until_hits(&jwks, &verifier, &token, 2).await,
            2,
            "{hint}"
        );
        let second = Instant::now();
        verify_while(&verifier, &token, second, Duration::from_millis(800)).await;
        let allowed = 2 + (started.elapsed().as_millis() / cooldown.as_millis()) as usize;
        assert!(jwks.hits() <= allowed, "{hint}: {} fetches", jwks.hits());
    }
    signer.shutdown().await;
}

fn jwk_set(server: &TestAuthServer) -> JwkSet {
    serde_json::from_value(server.public_jwks()).expect("the test server's JWKS is a JwkSet")
}

/// A file holding `contents`, unique to this test binary and `name`.
fn seed_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "mcp-auth-jwks-seed-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&path, contents).expect("write the seed file");
    path
}

#[tokio::test]
async fn a_seeded_verifier_verifies_tokens_while_its_jwks_endpoint_fails_and_keeps_asking_it() {
    let server = start().await;
    server.fail(Endpoint::Jwks, Fault::Status(503));
    let verifier = JwtVerifier::builder()
        .issuer_jwks(server.issuer(), server.jwks_uri())
        .jwks_seed(server.issuer(), jwk_set(&server))
        .build()
        .expect("verifier");
    for alg in [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Es256,
        JwsAlgorithm::EdDsa,
    ] {
        let token = server.token().alg(alg).sign();
        verifier
            .verify(&token)
            .await
            .expect("a seeded key verifies");
    }
    // A kid the seed lacks may be genuine: 503 while the endpoint fails, not 401.
    let unknown = server.token().kid("not-seeded").sign();
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(VerifyError::Unavailable { .. })
    ));
    // The network is still asked (in the background from the first token on).
    assert!(server.request_count(Endpoint::Jwks) >= 1);

    // Healed, with new keys: the fetched set replaces the seed.
    let seeded_token = server.token().sign();
    server.rotate_keys();
    server.heal(Endpoint::Jwks);
    let rotated = server.token().sign();
    until_verified(&verifier, &rotated).await;
    assert!(matches!(
        verifier.verify(&seeded_token).await,
        Err(VerifyError::InvalidToken { .. })
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn a_seed_file_serves_tokens_while_the_authorization_server_is_down_from_the_start() {
    let gone = start().await;
    let path = seed_file(
        "down",
        &serde_json::to_vec(&gone.public_jwks()).expect("JSON"),
    );
    let issuer = gone.issuer().to_owned();
    let seeded_for = issuer.clone();
    let seed_path = path.clone();
    let app = serve(&gone, HttpClient::default(), move |jwt| {
        jwt.jwks_seed_file(seeded_for, seed_path)
    })
    .await
    .expect("guard");
    let valid = token(&gone, &app);
    let other_kid = gone
        .token()
        .kid("not-seeded")
        .audience(app.resource.as_str())
        .scope("read")
        .sign();
    gone.shutdown().await;

    // No metadata, no JWKS: the seed alone answers.
    let outcome = app.post(&valid).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    let outcome = app.post(&other_kid).await;
    assert_eq!(outcome.status, 503, "{outcome:?}");
    std::fs::remove_file(path).ok();
}

#[tokio::test]
async fn a_bad_seed_is_a_config_error_at_build() {
    let server = start().await;
    let issuer = server.issuer().to_owned();
    let cases: [(&str, &[u8], &str); 4] = [
        ("garbage", b"<html>not json", "not JSON"),
        ("empty", br#"{"keys": []}"#, "no usable"),
        ("shape", br#"[{"kty": "RSA"}]"#, "not a JWKS"),
        (
            "secret",
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
            "no usable",
        ),
    ];
    for (name, contents, expected) in cases {
        let path = seed_file(name, contents);
        let result = JwtVerifier::builder()
            .issuer_jwks(&issuer, server.jwks_uri())
            .jwks_seed_file(&issuer, &path)
            .build();
        match result {
            Err(error @ ConfigError::InvalidJwksSeed { .. }) => {
                let text = error.to_string();
                assert!(text.contains(expected), "{name}: {text}");
                assert!(text.contains(&path.display().to_string()), "{name}: {text}");
            }
            other => panic!("{name}: expected InvalidJwksSeed, got {other:?}"),
        }
        std::fs::remove_file(path).ok();
    }
    let missing = std::env::temp_dir().join("mcp-auth-jwks-seed-that-does-not-exist.json");
    let result = JwtVerifier::builder()
        .issuer_jwks(&issuer, server.jwks_uri())
        .jwks_seed_file(&issuer, &missing)
        .build();
    assert!(
        matches!(&result, Err(e @ ConfigError::InvalidJwksSeed { .. }) if e.to_string().contains("cannot be read")),
        "{result:?}"
    );
    // Through the MCP configuration too: the guard refuses to build.
    let path = seed_file("guard", b"{}");
    let seed_path = path.clone();
    let result = serve(&server, HttpClient::default(), move |jwt| {
        jwt.jwks_seed_file(issuer, seed_path)
    })
    .await;
    assert!(
        matches!(&result, Err(ConfigError::InvalidJwksSeed { .. })),
        "{:?}",
        result.err()
    );
    std::fs::remove_file(path).ok();
    server.shutdown().await;
}
