//! [`OperationScopesLayer`], [`OperationScopesService`] and their [`OperationScopesFuture`]:
//! the per-operation scope check of an [`OperationScopes`] policy as tower middleware.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{ChallengeScopes, OperationScopes, extend_unique};
use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerAuthError};
use crate::scope::{GrantedScopes, ScopeHierarchy};
use crate::tower::plumbing::{
    Guarded, call_kept, inner_service_accessors, json_refusal, missing_auth_info, passed_on,
    polled_after_completion, take_ready, take_refusal,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response refusing the request (boxed: it is the error side of a `Result`).
type Refusal = Box<Response<Full<Bytes>>>;

/// The per-operation scope check as tower middleware: see [`OperationScopes`].
///
/// It must run **after** authentication: it reads the [`AuthInfo`] that
/// [`BearerAuthLayer`](crate::BearerAuthLayer) inserts, and answers a request without one as
/// [`BearerAuthError::MissingAuthInfo`] (500, logged as an error), so a wrongly stacked layer
/// fails loudly instead of letting requests through. [`BearerAuth::mcp_guard`] builds the whole
/// stack in the right order; stacking by hand, the bearer layer goes outside:
/// `bearer_layer.layer(operation_scopes_layer.layer(mcp_service))`.
///
/// The inner service receives `Request<Either<ReqBody, Full<Bytes>>>`: the original body when
/// the layer did not read it, otherwise the same bytes, whole (trailers, which JSON-RPC does
/// not use, are not kept). The response body is `Either<ResBody, Full<Bytes>>` (the inner
/// service's, or a refusal's JSON).
#[derive(Clone)]
pub struct OperationScopesLayer {
    shared: Arc<Shared>,
}

struct Shared {
    guard: BearerAuth,
    policy: OperationScopes,
    hierarchy: Arc<ScopeHierarchy>,
    /// The scopes this resource recognises (for [`ChallengeScopes::RequiredAndGranted`]).
    known: HashSet<String>,
}

impl fmt::Debug for OperationScopesLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesLayer")
            .field("guard", &self.shared.guard)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl OperationScopesLayer {
    /// A layer applying `policy` on top of `guard`'s required scopes and scope hierarchy;
    /// refusals use `guard`'s challenge settings (`resource_metadata`, realm, error details).
    pub fn new(guard: BearerAuth, policy: OperationScopes) -> Self {
        let hierarchy = Arc::new(guard.hierarchy().clone());
        let known = guard
            .base_scopes()
            .iter()
            .map(String::as_str)
            .chain(policy.named_scopes().map(String::as_str))
            .chain(hierarchy.named_scopes())
            .map(str::to_owned)
            .collect();
        Self {
            shared: Arc::new(Shared {
                guard,
                policy,
                hierarchy,
                known,
            }),
        }
    }
}

impl<S> Layer<S> for OperationScopesLayer {
    type Service = OperationScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OperationScopesService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A service that checks each MCP operation's scopes before calling `S`: see
/// [`OperationScopesLayer`].
#[derive(Clone)]
pub struct OperationScopesService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for OperationScopesService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesService")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

inner_service_accessors!(OperationScopesService);

impl Shared {
    /// `Ok` when the operations in `body` are allowed for a token granting `granted`,
    /// otherwise the refusal to send.
    fn check(&self, body: &[u8], granted: &[String]) -> Result<(), Refusal> {
        let operation = match self.policy.scopes_for(body) {
            Ok(scopes) => scopes,
            Err(duplicate) => {
                tracing::debug!("operation scopes: refusing an ambiguous message: {duplicate}");
                return Err(Box::new(json_refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!(
                        "The JSON-RPC message has the member `{}` more than once; send it once.",
                        duplicate.member()
                    ),
                )));
            }
        };
        if operation.is_empty() {
            return Ok(());
        }
        let operation: Vec<String> = operation.into_iter().map(str::to_owned).collect();
        let missing = self.hierarchy.missing(granted, &operation);
        if missing.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = missing.into_iter().map(str::to_owned).collect();
        let mut needed: Vec<String> = self.guard.base_scopes().to_vec();
        extend_unique(&mut needed, operation);
        let mut challenge = needed.clone();
        if self.policy.challenge == ChallengeScopes::RequiredAndGranted {
            let relevant = granted.iter().filter(|s| self.known.contains(*s));
            extend_unique(&mut challenge, relevant.cloned());
        }
        let error = BearerAuthError::MissingRequiredScopes {
            required: needed,
            missing,
            granted: granted.to_vec(),
        };
        Err(Box::new(
            self.guard
                .reject_with_scope(error, &challenge)
                .into_response(),
        ))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OperationScopesService<S>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<Guarded<ResBody>>;
    type Error = S::Error;
    type Future = OperationScopesFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let shared = &self.shared;
        let refuse = |response: Response<Full<Bytes>>| OperationScopesFuture {
            state: State::Refused {
                response: Some(response),
            },
            inner: None,
            parts: None,
        };

        let Some(info) = request.extensions().get::<AuthInfo>() else {
            return refuse(missing_auth_info(&shared.guard, "OperationScopesLayer"));
        };
        let granted = info.scopes.clone();
        request.extensions_mut().insert(GrantedScopes::shared(
            granted.clone(),
            shared.hierarchy.clone(),
        ));

        if request.method() != Method::POST || shared.policy.is_empty() {
            let future = inner.call(request.map(Either::Left));
            return OperationScopesFuture {
                state: State::Call { future },
                inner: None,
                parts: None,
            };
        }

        let limit = shared.policy.max_body_bytes;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let hinted = request.body().size_hint().lower();
        if declared.unwrap_or(0).max(hinted) > limit as u64 {
            return refuse(too_large(limit));
        }
        if is_encoded(request.headers()) {
            return refuse(encoded_body());
        }

        let (parts, body) = request.into_parts();
        let shared = shared.clone();
        let check = Box::pin(async move {
            let bytes = read_capped(body, limit).await?;
            shared.check(&bytes, &granted)?;
            Ok(bytes)
        });
        OperationScopesFuture {
            state: State::Check { check },
            inner: Some(inner),
            parts: Some(parts),
        }
    }
}

/// Reads the whole body, refusing it (413) as soon as it passes `limit` bytes.
async fn read_capped<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Box::new(too_large(limit)))
        }
        Err(error) => {
            tracing::debug!("operation scopes: the request body could not be read: {error}");
            Err(Box::new(json_refusal(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body could not be read.",
            )))
        }
    }
}

