//! Faults of the authorization server, over real HTTP, with the test authorization server's
//! failure switches: our server starts while the authorization server is down and recovers on
//! its own; cached keys outlive a failing JWKS endpoint while new keys fail closed; and a slow
//! JWKS endpoint cannot hold requests past the client timeout nor draw more fetches than the
//! refresh cooldown allows, whatever the load.
//!
//! The guards come from `McpAuth::bearer_auth_jwt_with` (the built-in JWT mode) with a short
//! JWKS refresh cooldown, so that recovery shows within a test's time.
#![cfg(feature = "test-util")]

use crate::support::hostile as hostile_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hostile_support::{App, HANG, Outcome};
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::{AuthServer, AuthServerType, HttpClient, McpAuth, ProtectedResource};

const COOLDOWN: Duration = Duration::from_millis(300);

/// The JWT guard of a fresh app trusting `issuer`, with the JWKS refresh cooldown and max age
/// given, and `http` for every fetch.
async fn serve(issuer: &str, http: HttpClient, cooldown: Duration, max_age: Duration) -> App {
    let issuer = issuer.to_owned();
    App::serve(|resource| {
        // Discovery retries after `cooldown` at most, so the JWKS behaviour is what is seen.
        let server = AuthServer::discover(issuer, AuthServerType::Oidc)
            .with_http_client(http)
            .with_retry_interval(cooldown);
        let auth = McpAuth::builder()
            .protected_resource(ProtectedResource::new(resource).authorization_server(server))
            .build()
            .expect("configuration");
        let guard = auth
            .bearer_auth_jwt_with(resource, |jwt| {
                jwt.jwks_refresh_cooldown(cooldown).jwks_max_age(max_age)
            })
            .required_scopes(["read"])
            .show_error_details(true)
            .build()
            .expect("guard");
        (auth, guard)
    })
    .await
}

fn token(server: &TestAuthServer, app: &App) -> String {
    server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .sign()
}

/// Sends `token` until it gets 200, at most `attempts` times `pause` apart; the outcomes seen
/// before are returned (all must be refusals, never a 200 for another token).
async fn until_ok(app: &App, token: &str, attempts: usize, pause: Duration) -> Vec<Outcome> {
    let mut refused = Vec::new();
    for _ in 0..attempts {
        let outcome = app.post(token).await;
        if outcome.status == 200 {
            return refused;
        }
        refused.push(outcome);
        tokio::time::sleep(pause).await;
    }
    panic!(
        "no recovery after {attempts} attempts: last {:?}",
        refused.last()
    );
}

