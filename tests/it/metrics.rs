//! The `metrics` feature over real HTTP: a guarded app on loopback, the test authorization
//! server, and a real recorder (`metrics-util`'s `DebuggingRecorder`) that sees exactly what an
//! exporter would.
//!
//! Each test installs its recorder for its own thread only (`metrics::with_local_recorder`)
//! and runs on a current-thread runtime, so the guard, the JWKS fetch task and the app all
//! record into it and no other test's requests are counted.
#![cfg(all(feature = "metrics", feature = "test-util"))]

use std::future::Future;

use crate::support::hostile::App;
use crate::support::logs;

use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::verify::{CachedVerifier, JwtVerifier, JwtVerifierBuilder};
use mcp_auth::{AuthServer, AuthServerType, BearerAuth, McpAuth, ProtectedResource};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// What the recorder holds at the end of a test.
struct Recorded(Vec<(CompositeKey, DebugValue)>);

impl Recorded {
    /// The series of `name` whose labels are exactly `labels` (in any order).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0.iter().find_map(|(key, value)| {
            let key = key.key();
            let same = key.name() == name
                && key.labels().count() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
            same.then_some(value)
        })
    }

    /// A counter's value; 0 when it was never recorded.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            Some(other) => panic!("{name} {labels:?} is not a counter: {other:?}"),
            None => 0,
        }
    }

    /// The observations of a histogram (empty when never recorded).
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.value(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            Some(other) => panic!("{name} {labels:?} is not a histogram: {other:?}"),
            None => Vec::new(),
        }
    }

    /// The sum of every series of counter `name`.
    fn total(&self, name: &str) -> u64 {
        self.0
            .iter()
            .filter(|(key, _)| key.key().name() == name)
            .map(|(_, value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    }
}

/// Runs `test` on a current-thread runtime with a recorder of its own, and returns what it
/// recorded.
fn recorded<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(test()));
    drop(runtime);
    Recorded(
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (key, value))
            .collect(),
    )
}

async fn start() -> TestAuthServer {
    TestAuthServer::start()
        .await
        .expect("the test authorization server starts")
}

/// `/mcp` guarded by a JWT verifier (as `configure` sets it) for `server`, discovered, needing
/// `read`.
async fn serve(
    server: &TestAuthServer,
    configure: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
) -> App {
    let issuer = server.issuer().to_owned();
    App::serve(move |resource| {
        let auth = config(&issuer, resource);
        let guard = auth
            .bearer_auth_jwt_with(resource, configure)
            .required_scopes(["read"])
            .build()
            .expect("guard");
        (auth, guard)
    })
    .await
}

fn config(issuer: &str, resource: &str) -> McpAuth {
    McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(resource)
                .authorization_server(AuthServer::discover(issuer, AuthServerType::Oidc)),
        )
        .build()
        .expect("configuration")
}

const REQUESTS: &str = "mcp_auth_requests_total";

#[test]
fn allowed_and_refused_requests_are_counted_by_reason_and_status() {
    let recorded = recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        let good = server.token().audience(app.url()).scope("read").sign();
        assert_eq!(app.post(&good).await.status, 200);
        assert_eq!(app.post(&good).await.status, 200);
        let no_credentials = app.raw_post(&[]).await;
        assert_eq!(no_credentials.status, 401);
        assert_eq!(no_credentials.challenge().error, None);
        let garbage = app.post("not-a-jwt").await;
        assert_eq!(garbage.status, 401);
        let unscoped = server.token().audience(app.url()).scope("write").sign();
        assert_eq!(app.post(&unscoped).await.status, 403);
        let elsewhere = server
            .token()
            .audience("https://other.example.com/mcp")
            .scope("read")
            .sign();
        assert_eq!(app.post(&elsewhere).await.status, 401);
    });

    let allowed = [("outcome", "allowed"), ("reason", "ok")];
    assert_eq!(recorded.counter(REQUESTS, &allowed), 2);
    for (reason, status) in [
        ("missing_auth_header", "401"),
        ("invalid_token", "401"),
        ("missing_required_scopes", "403"),
        ("invalid_audience", "401"),
    ] {
        let labels = [
            ("outcome", "refused"),
            ("reason", reason),
            ("status", status),
        ];
        assert_eq!(recorded.counter(REQUESTS, &labels), 1, "{reason}");
    }
    assert_eq!(recorded.total(REQUESTS), 6, "one decision per request");
}

