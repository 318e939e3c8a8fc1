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

use super::headers::{self, Revision};
use super::{ChallengeScopes, OperationScopes, extend_unique};
use crate::auth_info::{AuthInfo, TokenBinding};
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
    /// otherwise the refusal to send. For requests the body decides (older revisions).
    fn check(&self, body: &[u8], granted: &Granted) -> Result<(), Refusal> {
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
        self.allow(&operation, granted, Revision::Legacy)
    }

    /// `Ok` when a token granting `granted` has every scope of `operation` (the policy's
    /// scopes of the request), otherwise the step-up refusal, with the challenge strategy for
    /// `revision`.
    fn allow(
        &self,
        operation: &[&str],
        granted: &Granted,
        revision: Revision,
    ) -> Result<(), Refusal> {
        let (binding, granted) = (&granted.binding, granted.scopes.as_slice());
        if operation.is_empty() {
            return Ok(());
        }
        let operation: Vec<String> = operation.iter().map(|s| (*s).to_owned()).collect();
        let missing = self.hierarchy.missing(granted, &operation);
        if missing.is_empty() {
            return Ok(());
        }
        let missing: Vec<String> = missing.into_iter().map(str::to_owned).collect();
        let mut needed: Vec<String> = self.guard.base_scopes().to_vec();
        extend_unique(&mut needed, operation);
        let mut challenge = needed.clone();
        if self.policy.challenge.for_revision(revision) == ChallengeScopes::RequiredAndGranted {
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
                .reject_for_binding(error, &challenge, binding)
                .into_response(),
        ))
    }
}

/// What the verified token grants, and how it was presented (a DPoP-bound token's 403 uses the
/// `DPoP` challenge).
struct Granted {
    scopes: Vec<String>,
    binding: TokenBinding,
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
        let granted = Granted {
            scopes: info.scopes.clone(),
            binding: info.binding().clone(),
        };
        request.extensions_mut().insert(GrantedScopes::shared(
            granted.scopes.clone(),
            shared.hierarchy.clone(),
        ));

        let pass = |inner: &mut S, request: Request<ReqBody>| OperationScopesFuture {
            state: State::Call {
                future: inner.call(request.map(Either::Left)),
            },
            inner: None,
            parts: None,
        };
        if request.method() != Method::POST {
            return pass(&mut inner, request);
        }
        // MCP 2026-07-28: the operation is declared in headers, which must be there (even
        // when the policy is empty: the check is cheap and reads no body).
        let revision = match headers::revision(request.headers()) {
            Ok(revision) => revision,
            Err(error) => return refuse(headers::refusal(&error, None)),
        };
        let declared = match revision {
            Revision::Legacy => None,
            Revision::Modern { .. } => match headers::declared(request.headers()) {
                Ok(declared) => Some(declared),
                Err(error) => return refuse(headers::refusal(&error, None)),
            },
        };
        if shared.policy.is_empty() {
            return pass(&mut inner, request);
        }
        if let Some(declared) = &declared {
            // Decided from the headers alone: a refusal reads no body.
            let operation = shared
                .policy
                .scopes_for_operation(&declared.method, declared.name.as_deref());
            if let Err(refusal) = shared.allow(&operation, &granted, revision) {
                return refuse(*refusal);
            }
            if shared.policy.headers_checked_by_service
                && revision == (Revision::Modern { known: true })
            {
                return pass(&mut inner, request);
            }
        }

        let limit = shared.policy.max_body_bytes;
        let declared_length = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let hinted = request.body().size_hint().lower();
        if declared_length.unwrap_or(0).max(hinted) > limit as u64 {
            return refuse(too_large(limit));
        }
        if is_encoded(request.headers()) {
            return refuse(encoded_body());
        }

        let (parts, body) = request.into_parts();
        let shared = shared.clone();
        let check = Box::pin(async move {
            let bytes = read_capped(body, limit).await?;
            match &declared {
                // The headers allowed it: the body must be the operation they declare.
                Some(declared) => headers::check_body(declared, &bytes)
                    .map_err(|(error, id)| Box::new(headers::refusal(&error, id)))?,
                None => shared.check(&bytes, &granted)?,
            }
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
#[path = "layer_tests.rs"]
mod tests;
