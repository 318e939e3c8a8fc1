#![cfg(feature = "test-util")]
//! Discovery and validation against the crate's test authorization server, over real HTTP.

use std::time::{Duration, Instant};

use mcp_auth::discovery::{
    AuthServerConfigErrorCode, DiscoveryOptions,
    fetch_server_config_by_well_known_url_with_options, fetch_server_config_with_options,
};
use mcp_auth::testing::{Endpoint, Fault, TestAuthServer};
use mcp_auth::{
    AuthServer, AuthServerType, DiscoveryError, FetchError, HttpClient, fetch_server_config,
};
use serde_json::json;

async fn server_with_path() -> TestAuthServer {
    TestAuthServer::builder()
        .issuer_path("/oidc")
        .start()
        .await
        .expect("test authorization server starts")
}

#[tokio::test]
async fn oidc_discovery_appends_the_well_known_path_to_the_issuer() {
    let server = server_with_path().await;
    let config = fetch_server_config(server.issuer(), AuthServerType::Oidc)
        .await
        .unwrap();
    assert_eq!(config.metadata.issuer, server.issuer());
    assert_eq!(config.server_type, AuthServerType::Oidc);
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);
    let recorded = server.requests(Endpoint::OidcMetadata);
    assert_eq!(recorded[0].path(), "/oidc/.well-known/openid-configuration");
}

#[tokio::test]
async fn oauth_discovery_inserts_the_well_known_path_before_the_issuer_path() {
    let server = server_with_path().await;
    let config = fetch_server_config(server.issuer(), AuthServerType::OAuth)
        .await
        .unwrap();
    assert_eq!(config.server_type, AuthServerType::OAuth);
    let recorded = server.requests(Endpoint::OAuthMetadata);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].path(),
        "/.well-known/oauth-authorization-server/oidc"
    );
}

#[tokio::test]
async fn auto_discovery_falls_back_in_the_mcp_client_order() {
    let server = server_with_path().await;
    server.fail(Endpoint::OAuthMetadata, Fault::Status(404));
    let config = fetch_server_config(server.issuer(), AuthServerType::Auto)
        .await
        .unwrap();
    assert_eq!(config.server_type, AuthServerType::Oidc);
    assert_eq!(server.request_count(Endpoint::OAuthMetadata), 1);
    let oidc = server.requests(Endpoint::OidcMetadata);
    assert_eq!(oidc.len(), 1, "the first OIDC location answered");
    assert_eq!(oidc[0].path(), "/.well-known/openid-configuration/oidc");

    // All locations missing: a NotFound error that lists every URL tried, in order.
    server.fail(Endpoint::OidcMetadata, Fault::Status(404));
    let err = fetch_server_config(server.issuer(), AuthServerType::Auto)
        .await
        .unwrap_err();
    let DiscoveryError::NotFound { tried, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(tried.len(), 3);
    assert!(tried[0].contains("/.well-known/oauth-authorization-server/oidc"));
    assert!(tried[1].contains("/.well-known/openid-configuration/oidc"));
    assert!(tried[2].contains("/oidc/.well-known/openid-configuration"));
}

#[tokio::test]
async fn auto_discovery_prefers_rfc8414_when_it_answers() {
    let server = TestAuthServer::start().await.unwrap();
    let config = fetch_server_config(server.issuer(), AuthServerType::Auto)
        .await
        .unwrap();
    assert_eq!(config.server_type, AuthServerType::OAuth);
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 0);
}

