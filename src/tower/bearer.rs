//! [`BearerAuthLayer`], [`BearerAuthService`] and their [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body_util::Either;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::plumbing::{
    Guarded, call_kept, inner_service_accessors, passed_on, polled_after_completion, take_ready,
};
use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerRejection};

impl BearerAuth {
    /// This guard as a tower [`Layer`].
    pub fn layer(&self) -> BearerAuthLayer {
        BearerAuthLayer::new(self.clone())
    }
}

/// The bearer guard as tower middleware: applies a [`BearerAuth`] to a service.
///
/// On success the verified [`AuthInfo`] is inserted into the request extensions and the inner
/// service runs; on refusal the inner service is never called and the [`BearerRejection`] is
/// the response.
///
/// The response body is [`Either<B, Full<Bytes>>`](http_body_util::Either): the inner service's
/// body `B` untouched, or the rejection's JSON. It is an `http_body::Body` whenever `B` is one
/// with `Bytes` data, so the wrapped service still works with axum (`axum::body::Body`), hyper
/// (`hyper_util::service::TowerToHyperService`) and rmcp's `StreamableHttpService` (whose body
/// is a boxed `Bytes` body). The error type is the inner service's.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let as_metadata = AuthorizationServerMetadata::authorization_code(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token");
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::from_metadata(as_metadata)),
///     )
///     .build()?;
/// let guard = auth
///     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
///         Err::<AuthInfo, _>(VerifyError::invalid_token("this example accepts nothing"))
///     })
///     .build()?;
///
/// let service = ServiceBuilder::new()
///     .layer(guard.layer())
///     .service(service_fn(|request: Request<Full<Bytes>>| async move {
///         let who = request.extensions().get::<AuthInfo>().and_then(|i| i.subject.clone());
///         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(who.unwrap_or_default()))))
///     }));
///
/// let response = service
///     .oneshot(Request::new(Full::new(Bytes::new())))
///     .await?;
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    auth: BearerAuth,
}

impl BearerAuthLayer {
    /// A layer guarding services with `auth`.
    pub fn new(auth: BearerAuth) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuthService::new(inner, self.auth.clone())
    }
}

/// A service that authenticates every request with a [`BearerAuth`] guard before calling
/// `S`: see [`BearerAuthLayer`].
#[derive(Clone, Debug)]
pub struct BearerAuthService<S> {
    inner: S,
    auth: BearerAuth,
}

impl<S> BearerAuthService<S> {
    /// Guards `inner` with `auth`.
    pub fn new(inner: S, auth: BearerAuth) -> Self {
        Self { inner, auth }
    }
}

inner_service_accessors!(BearerAuthService);

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<Guarded<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        // The guard reads the method, URI, headers and extensions (DPoP, client
        // certificates); the body stays with the request.
        let (parts, body) = request.into_parts();
        let verify = self.auth.authenticate_request(&parts);
        ResponseFuture {
            state: State::Authenticate {
                verify,
                request: Some(Request::from_parts(parts, body)),
            },
            inner: Some(inner),
        }
    }
}

pin_project! {
    /// Response future of [`BearerAuthService`]: authenticate, then call the inner service.
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ReqBody>,
        inner: Option<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ReqBody> {
        Authenticate {
            verify: BoxFuture<'static, Result<AuthInfo, BearerRejection>>,
            request: Option<Request<ReqBody>>,
        },
        Call {
            #[pin]
            future: F,
        },
    }
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<Guarded<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authenticate { verify, request } => {
                    let info = match ready!(verify.as_mut().poll(cx)) {
                        Ok(info) => info,
                        Err(rejection) => {
                            return Poll::Ready(Ok(rejection.into_response().map(Either::Right)));
                        }
                    };
                    let call = call_kept(this.inner, request, |mut request| {
                        if request.extensions_mut().insert(info).is_some() {
                            tracing::warn!(
                                "the request already carried an AuthInfo; it is replaced by the \
                                 one verified here"
                            );
                        }
                        request
                    });
                    let Some(future) = call else {
                        return Poll::Ready(Ok(polled_after_completion("BearerAuthService")));
                    };
                    this.state.set(State::Call { future });
                }
                StateProj::Call { future } => return future.poll(cx).map(passed_on),
            }
        }
    }
}