#[test]
fn jwks_and_discovery_fetches_are_counted_with_outcome_and_duration() {
    let recorded = recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        let token = server.token().audience(app.url()).scope("read").sign();
        server.fail(Endpoint::Jwks, Fault::Status(500));
        // The fetch fails: 503, and the next request falls in the backoff (no fetch).
        app.expect_server_side(&app.post(&token).await, 503);
        app.expect_server_side(&app.post(&token).await, 503);
        assert_eq!(server.request_count(Endpoint::Jwks), 1);
    });

    let error = [("outcome", "error")];
    assert_eq!(recorded.counter("mcp_auth_jwks_fetches_total", &error), 1);
    assert_eq!(
        recorded.counter("mcp_auth_jwks_fetches_total", &[("outcome", "ok")]),
        0
    );
    let durations = recorded.histogram("mcp_auth_jwks_fetch_duration_seconds", &error);
    assert_eq!(durations.len(), 1);
    assert!(durations[0] > 0.0 && durations[0] < 30.0, "{durations:?}");
    assert_eq!(
        recorded.counter(
            "mcp_auth_jwks_refresh_suppressed_total",
            &[("reason", "backoff")]
        ),
        1
    );
    assert_eq!(
        recorded.counter(
            REQUESTS,
            &[
                ("outcome", "refused"),
                ("reason", "auth_server_unavailable"),
                ("status", "503")
            ]
        ),
        2
    );
    // The metadata was fetched once (discovery on first use) and is cached since.
    let ok = [("outcome", "ok")];
    assert_eq!(recorded.counter("mcp_auth_discovery_fetches_total", &ok), 1);
    assert_eq!(
        recorded
            .histogram("mcp_auth_discovery_fetch_duration_seconds", &ok)
            .len(),
        1
    );
}

#[test]
fn a_successful_jwks_fetch_and_the_cooldown_after_it_are_counted() {
    let recorded = recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        let token = server.token().audience(app.url()).scope("read").sign();
        assert_eq!(app.post(&token).await.status, 200);
        // A key the cached set does not have, within the cooldown: no fetch, 401.
        server.rotate_keys();
        let rotated = server.token().audience(app.url()).scope("read").sign();
        let refused = app.post(&rotated).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.challenge().error.as_deref(), Some("invalid_token"));
        assert_eq!(server.request_count(Endpoint::Jwks), 1);
    });

    let ok = [("outcome", "ok")];
    assert_eq!(recorded.counter("mcp_auth_jwks_fetches_total", &ok), 1);
    assert_eq!(
        recorded
            .histogram("mcp_auth_jwks_fetch_duration_seconds", &ok)
            .len(),
        1
    );
    assert_eq!(
        recorded.counter(
            "mcp_auth_jwks_refresh_suppressed_total",
            &[("reason", "cooldown")]
        ),
        1
    );
}

#[test]
fn discovery_failures_and_its_backoff_are_counted() {
    let recorded = recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        let token = server.token().audience(app.url()).scope("read").sign();
        server.fail(Endpoint::OidcMetadata, Fault::Status(500));
        app.expect_server_side(&app.post(&token).await, 503);
        app.expect_server_side(&app.post(&token).await, 503);
    });

    let error = [("outcome", "error")];
    assert_eq!(
        recorded.counter("mcp_auth_discovery_fetches_total", &error),
        1
    );
    assert_eq!(
        recorded
            .histogram("mcp_auth_discovery_fetch_duration_seconds", &error)
            .len(),
        1
    );
    assert_eq!(
        recorded.counter(
            "mcp_auth_discovery_refresh_suppressed_total",
            &[("reason", "backoff")]
        ),
        1
    );
    assert_eq!(recorded.total("mcp_auth_jwks_fetches_total"), 0);
}

const LOOKUPS: &str = "mcp_auth_cache_lookups_total";

#[test]
fn jwt_cache_hits_and_misses_are_counted() {
    let recorded = recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        let alice = server
            .token()
            .subject("alice")
            .audience(app.url())
            .scope("read")
            .sign();
        let bob = server
            .token()
            .subject("bob")
            .audience(app.url())
            .scope("read")
            .sign();
        for token in [&alice, &alice, &alice, &bob] {
            assert_eq!(app.post(token).await.status, 200);
        }
    });

    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "jwt"), ("result", "miss")]),
        2
    );
    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "jwt"), ("result", "hit")]),
        2
    );
    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "token"), ("result", "hit")]),
        0
    );
}

