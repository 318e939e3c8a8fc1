use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::super::OperationScopesBuilder;
use super::super::tests::{call, policy};
use super::*;
use crate::bearer::{BearerAuthBuilder, BearerChallenge};
use crate::error::VerifyError;

const RESOURCE: &str = "https://h/mcp";
const METADATA: &str = "https://h/.well-known/oauth-protected-resource/mcp";

fn guard() -> BearerAuthBuilder {
    let verifier = |_token: String| async {
        Err::<AuthInfo, _>(VerifyError::invalid_token("unused in these tests"))
    };
    BearerAuth::builder(
        Arc::new(verifier),
        vec!["https://as".into()],
        Some(RESOURCE.into()),
        Some(METADATA.into()),
    )
}

fn info(scopes: &[&str]) -> AuthInfo {
    AuthInfo::new("t", "https://as")
        .with_subject("alice")
        .with_scopes(scopes.iter().copied())
}

/// What the inner service saw.
#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicUsize>,
    body: Arc<std::sync::Mutex<Option<Bytes>>>,
}

/// The layer around an inner service that records the calls and the body bytes, and
/// answers 200 with those bytes.
fn service(
    guard: BearerAuthBuilder,
    policy: OperationScopesBuilder,
    seen: Seen,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Either<Full<Bytes>, Full<Bytes>>>,
    Error = Infallible,
> + Clone {
    let inner = tower::service_fn(move |request: Request<Either<Full<Bytes>, Full<Bytes>>>| {
        let seen = seen.clone();
        async move {
            seen.calls.fetch_add(1, Ordering::SeqCst);
            assert!(request.extensions().get::<GrantedScopes>().is_some());
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            *seen.body.lock().unwrap() = Some(bytes.clone());
            Ok::<_, Infallible>(Response::new(Full::new(bytes)))
        }
    });
    OperationScopesLayer::new(guard.build().unwrap(), policy.build().unwrap()).layer(inner)
}

fn post(body: impl Into<Bytes>, info: Option<AuthInfo>) -> Request<Full<Bytes>> {
    let mut request = Request::post("/mcp").body(Full::new(body.into())).unwrap();
    if let Some(info) = info {
        request.extensions_mut().insert(info);
    }
    request
}

async fn send(
    policy: OperationScopesBuilder,
    request: Request<Full<Bytes>>,
) -> (Response<Either<Full<Bytes>, Full<Bytes>>>, Seen) {
    let seen = Seen::default();
    let response = service(guard(), policy, seen.clone())
        .oneshot(request)
        .await
        .unwrap();
    (response, seen)
}

async fn body_json(response: Response<Either<Full<Bytes>, Full<Bytes>>>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn challenge(response: &Response<Either<Full<Bytes>, Full<Bytes>>>) -> BearerChallenge {
    BearerChallenge::parse(response.headers()[WWW_AUTHENTICATE].to_str().unwrap()).unwrap()
}

fn layer(policy: OperationScopesBuilder) -> OperationScopesLayer {
    OperationScopesLayer::new(guard().build().unwrap(), policy.build().unwrap())
}

#[tokio::test]
async fn missing_operation_scope_gets_403_with_the_step_up_challenge() {
    let (response, seen) = send(
        policy(),
        post(call("purge"), Some(info(&["files:write", "openid"]))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    let challenge = challenge(&response);
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    // The operation's scopes, then the relevant granted ones (openid is not relevant).
    assert_eq!(challenge.scope, ["files:write", "files:admin"]);
    assert_eq!(challenge.resource_metadata.as_deref(), Some(METADATA));
    let body = body_json(response).await;
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["missing_scopes"], json!(["files:admin"]));
}

#[tokio::test]
async fn a_dpop_bound_caller_gets_the_step_up_403_in_the_dpop_challenge() {
    let dpop = crate::dpop::DpopConfig::builder().build().unwrap();
    let bound =
        info(&["files:write"]).with_binding(crate::TokenBinding::DpopKey { jkt: "k".into() });
    let seen = Seen::default();
    let response = service(guard().dpop(dpop.clone()), policy(), seen.clone())
        .oneshot(post(call("purge"), Some(bound)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenges: Vec<BearerChallenge> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| BearerChallenge::parse(v.to_str().unwrap()).unwrap())
        .collect();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert_eq!(challenges[0].scheme, crate::bearer::ChallengeScheme::Dpop);
    assert_eq!(challenges[0].error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenges[0].scope, ["files:write", "files:admin"]);
    assert!(!challenges[0].algs.is_empty());
    // The same guard refuses an unbound caller in the Bearer challenge (DPoP offered bare).
    let response = service(guard().dpop(dpop), policy(), Seen::default())
        .oneshot(post(call("purge"), Some(info(&["files:write"]))))
        .await
        .unwrap();
    let first = challenge(&response);
    assert_eq!(first.scheme, crate::bearer::ChallengeScheme::Bearer);
    assert_eq!(first.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn challenge_strategy_required_names_only_what_the_operation_needs() {
    let guard = guard().required_scopes(["mcp"]);
    let granted = info(&["mcp", "files:read", "openid"]);
    let run = |strategy| {
        let guard = guard.clone();
        let granted = granted.clone();
        async move {
            let seen = Seen::default();
            let response = service(guard, policy().challenge_scopes(strategy), seen)
                .oneshot(post(call("delete"), Some(granted)))
                .await
                .unwrap();
            challenge(&response).scope
        }
    };
    assert_eq!(run(ChallengeScopes::Required).await, ["mcp", "files:write"]);
    assert_eq!(
        run(ChallengeScopes::RequiredAndGranted).await,
        ["mcp", "files:write", "files:read"]
    );
    // Deterministic: the same request gives the same challenge.
    assert_eq!(
        run(ChallengeScopes::RequiredAndGranted).await,
        run(ChallengeScopes::RequiredAndGranted).await
    );
}

#[tokio::test]
async fn known_scopes_and_hierarchy_scopes_count_as_relevant() {
    let guard = guard().scope_implies("files:owner", ["files:read"]);
    let policy = policy().known_scopes(["profile:edit"]);
    let seen = Seen::default();
    let response = service(guard, policy, seen)
        .oneshot(post(
            call("delete"),
            Some(info(&["email", "profile:edit", "files:owner"])),
        ))
        .await
        .unwrap();
    assert_eq!(
        challenge(&response).scope,
        ["files:write", "profile:edit", "files:owner"]
    );
}

#[tokio::test]
async fn hierarchy_satisfies_operation_scopes() {
    let guard = guard().scope_implies("files:admin", ["files:write"]);
    let seen = Seen::default();
    let response = service(guard, policy(), seen.clone())
        .oneshot(post(call("purge"), Some(info(&["files:admin"]))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn inner_service_sees_identical_bytes() {
    // Odd spacing, escapes, unicode, and a batch: passed on byte for byte.
    let body = Bytes::from_static(
        "[ {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"delete\",\"arguments\":{\"p\":\"\\u00e9 \u{e9}\"}}} ,\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"} ]"
            .as_bytes(),
    );
    let (response, seen) = send(policy(), post(body.clone(), Some(info(&["files:write"])))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.body.lock().unwrap().as_ref(), Some(&body));
    let echoed = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(echoed, body);
}

#[tokio::test]
async fn non_json_and_unknown_methods_pass_through_unchanged() {
    for body in [
        Bytes::from_static(b"\x00\xffnot json"),
        Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"no/such/method"}"#),
        Bytes::from(call("unlisted")),
    ] {
        let (response, seen) = send(policy(), post(body.clone(), Some(info(&[])))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.body.lock().unwrap().as_ref(), Some(&body));
    }
}

#[tokio::test]
async fn batch_with_one_forbidden_message_is_refused_whole() {
    let batch = format!("[{}, {}]", call("unlisted"), call("delete"));
    let (response, seen) = send(policy(), post(batch, Some(info(&["files:read"])))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(challenge(&response).scope, ["files:write", "files:read"]);
}

#[tokio::test]
async fn duplicate_members_get_400() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list","name":"delete"}}"#;
    let (response, seen) = send(policy(), post(body, Some(info(&[])))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(body_json(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn declared_length_over_the_cap_gets_413_before_reading() {
    let mut request = post(call("delete"), Some(info(&["files:write"])));
    request
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("100000"));
    let (response, seen) = send(policy().max_body_bytes(1000), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(body_json(response).await["error"], "request_too_large");
    // The body's own size hint (a Full body knows its length) is checked too.
    let (response, _) = send(
        policy().max_body_bytes(10),
        post(call("delete"), Some(info(&["files:write"]))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn streamed_body_over_the_cap_gets_413_without_being_read_whole() {
    let polled = Arc::new(AtomicUsize::new(0));
    let counter = polled.clone();
    let chunks = futures_util::stream::iter((0..1000).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b' '; 1024])))
    }));
    let body = StreamBody::new(chunks);
    let inner = tower::service_fn(|_: Request<Either<StreamBody<_>, Full<Bytes>>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut request = Request::post("/mcp").body(body).unwrap();
    request.extensions_mut().insert(info(&[]));
    let response = layer(policy().max_body_bytes(10 * 1024))
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let polled = polled.load(Ordering::SeqCst);
    assert!(
        polled <= 11,
        "read {polled} chunks of 1 KiB for a 10 KiB cap"
    );
}

#[tokio::test]
async fn body_read_failure_gets_400() {
    let chunks = futures_util::stream::iter([
        Ok(Frame::data(Bytes::from_static(b"{"))),
        Err(std::io::Error::other("connection reset")),
    ]);
    let inner = tower::service_fn(|_: Request<Either<StreamBody<_>, Full<Bytes>>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut request = Request::post("/mcp").body(StreamBody::new(chunks)).unwrap();
    request.extensions_mut().insert(info(&[]));
    let response = layer(policy()).layer(inner).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bodies_are_not_read_for_other_methods_or_an_empty_policy() {
    // A body that would fail if read: it errors at once.
    let failing = || {
        StreamBody::new(futures_util::stream::iter([Err::<Frame<Bytes>, _>(
            std::io::Error::other("must not be read"),
        )]))
    };
    for (method, policy) in [
        (Method::GET, policy()),
        (Method::DELETE, policy()),
        (Method::POST, OperationScopes::builder()),
    ] {
        let inner = tower::service_fn(|request: Request<Either<_, Full<Bytes>>>| async move {
            let passed_on = matches!(request.body(), Either::Left(_));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(passed_on.to_string()))))
        });
        let mut request = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .body(failing())
            .unwrap();
        request.extensions_mut().insert(info(&[]));
        let response = layer(policy).layer(inner).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "true", "{method}: the original body is passed on");
    }
}

#[tokio::test]
async fn without_auth_info_the_layer_answers_500_and_never_calls_the_service() {
    let (response, seen) = send(policy(), post(call("delete"), None)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    let body = body_json(response).await;
    assert_eq!(body["error"], "server_error");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("BearerAuthLayer")),
        "{body}"
    );
}