#[tokio::test]
async fn a_document_naming_another_issuer_is_not_trusted() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"issuer": "https://attacker.example"})));
    let err = fetch_server_config(server.issuer(), AuthServerType::Oidc)
        .await
        .unwrap_err();
    match &err {
        DiscoveryError::IssuerMismatch { expected, actual } => {
            assert_eq!(expected, server.issuer());
            assert_eq!(actual, "https://attacker.example");
        }
        other => panic!("expected IssuerMismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(server.issuer()) && message.contains("https://attacker.example"));
}

#[tokio::test]
async fn the_issuer_comparison_is_exact_about_trailing_slashes() {
    let server = TestAuthServer::start().await.unwrap();
    let with_slash = format!("{}/", server.issuer());
    let err = fetch_server_config(&with_slash, AuthServerType::OAuth)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failed_fetch_reports_the_status_and_url() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(Endpoint::OidcMetadata, Fault::Status(500));
    let err = fetch_server_config(server.issuer(), AuthServerType::Oidc)
        .await
        .unwrap_err();
    match &err {
        DiscoveryError::Fetch(FetchError::Status { url, status }) => {
            assert_eq!(status.as_u16(), 500);
            assert_eq!(url, &server.oidc_metadata_url());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("500"));
}

#[tokio::test]
async fn bodies_that_are_not_metadata_are_invalid_metadata() {
    let server = TestAuthServer::start().await.unwrap();
    for body in [
        &b"<html>not json</html>"[..],
        b"[1,2,3]",
        b"null",
        b"{}",
        b"{\"issuer\": 5}",
    ] {
        server.fail(
            Endpoint::OidcMetadata,
            Fault::Body {
                status: 200,
                content_type: "application/json".into(),
                body: body.to_vec().into(),
            },
        );
        let err = fetch_server_config(server.issuer(), AuthServerType::Oidc)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DiscoveryError::InvalidMetadata { .. }),
            "{}: {err:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn the_transform_hook_runs_before_parsing() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"response_types_supported": null})));
    let plain = fetch_server_config(server.issuer(), AuthServerType::Oidc).await;
    assert!(matches!(plain, Err(DiscoveryError::InvalidMetadata { .. })));

    let options = DiscoveryOptions::default().transform(|mut doc| {
        doc["response_types_supported"] = json!(["code"]);
        doc
    });
    let config = fetch_server_config_with_options(server.issuer(), AuthServerType::Oidc, &options)
        .await
        .unwrap();
    assert_eq!(config.metadata.response_types_supported, ["code"]);
}

#[tokio::test]
async fn a_slow_server_times_out_within_the_configured_time() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(Endpoint::OidcMetadata, Fault::Hang);
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let options = DiscoveryOptions::default().http_client(http);
    let started = Instant::now();
    let err = fetch_server_config_with_options(server.issuer(), AuthServerType::Oidc, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::Fetch(FetchError::Timeout { .. })),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_trickling_server_is_cut_off_by_the_total_timeout() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(
        Endpoint::OidcMetadata,
        Fault::Trickle {
            chunk: 1,
            interval: Duration::from_millis(50),
            total: 10_000,
        },
    );
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let options = DiscoveryOptions::default().http_client(http);
    let started = Instant::now();
    let err = fetch_server_config_with_options(server.issuer(), AuthServerType::Oidc, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::Fetch(FetchError::Timeout { .. })),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn an_oversized_document_is_refused_not_allocated() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(Endpoint::OidcMetadata, Fault::Oversized(2 * 1024 * 1024));
    let err = fetch_server_config(server.issuer(), AuthServerType::Oidc)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::Fetch(FetchError::TooLarge {
                limit: 1_048_576,
                ..
            })
        ),
        "{err:?}"
    );

    server.heal_all();
    let small = HttpClient::builder()
        .max_response_bytes(64)
        .build()
        .unwrap();
    let options = DiscoveryOptions::default().http_client(small);
    let err = fetch_server_config_with_options(server.issuer(), AuthServerType::Oidc, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::Fetch(FetchError::TooLarge { limit: 64, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirects_are_followed_within_the_origin_only() {
    let server = TestAuthServer::start().await.unwrap();
    // Same origin: followed.
    server.fail(
        Endpoint::OAuthMetadata,
        Fault::Redirect {
            status: 302,
            location: server.oidc_metadata_url(),
        },
    );
    let config = fetch_server_config(server.issuer(), AuthServerType::OAuth)
        .await
        .unwrap();
    assert_eq!(config.metadata.issuer, server.issuer());

    // Another origin (another port): refused, and nothing is fetched there.
    let elsewhere = TestAuthServer::start().await.unwrap();
    server.fail(
        Endpoint::OAuthMetadata,
        Fault::Redirect {
            status: 302,
            location: elsewhere.oauth_metadata_url(),
        },
    );
    let err = fetch_server_config(server.issuer(), AuthServerType::OAuth)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::Fetch(FetchError::Redirect { .. })),
        "{err:?}"
    );
    assert_eq!(elsewhere.request_count(Endpoint::OAuthMetadata), 0);
}

#[tokio::test]
async fn plain_http_to_a_public_host_is_refused_before_any_request() {
    let err = fetch_server_config("http://auth.example.com", AuthServerType::Oidc)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::Fetch(FetchError::InsecureUrl { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn fetching_by_well_known_url_keeps_unknown_fields() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({
        "x_vendor": {"nested": [1, 2, 3]},
        "dpop_signing_alg_values_supported": ["ES256"],
    })));
    let config = fetch_server_config_by_well_known_url_with_options(
        &server.oauth_metadata_url(),
        AuthServerType::OAuth,
        &DiscoveryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        config.metadata.extra["x_vendor"],
        json!({"nested": [1, 2, 3]})
    );
    // Re-serialising gives back exactly the document served.
    assert_eq!(
        serde_json::to_value(&config.metadata).unwrap(),
        server.metadata()
    );
}

#[tokio::test]
async fn a_hundred_concurrent_first_uses_share_one_fetch() {
    let server = TestAuthServer::start().await.unwrap();
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc);
    let calls = (0..100).map(|_| {
        let auth_server = auth_server.clone();
        tokio::spawn(async move { auth_server.metadata().await })
    });
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result.unwrap().unwrap().issuer, server.issuer());
    }
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);
    // Later calls are served from the cache.
    auth_server.metadata().await.unwrap();
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_share_a_failure_and_the_next_call_retries() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail_times(Endpoint::OidcMetadata, Fault::Status(503), 1);
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_retry_interval(Duration::from_millis(100));
    let calls = (0..20).map(|_| {
        let auth_server = auth_server.clone();
        tokio::spawn(async move { auth_server.metadata().await })
    });
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_err()));
    // Every caller shared the failing fetch or got its error during the backoff.
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);

    // After the backoff, the next call tries again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    auth_server.metadata().await.unwrap();
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
}