#[test]
fn token_cache_hits_and_misses_are_counted_and_an_uncached_verifier_counts_none() {
    let recorded = recorded(|| async {
        let server = start().await;
        let issuer = server.issuer().to_owned();
        let jwks = server.jwks_uri();
        let app = App::serve(move |resource| {
            let auth = config(&issuer, resource);
            // The JWT verifier's own cache off: only the `TokenCache` in front of it counts.
            let jwt = JwtVerifier::builder()
                .issuer_jwks(&issuer, jwks)
                .cache(false)
                .build()
                .expect("verifier");
            let guard: BearerAuth = auth
                .bearer_auth(resource, CachedVerifier::new(jwt))
                .required_scopes(["read"])
                .build()
                .expect("guard");
            (auth, guard)
        })
        .await;
        let token = server.token().audience(app.url()).scope("read").sign();
        for _ in 0..3 {
            assert_eq!(app.post(&token).await.status, 200);
        }
    });

    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "token"), ("result", "miss")]),
        1
    );
    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "token"), ("result", "hit")]),
        2
    );
    assert_eq!(
        recorded.counter(LOOKUPS, &[("cache", "jwt"), ("result", "miss")]),
        0,
        "a verifier whose cache is off looks nothing up"
    );
}

#[test]
fn each_verification_runs_in_a_span_that_records_its_decision() {
    logs::capture();
    let mut resource = String::new();
    recorded(|| async {
        let server = start().await;
        let app = serve(&server, |jwt| jwt).await;
        resource = app.url();
        let good = server.token().audience(app.url()).scope("read").sign();
        assert_eq!(app.post(&good).await.status, 200);
        assert_eq!(app.post("not-a-jwt").await.status, 401);
    });

    let text = logs::text();
    for (outcome, code) in [("allowed", "ok"), ("refused", "invalid_token")] {
        let span = format!(
            "mcp_auth.authenticate{{resource=Some({resource:?}) outcome=\"{outcome}\" \
             code=\"{code}\"}}"
        );
        assert!(text.contains(&span), "no line in {span}");
    }
}

/// Store errors with Redis down: a session check answers 503 and counts one session-store
/// error; an introspection cache miss counts its failed read and write and still verifies.
#[cfg(feature = "redis")]
#[test]
fn store_errors_are_counted_for_sessions_and_caches() {
    use mcp_auth::TokenVerifier;
    use mcp_auth::tower::SessionBinding;
    use mcp_auth::verify::IntrospectionVerifier;
    use tower::{Layer, ServiceExt};

    let recorded = recorded(|| async {
        let mut redis = crate::support::redis::RedisServer::start().await;
        let store = redis.store("metrics");
        redis.kill();
        let server = start().await;
        let verifier = IntrospectionVerifier::builder(AuthServer::discover(
            server.issuer(),
            AuthServerType::OAuth,
        ))
        .client_secret_basic(server.client_id(), server.client_secret())
        .store(store.clone())
        .build()
        .unwrap();
        let token = server.issue_opaque_token(serde_json::json!({}));
        verifier
            .verify(&token)
            .await
            .expect("verified by the server");

        let resource = "https://api.example.com/mcp";
        let issuer = server.issuer().to_owned();
        let guard = config(server.issuer(), resource)
            .bearer_auth(resource, move |token: String| {
                let issuer = issuer.clone();
                async move {
                    Ok::<_, mcp_auth::VerifyError>(
                        mcp_auth::AuthInfo::new(token, issuer)
                            .with_subject("alice")
                            .with_audience([resource]),
                    )
                }
            })
            .build()
            .unwrap();
        let sessions = SessionBinding::builder().store(store).build().unwrap();
        let mcp = tower::service_fn(|_: http::Request<_>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::new(),
            )))
        });
        let service = guard
            .mcp_guard()
            .session_binding(sessions)
            .layer()
            .layer(mcp);
        let request = http::Request::post("/mcp")
            .header("authorization", "Bearer t")
            .header("mcp-session-id", "s-1")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    });
    assert_eq!(
        recorded.counter("mcp_auth_session_store_errors_total", &[("store", "redis")]),
        1
    );
    assert_eq!(
        recorded.counter("mcp_auth_cache_store_errors_total", &[("store", "redis")]),
        2,
        "the failed read and the failed write of the miss"
    );
}
