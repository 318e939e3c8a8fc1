//! Scheme policy, challenges and metadata (DPOP-06, DPOP-08, PRM-12), `htu` behind a proxy,
//! and the actix-web adapter.

use mcp_auth::bearer::ChallengeScheme;
use mcp_auth::testing::{DpopKey, TestAuthServer};
use serde_json::Value;

use super::{DpopApp, allow, bound_token, read};

const ALGS: [&str; 5] = ["ES256", "ES384", "EdDSA", "PS256", "RS256"];

#[tokio::test]
async fn dpop06_a_bound_token_as_bearer_is_refused_and_an_unbound_one_passes() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let reply = app.send(&[format!("Bearer {token}")], &[], &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    // The error goes in the challenge of the scheme used; DPoP is offered beside it.
    assert_eq!(
        reply.schemes(),
        [ChallengeScheme::Bearer, ChallengeScheme::Dpop]
    );
    assert_eq!(
        reply.challenge(ChallengeScheme::Bearer).error.as_deref(),
        Some("invalid_token")
    );
    assert_eq!(reply.challenge(ChallengeScheme::Dpop).error, None);
    // Even with a proof beside it: the Bearer scheme does not prove possession.
    let with_proof = app
        .send(
            &[format!("Bearer {token}")],
            &[app.proof(&key, &token)],
            &[],
        )
        .await;
    assert_eq!(with_proof.status, 401, "{with_proof:?}");

    let unbound = server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .sign();
    let reply = app.send(&[format!("Bearer {unbound}")], &[], &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["jkt"], Value::Null);
}

#[tokio::test]
async fn dpop06_with_dpop_required_every_bearer_token_gets_the_bare_dpop_challenge() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow().require(true)).await;
    let unbound = server
        .token()
        .audience(app.resource.as_str())
        .scope("read")
        .sign();
    let reply = app.send(&[format!("Bearer {unbound}")], &[], &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.schemes(), [ChallengeScheme::Dpop], "{reply:?}");
    let challenge = reply.challenge(ChallengeScheme::Dpop);
    assert_eq!(challenge.error, None);
    assert_eq!(challenge.algs, ALGS);
    assert_eq!(app.calls(), 0);
    // DPoP still works.
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    assert_eq!(app.dpop(&token, app.proof(&key, &token)).await.status, 200);
}

#[tokio::test]
async fn dpop08_unauthenticated_gets_both_challenges_without_error() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let reply = app.send(&[], &[], &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.schemes(),
        [ChallengeScheme::Bearer, ChallengeScheme::Dpop]
    );
    for challenge in &reply.challenges {
        assert_eq!(challenge.error, None, "{challenge:?}");
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some(app.metadata_url.as_str())
        );
        assert_eq!(challenge.scope, ["read"]);
    }
    assert_eq!(reply.challenge(ChallengeScheme::Dpop).algs, ALGS);
    assert!(reply.challenge(ChallengeScheme::Bearer).algs.is_empty());
}

#[tokio::test]
async fn dpop08_errors_go_in_the_challenge_of_the_scheme_used_and_ambiguity_is_400() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    // A bad proof: the error is in the DPoP challenge alone.
    app.dpop(&token, "x.y.z".to_owned())
        .await
        .expect_dpop_error("invalid_dpop_proof");
    // A malformed DPoP credential: 400 in the DPoP challenge.
    let reply = app
        .send(&["DPoP a b".to_owned()], &[app.proof(&key, &token)], &[])
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.schemes(), [ChallengeScheme::Dpop]);
    // Both schemes at once (two Authorization headers): 400 invalid_request in both.
    let reply = app
        .send(
            &[format!("Bearer {token}"), format!("DPoP {token}")],
            &[app.proof(&key, &token)],
            &[],
        )
        .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.schemes(),
        [ChallengeScheme::Bearer, ChallengeScheme::Dpop]
    );
    for challenge in &reply.challenges {
        assert_eq!(challenge.error.as_deref(), Some("invalid_request"));
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn dpop08_a_dpop_request_without_the_scope_gets_403_in_the_dpop_challenge() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = server
        .token()
        .audience(app.resource.as_str())
        .scope("write")
        .dpop_bound(&key)
        .sign();
    let reply = app.dpop(&token, app.proof(&key, &token)).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.schemes(), [ChallengeScheme::Dpop]);
    let challenge = reply.challenge(ChallengeScheme::Dpop);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope, ["read"]);
}