/// Starts a test authorization server on `addr` (the port of one that stopped), retrying
/// while the port is still being released.
async fn restart_on(addr: SocketAddr) -> TestAuthServer {
    for _ in 0..50 {
        match TestAuthServer::builder().bind(addr).start().await {
            Ok(server) => return server,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("could not bind {addr} again");
}

#[tokio::test]
async fn our_server_starts_while_the_authorization_server_is_down_answers_503_then_recovers() {
    // An authorization server that existed, then went away: its issuer URL refuses connections.
    let gone = TestAuthServer::start().await.expect("test AS");
    let addr = gone.local_addr();
    let issuer = gone.issuer().to_owned();
    let app = serve(
        &issuer,
        HttpClient::default(),
        COOLDOWN,
        Duration::from_secs(600),
    )
    .await;
    let old_token = token(&gone, &app);
    gone.shutdown().await;

    // It starts and answers: 503 for a token it cannot check, several times in a row.
    for _ in 0..3 {
        let outcome = app.post(&old_token).await;
        let reason = app.expect_server_side(&outcome, 503);
        assert!(reason.contains("metadata"), "{reason}");
    }
    // What it can check without the authorization server is still refused as usual.
    let outcome = app.post("not-a-jwt").await;
    app.expect_invalid_token(&outcome);

    // The authorization server comes back (new keys, same issuer): no restart of ours needed.
    let back = restart_on(addr).await;
    assert_eq!(back.issuer(), issuer);
    let fresh = token(&back, &app);
    let refused = until_ok(&app, &fresh, 50, Duration::from_millis(100)).await;
    assert!(refused.iter().all(|o| o.status == 503), "{refused:?}");
    assert_eq!(app.handler_calls(), 1);
    // The token signed by the keys of the server that went away is no longer good.
    let outcome = app.post(&old_token).await;
    assert_eq!(outcome.status, 401, "{outcome:?}");
    back.shutdown().await;
}

#[tokio::test]
async fn an_authorization_server_failing_at_start_gets_503_then_recovers_when_healed() {
    let server = TestAuthServer::start().await.expect("test AS");
    server.fail(Endpoint::OidcMetadata, Fault::Status(503));
    let app = serve(
        server.issuer(),
        HttpClient::default(),
        COOLDOWN,
        Duration::from_secs(600),
    )
    .await;
    let valid = token(&server, &app);
    for _ in 0..3 {
        let outcome = app.post(&valid).await;
        app.expect_server_side(&outcome, 503);
    }

    // Metadata back, JWKS still failing: still 503, never 200 and never 401. (Discovery
    // retries once its backoff, at most the cooldown, has passed.)
    server.heal(Endpoint::OidcMetadata);
    server.fail(Endpoint::Jwks, Fault::Status(500));
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    for _ in 0..3 {
        let outcome = app.post(&valid).await;
        let reason = app.expect_server_side(&outcome, 503);
        assert!(reason.contains("signing keys"), "{reason}");
    }

    server.heal(Endpoint::Jwks);
    let refused = until_ok(&app, &valid, 50, Duration::from_millis(100)).await;
    assert!(refused.iter().all(|o| o.status == 503), "{refused:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn cached_keys_outlive_a_failing_jwks_while_new_kids_fail_closed_until_it_heals() {
    let server = TestAuthServer::start().await.expect("test AS");
    let max_age = Duration::from_millis(400);
    let app = serve(server.issuer(), HttpClient::default(), COOLDOWN, max_age).await;
    let cached = token(&server, &app);
    assert_eq!(app.post(&cached).await.status, 200);

    server.fail(Endpoint::Jwks, Fault::Status(500));
    let failing_since = Instant::now();
    // Past max age, every request may start a background refresh; it fails, the keys stay.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(app.post(&cached).await.status, 200);
        // Tokens minted now with the same key work too: the key is cached, not the token.
        assert_eq!(app.post(&token(&server, &app)).await.status, 200);
    }

    // A key the cache has never seen: fail closed (503: it may be genuine, it cannot be
    // checked), never 200, never 401.
    server.rotate_keys();
    let rotated = token(&server, &app);
    let before = app.handler_calls();
    for _ in 0..5 {
        let outcome = app.post(&rotated).await;
        assert_eq!(outcome.status, 503, "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.handler_calls(), before);
    // The failing endpoint was asked about once per cooldown at most.
    let asked = server.request_count(Endpoint::Jwks) - 1;
    let allowed = 2 + (failing_since.elapsed().as_millis() / COOLDOWN.as_millis()) as usize;
    assert!(
        asked <= allowed,
        "{asked} JWKS fetches in the failure, {allowed} allowed"
    );

    server.heal(Endpoint::Jwks);
    let refused = until_ok(&app, &rotated, 50, Duration::from_millis(100)).await;
    assert!(refused.iter().all(|o| o.status == 503), "{refused:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_jwks_endpoint_fails_requests_within_the_timeout_and_fetches_stay_bounded() {
    let server = TestAuthServer::start().await.expect("test AS");
    let timeout = Duration::from_millis(500);
    let cooldown = Duration::from_secs(1);
    let http = HttpClient::builder()
        .timeout(timeout)
        .build()
        .expect("client");
    let app = serve(server.issuer(), http, cooldown, Duration::from_secs(600)).await;
    // It never answers: only the client timeout can end a fetch.
    server.fail(Endpoint::Jwks, Fault::Hang);
    let valid = token(&server, &app);

    let started = Instant::now();
    let url = app.url();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (url, valid) = (url.clone(), valid.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut slowest = Duration::ZERO;
            let mut statuses = Vec::new();
            for _ in 0..50 {
                let sent = Instant::now();
                let response =
                    tokio::time::timeout(HANG, client.post(&url).bearer_auth(&valid).send())
                        .await
                        .expect("a request hung")
                        .expect("request");
                slowest = slowest.max(sent.elapsed());
                statuses.push(response.status().as_u16());
            }
            (statuses, slowest)
        }));
    }
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    for client in clients {
        let (statuses, client_slowest) = client.await.expect("client task");
        assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
        answered += statuses.len();
        slowest = slowest.max(client_slowest);
    }
    let elapsed = started.elapsed();
    assert_eq!(answered, 400);
    // No request waited for the hanging server: at most about one client timeout (a request
    // that arrived during a fetch waits for it), with a wide margin for a loaded machine.
    assert!(
        slowest < timeout * 2 + Duration::from_secs(10),
        "a request took {slowest:?}"
    );
    // 400 requests, but fetches at most one per cooldown.
    let fetches = server.request_count(Endpoint::Jwks);
    let allowed = 2 + (elapsed.as_millis() / cooldown.as_millis()) as usize;
    assert!(
        (1..=allowed).contains(&fetches),
        "{fetches} JWKS fetches in {elapsed:?}, at most {allowed} allowed"
    );
    assert_eq!(app.handler_calls(), 0);
    server.shutdown().await;
}