#[tokio::test]
async fn a_failure_is_retried_after_a_short_backoff() {
    let server = TestAuthServer::start().await.unwrap();
    server.fail_times(Endpoint::OidcMetadata, Fault::Status(503), 1);
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_retry_interval(Duration::from_millis(100));
    assert!(auth_server.metadata().await.is_err());
    // During the backoff the error is answered without a request.
    assert!(auth_server.metadata().await.is_err());
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(auth_server.metadata().await.is_ok());
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_while_the_server_is_down_costs_one_fetch_per_backoff_step_and_heals_within_seconds()
 {
    let server = TestAuthServer::start().await.unwrap();
    server.fail(Endpoint::OidcMetadata, Fault::Status(500));
    // The default backoff: 1 s after the first failure, then 2 s, 4 s, ... up to 30 s.
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        let calls = (0..50).map(|_| {
            let auth_server = auth_server.clone();
            tokio::spawn(async move { auth_server.metadata().await })
        });
        for result in futures_util::future::join_all(calls).await {
            assert!(result.unwrap().is_err());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Attempts at about 0 s, 1 s and 3 s: two within 2.5 s, whatever the number of callers.
    let attempts = server.request_count(Endpoint::OidcMetadata);
    assert!((1..=2).contains(&attempts), "{attempts} fetches");

    server.heal(Endpoint::OidcMetadata);
    let healed = Instant::now();
    loop {
        if auth_server.metadata().await.is_ok() {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(5),
            "still failing after the heal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next attempt was due at about 3 s after the first failure.
    assert!(
        healed.elapsed() < Duration::from_secs(2),
        "{:?}",
        healed.elapsed()
    );
}

#[tokio::test]
async fn metadata_is_refreshed_after_the_interval() {
    let server = TestAuthServer::start().await.unwrap();
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_refresh_interval(Duration::from_millis(200));
    auth_server.metadata().await.unwrap();
    server.set_metadata_override(Some(json!({"jwks_uri": server.url("/rotated/jwks")})));
    assert_eq!(
        auth_server.metadata().await.unwrap().jwks_uri,
        Some(server.jwks_uri())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refreshed = auth_server.metadata().await.unwrap();
    assert_eq!(refreshed.jwks_uri, Some(server.url("/rotated/jwks")));
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_previous_document_and_backs_off() {
    let server = TestAuthServer::start().await.unwrap();
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_refresh_interval(Duration::from_millis(100))
        .with_retry_interval(Duration::from_secs(60));
    let first = auth_server.metadata().await.unwrap();
    server.fail(Endpoint::OidcMetadata, Fault::Status(500));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stale = auth_server.metadata().await.unwrap();
    assert_eq!(stale, first);
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
    // Within the retry interval, no further request is made.
    for _ in 0..10 {
        auth_server.metadata().await.unwrap();
    }
    assert_eq!(server.request_count(Endpoint::OidcMetadata), 2);
}

#[tokio::test]
async fn a_discovered_server_that_does_not_fit_mcp_is_refused() {
    let server = TestAuthServer::start().await.unwrap();
    server.set_metadata_override(Some(json!({"code_challenge_methods_supported": null})));
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc);
    let err = auth_server.metadata().await.unwrap_err();
    match &err {
        DiscoveryError::Invalid { result, .. } => {
            assert_eq!(
                result.errors[0].code,
                AuthServerConfigErrorCode::PkceNotSupported
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("pkce_not_supported"));
}

#[tokio::test]
async fn a_discovered_endpoint_on_another_origin_is_refused_unless_allowed() {
    let server = TestAuthServer::start().await.unwrap();
    for field in ["jwks_uri", "userinfo_endpoint", "introspection_endpoint"] {
        server.set_metadata_override(Some(json!({ field: "https://keys.attacker.example/x" })));
        let refused = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
            .metadata()
            .await
            .unwrap_err();
        match &refused {
            DiscoveryError::ForeignEndpoint {
                field: named, url, ..
            } => {
                assert_eq!(*named, field);
                assert_eq!(url, "https://keys.attacker.example/x");
            }
            other => panic!("{field}: {other:?}"),
        }
        assert!(
            refused
                .to_string()
                .contains("with_allowed_endpoint_origins")
        );
    }
    // Same host, other port: another origin too.
    let other_port = format!("http://127.0.0.1:{}/jwks", server.local_addr().port() ^ 1);
    server.set_metadata_override(Some(json!({ "jwks_uri": other_port })));
    assert!(matches!(
        AuthServer::discover(server.issuer(), AuthServerType::Oidc)
            .metadata()
            .await,
        Err(DiscoveryError::ForeignEndpoint { .. })
    ));

    // An explicitly allowed origin is accepted.
    server.set_metadata_override(Some(
        json!({ "jwks_uri": "https://keys.provider.example/jwks" }),
    ));
    let allowed = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_allowed_endpoint_origins([url::Url::parse("https://keys.provider.example").unwrap()])
        .metadata()
        .await
        .unwrap();
    assert_eq!(
        allowed.jwks_uri.as_deref(),
        Some("https://keys.provider.example/jwks")
    );
}

#[tokio::test]
async fn a_foreign_endpoint_is_echoed_at_most_256_bytes() {
    let server = TestAuthServer::start().await.unwrap();
    let long = format!("https://attacker.example/{}", "a".repeat(10_000));
    server.set_metadata_override(Some(json!({ "jwks_uri": long })));
    let refused = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .metadata()
        .await
        .unwrap_err();
    let DiscoveryError::ForeignEndpoint { url, .. } = &refused else {
        panic!("{refused:?}");
    };
    assert!(url.len() <= 256 + '…'.len_utf8(), "{}", url.len());
    assert!(refused.to_string().len() < 1_000);
}

#[tokio::test]
async fn an_allowed_endpoint_on_a_private_address_is_refused_before_any_connection() {
    let server = TestAuthServer::start().await.unwrap();
    // Allowed by origin, but on the cloud metadata address: the address screening refuses it.
    server.set_metadata_override(Some(json!({ "jwks_uri": "http://169.254.169.254/keys" })));
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_http_client(
            HttpClient::builder()
                .allow_insecure_http(true)
                .build()
                .unwrap(),
        )
        .with_allowed_endpoint_origins([url::Url::parse("http://169.254.169.254").unwrap()]);
    let metadata = auth_server.metadata().await.unwrap();
    let verifier = mcp_auth::verify::JwtVerifier::builder()
        .authorization_server(auth_server.clone())
        .build()
        .unwrap();
    let token = server
        .token()
        .audience("https://api.example.com/mcp")
        .sign();
    let started = Instant::now();
    let refused = mcp_auth::TokenVerifier::verify(&verifier, &token)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it tried to connect"
    );
    let text = refused.to_string();
    assert!(
        text.contains("169.254.169.254") && text.contains("allow_private_addresses"),
        "{text}"
    );
    assert_eq!(
        metadata.jwks_uri.as_deref(),
        Some("http://169.254.169.254/keys")
    );

    // With private addresses allowed, the request is attempted (and fails to connect, or
    // times out: there is no such server here).
    let permissive = HttpClient::builder()
        .allow_insecure_http(true)
        .allow_private_addresses(true)
        .connect_timeout(Duration::from_millis(200))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(permissive.allows_private_addresses());
    let auth_server = AuthServer::discover(server.issuer(), AuthServerType::Oidc)
        .with_http_client(permissive)
        .with_allowed_endpoint_origins([url::Url::parse("http://169.254.169.254").unwrap()]);
    let verifier = mcp_auth::verify::JwtVerifier::builder()
        .authorization_server(auth_server)
        .build()
        .unwrap();
    let refused = mcp_auth::TokenVerifier::verify(&verifier, &token)
        .await
        .unwrap_err();
    assert!(
        !refused.to_string().contains("allow_private_addresses"),
        "{refused}"
    );
}