/// Whether the body has a content coding other than `identity` (gzip, br, ...): the probe
/// reads JSON, and reading compressed bytes as JSON would decide on garbage.
fn is_encoded(headers: &http::HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).iter().any(|value| {
        value.to_str().map_or(true, |codings| {
            codings
                .split(',')
                .map(str::trim)
                .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
        })
    })
}

/// 415 for an encoded body, with `Accept-Encoding: identity` (RFC 9110 §15.5.16: say which
/// codings are accepted).
fn encoded_body() -> Response<Full<Bytes>> {
    tracing::debug!("operation scopes: refusing a request body with a Content-Encoding");
    let mut response = json_refusal(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
        "The request body must not be compressed: send it without a Content-Encoding.",
    );
    response
        .headers_mut()
        .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    response
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    tracing::debug!("operation scopes: refusing a request body over {limit} bytes");
    json_refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!("The request body is larger than {limit} bytes."),
    )
}

pin_project! {
    /// Response future of [`OperationScopesService`]: read and check the body if needed, then
    /// call the inner service.
    pub struct OperationScopesFuture<S, ReqBody>
    where
        S: Service<Request<Either<ReqBody, Full<Bytes>>>>,
    {
        #[pin]
        state: State<S::Future>,
        inner: Option<S>,
        parts: Option<Parts>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Check {
            check: BoxFuture<'static, Result<Bytes, Refusal>>,
        },
        Call {
            #[pin]
            future: F,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, ReqBody> fmt::Debug for OperationScopesFuture<S, ReqBody>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationScopesFuture")
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for OperationScopesFuture<S, ReqBody>
where
    S: Service<Request<Either<ReqBody, Full<Bytes>>>, Response = Response<ResBody>>,
{
    type Output = Result<Response<Guarded<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Check { check } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let bytes = match outcome {
                        Ok(bytes) => bytes,
                        Err(refusal) => return Poll::Ready(Ok((*refusal).map(Either::Right))),
                    };
                    let call = call_kept(this.inner, this.parts, |parts| {
                        Request::from_parts(parts, Either::Right(Full::new(bytes)))
                    });
                    let Some(future) = call else {
                        return Poll::Ready(Ok(polled_after_completion("OperationScopesService")));
                    };
                    this.state.set(State::Call { future });
                }
                StateProj::Call { future } => return future.poll(cx).map(passed_on),
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(take_refusal(response, "OperationScopesService")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let (response, seen) =
            send(policy(), post(body.clone(), Some(info(&["files:write"])))).await;
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
}
