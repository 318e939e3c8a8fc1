//! What the tower middlewares of this crate (bearer guard, session binding, operation scopes)
//! and the hyper router share: taking the ready inner service, the inner-service accessors,
//! refusals as responses, and the answer to a future polled after it completed.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use tower_service::Service;

use crate::bearer::{BearerAuth, BearerAuthError};

/// A middleware's response body: the inner service's `B` untouched, or a refusal's JSON.
pub(crate) type Guarded<B> = Either<B, Full<Bytes>>;

/// Takes the service that was driven to readiness and leaves a fresh clone behind:
/// <https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services>
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// Calls the inner service a response future took in `call`, with the request `make` builds
/// from what the future kept; `None` when either is already gone (the future was polled after
/// it completed).
pub(crate) fn call_kept<S, K, R>(
    inner: &mut Option<S>,
    kept: &mut Option<K>,
    make: impl FnOnce(K) -> R,
) -> Option<S::Future>
where
    S: Service<R>,
{
    let (mut service, kept) = (inner.take()?, kept.take()?);
    Some(service.call(make(kept)))
}

/// `get_ref`, `get_mut` and `into_inner` for a middleware service whose inner service is its
/// `inner` field (the accessors every tower-http middleware has).
macro_rules! inner_service_accessors {
    ($service:ident) => {
        impl<S> $service<S> {
            /// The inner service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The inner service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// The inner service, consuming this one.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }
    };
}
pub(crate) use inner_service_accessors;

/// The inner service's answer, as a middleware's response.
pub(crate) fn passed_on<B, E>(result: Result<Response<B>, E>) -> Result<Response<Guarded<B>>, E> {
    result.map(|response| response.map(Either::Left))
}

/// The refusal a future holds in its `Refused` state, as its response; taking it twice means
/// the future was polled after it completed.
pub(crate) fn take_refusal<B>(
    refusal: &mut Option<Response<Full<Bytes>>>,
    service: &'static str,
) -> Response<Guarded<B>> {
    match refusal.take() {
        Some(response) => response.map(Either::Right),
        None => polled_after_completion(service),
    }
}

/// A response future polled again after it completed: a caller bug. Answer 500 instead of
/// panicking.
pub(crate) fn polled_after_completion<B>(service: &'static str) -> Response<Guarded<B>> {
    tracing::error!(service, "a response future was polled after it completed");
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The answer of `layer` to a request without a verified `AuthInfo`: the one answer of
/// [`BearerAuthError::MissingAuthInfo`] (500), with `guard`'s error-body settings.
pub(crate) fn missing_auth_info(guard: &BearerAuth, layer: &'static str) -> Response<Full<Bytes>> {
    tracing::error!(
        layer,
        "a request without a verified AuthInfo reached {layer}: it must run inside \
         BearerAuthLayer (use `guard.mcp_guard().layer()`)"
    );
    guard
        .reject(BearerAuthError::MissingAuthInfo)
        .into_response()
}

/// A refusal that is not an OAuth challenge: `status`, `Content-Type: application/json`,
/// `Cache-Control: no-store`, and `{"error": code, "error_description": description}`.
pub(crate) fn json_refusal(
    status: StatusCode,
    code: &str,
    description: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