#[tokio::test]
async fn prm12_the_metadata_publishes_the_enforced_dpop_policy() {
    let server = TestAuthServer::start().await.unwrap();
    let http = reqwest::Client::new();
    for (require, expected) in [(false, false), (true, true)] {
        let app = DpopApp::serve(&server, allow().require(require)).await;
        let metadata: Value = http
            .get(&app.metadata_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata["dpop_signing_alg_values_supported"],
            serde_json::json!(ALGS)
        );
        assert_eq!(metadata["dpop_bound_access_tokens_required"], expected);
        let policy = app.guard.dpop_config().expect("the guard has DPoP");
        assert_eq!(policy.required(), expected);
        assert_eq!(policy.algorithms().len(), ALGS.len());
    }
}

#[tokio::test]
async fn behind_a_proxy_htu_names_the_public_base_url_never_forwarded_headers() {
    let server = TestAuthServer::start().await.unwrap();
    let dpop = allow().public_base_url("https://public.example.com/prefix");
    let app = DpopApp::serve(&server, dpop).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    // The proxy strips `/prefix`; upper case and the default port are normalised away.
    let public = key
        .proof("POST", "https://PUBLIC.example.com:443/prefix/mcp")
        .access_token(&token)
        .sign();
    assert_eq!(app.dpop(&token, public).await.status, 200);
    // The URL the server itself listens on is not the one clients address.
    let local = app.proof(&key, &token);
    let reply = app
        .send(
            &[format!("DPoP {token}")],
            &[local],
            &[
                ("x-forwarded-host", &app.addr.to_string()),
                ("x-forwarded-proto", "http"),
                ("forwarded", &format!("host={}", app.addr)),
            ],
        )
        .await;
    reply.expect_dpop_error("invalid_dpop_proof");
}

#[cfg(feature = "actix-web")]
#[actix_web::test]
async fn the_actix_middleware_checks_dpop_proofs() {
    use actix_web::{App, HttpServer, web};
    use mcp_auth::{AuthServer, AuthServerType, McpAuth, ProtectedResource};

    let server = TestAuthServer::start().await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let auth = McpAuth::builder()
        .protected_resource(
            ProtectedResource::new(resource.as_str())
                .authorization_server(AuthServer::discover(server.issuer(), AuthServerType::Oidc))
                .dpop(allow().build().unwrap()),
        )
        .build()
        .unwrap();
    let guard = auth.bearer_auth_jwt(&resource).build().unwrap();
    let middleware = guard.actix_middleware();
    let http = HttpServer::new(move || {
        App::new().service(
            web::resource("/mcp")
                .wrap(middleware.clone())
                .to(|| async { "ok" }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = http.handle();
    actix_web::rt::spawn(http);

    let key = DpopKey::generate();
    let token = server
        .token()
        .audience(resource.as_str())
        .dpop_bound(&key)
        .sign();
    let send = |proof: String| {
        reqwest::Client::new()
            .post(&resource)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let proof = key.proof("POST", &resource).access_token(&token).sign();
    let ok = read(send(proof.clone()).await.unwrap()).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    // The same proof again is a replay.
    let replay = read(send(proof).await.unwrap()).await;
    replay.expect_dpop_error("invalid_dpop_proof");
    handle.stop(true).await;
}

#[tokio::test]
async fn a_dpop_credential_through_headers_only_authenticate_is_a_500_never_a_pass() {
    let server = TestAuthServer::start().await.unwrap();
    let app = DpopApp::serve(&server, allow()).await;
    let key = DpopKey::generate();
    let token = bound_token(&server, &app, &key);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("DPoP {token}").parse().unwrap(),
    );
    headers.insert("dpop", app.proof(&key, &token).parse().unwrap());
    // `authenticate` sees no method or URL, so no proof can be checked: a server error that
    // names `authenticate_request`, not an acceptance.
    let rejection = app.guard.authenticate(&headers).await.unwrap_err();
    assert_eq!(rejection.status(), 500);
    assert_eq!(rejection.error().code(), "request_needed");
    assert!(
        rejection
            .error()
            .to_string()
            .contains("authenticate_request"),
        "{}",
        rejection.error()
    );
    // The same request through the adapter (authenticate_request) passes.
    let reply = app
        .send(&[format!("DPoP {token}")], &[app.proof(&key, &token)], &[])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}
