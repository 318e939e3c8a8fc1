//! actix-web 4 integration: the bearer guard as middleware ([`BearerAuthMiddleware`]), the
//! verified [`AuthInfo`] as an extractor, and the well-known metadata routes
//! ([`metadata_routes`]).
//!
//! actix-web 4 is built on `http` 0.2, the rest of this crate on `http` 1.x, so this adapter
//! converts the request's method, URI and headers to `http` 1.x for
//! [`BearerAuth::authenticate_request`] (so DPoP works here as under tower) and copies
//! every answer byte for byte: a refusal has the same status, `WWW-Authenticate`,
//! `Content-Type`, `Cache-Control` and JSON body as from the tower
//! [`BearerAuthLayer`](crate::BearerAuthLayer), and the metadata routes answer exactly as
//! [`MetadataService::respond`].
//!
//! - Wrap the MCP endpoint (a `Scope` or `Resource`), **not the whole `App`**: the metadata
//!   routes must stay reachable without a token, since that is how clients discover where to
//!   get one.
//! - Handlers take `AuthInfo` (or `Option<AuthInfo>`) as an argument, or read it from the
//!   request extensions (`req.extensions().get::<AuthInfo>()`).
//! - A [`BearerRejection`] is an actix [`ResponseError`], so handlers can return it.
//!
//! ```
//! use actix_web::{App, HttpResponse, test, web};
//! use mcp_auth::integrations::actix::{BearerAuthMiddleware, metadata_routes};
//! use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
//!
//! # actix_web::rt::System::new().block_on(async {
//! # let as_metadata = AuthorizationServerMetadata::authorization_code(
//! #     "https://auth.example.com", "https://auth.example.com/authorize",
//! #     "https://auth.example.com/token");
//! let auth = McpAuth::builder()
//!     .protected_resource(
//!         ProtectedResource::new("https://api.example.com/mcp")
//!             .authorization_server(AuthServer::from_metadata(as_metadata)),
//!     )
//!     .build()?;
//! let guard = auth
//!     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
//!         match token.as_str() {
//!             "alice-token" => Ok(AuthInfo::new(token, "https://auth.example.com")
//!                 .with_subject("alice")
//!                 .with_audience(["https://api.example.com/mcp"])),
//!             _ => Err(VerifyError::invalid_token("unknown token")),
//!         }
//!     })
//!     .build()?;
//!
//! let metadata = auth.metadata_service();
//! let app = test::init_service(
//!     App::new()
//!         .configure(metadata_routes(metadata))
//!         .service(
//!             web::scope("/mcp")
//!                 .wrap(BearerAuthMiddleware::new(guard))
//!                 .route("", web::post().to(|who: AuthInfo| async move {
//!                     HttpResponse::Ok().body(who.subject.unwrap_or_default())
//!                 })),
//!         ),
//! )
//! .await;
//!
//! let request = test::TestRequest::post().uri("/mcp").to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 401);
//! assert_eq!(
//!     response.headers().get("www-authenticate").unwrap(),
//!     "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
//! );
//!
//! let request = test::TestRequest::post()
//!     .uri("/mcp")
//!     .insert_header(("Authorization", "Bearer alice-token"))
//!     .to_request();
//! assert_eq!(test::call_and_read_body(&app, request).await, "alice");
//!
//! let request = test::TestRequest::get()
//!     .uri("/.well-known/oauth-protected-resource/mcp")
//!     .to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), "*");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Once;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, guard, web};
use bytes::Bytes;
use futures_util::future::{BoxFuture, Either, LocalBoxFuture};

use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuth, BearerAuthError, BearerRejection};
use crate::tower::MetadataService;

impl BearerAuth {
    /// This guard as actix-web middleware (see [`BearerAuthMiddleware`]).
    pub fn actix_middleware(&self) -> BearerAuthMiddleware {
        BearerAuthMiddleware::new(self.clone())
    }
}

/// The bearer guard as actix-web middleware: `Scope::wrap` / `Resource::wrap` it around the
/// MCP endpoint.
///
/// Every request is authenticated with the [`BearerAuth`] guard before the wrapped service
/// runs. On success the verified [`AuthInfo`] goes into the request extensions (replacing any
/// already there) and the wrapped service answers; on refusal the wrapped service is never
/// called and the response is the guard's [`BearerRejection`], byte for byte as the tower
/// [`BearerAuthLayer`](crate::BearerAuthLayer) sends it (400/401/403 with `WWW-Authenticate`,
/// 503 when the authorization server is unreachable, 500 on misconfiguration).
///
/// Only the `Authorization` header is read; the token is never logged.
#[derive(Clone, Debug)]
pub struct BearerAuthMiddleware {
    auth: BearerAuth,
}

impl BearerAuthMiddleware {
    /// Middleware authenticating requests with `auth`.
    pub fn new(auth: BearerAuth) -> Self {
        Self { auth }
    }

    /// The guard.
    pub fn guard(&self) -> &BearerAuth {
        &self.auth
    }
}

impl From<BearerAuth> for BearerAuthMiddleware {
    fn from(auth: BearerAuth) -> Self {
        Self::new(auth)
    }
}

impl<S, B> Transform<S, ServiceRequest> for BearerAuthMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = BearerAuthMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BearerAuthMiddlewareService {
            service: Rc::new(service),
            auth: self.auth.clone(),
        }))
    }
}

/// The service [`BearerAuthMiddleware`] wraps around `S` (one per actix worker).
pub struct BearerAuthMiddlewareService<S> {
    service: Rc<S>,
    auth: BearerAuth,
}

impl<S> fmt::Debug for BearerAuthMiddlewareService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthMiddlewareService")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for BearerAuthMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let verify = authenticate(&self.auth, request.request());
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            match verify.await {
                Ok(info) => {
                    let replaced = request.extensions_mut().insert(info);
                    if replaced.is_some() {
                        tracing::warn!(
                            "the request already carried an AuthInfo; it is replaced by the one \
                             verified here"
                        );
                    }
                    service
                        .call(request)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(rejection) => Ok(request
                    .into_response(rejection_response(&rejection))
                    .map_into_right_body()),
            }
        })
    }
}

/// Runs `auth` on an actix request through [`BearerAuth::authenticate_request`], so DPoP and
/// certificate-bound tokens are checked as under every other adapter.
fn authenticate(
    auth: &BearerAuth,
    request: &HttpRequest,
) -> BoxFuture<'static, Result<AuthInfo, BearerRejection>> {
    match request_parts(request) {
        Ok(parts) => auth.authenticate_request(&parts),
        Err(reason) => Box::pin(ready(Err(
            auth.reject(BearerAuthError::ServerMisconfigured { reason })
        ))),
    }
}

/// The `http` 1.x request parts of an actix-web (`http` 0.2) request: method, URI and headers
/// copied byte for byte. A method, URI or header that `http` 1.x refuses is an error (the
/// request is refused, never checked against different values).
fn request_parts(request: &HttpRequest) -> Result<http::request::Parts, String> {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|e| format!("the request method cannot be converted to http 1.x: {e}"))?;
    parts.uri = http::Uri::try_from(request.uri().to_string())
        .map_err(|e| format!("the request URI cannot be converted to http 1.x: {e}"))?;
    for (name, value) in request.headers() {
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes())
            .map_err(|e| format!("a header name cannot be converted to http 1.x: {e}"))?;
        let value = http::HeaderValue::from_bytes(value.as_bytes())
            .map_err(|e| format!("a header value cannot be converted to http 1.x: {e}"))?;
        parts.headers.append(name, value);
    }
    Ok(parts)
}

/// Extracts the [`AuthInfo`] verified by [`BearerAuthMiddleware`].
///
/// When the middleware did not run for this route, the request is authenticated here with the
/// [`BearerAuth`] registered as app data (`App::app_data(guard)` or `web::Data<BearerAuth>`),
/// with exactly the middleware's answers. With neither, the route is misconfigured: the answer
/// is [`BearerAuthError::MissingAuthInfo`]'s (500 naming the layer to add, as from every
/// adapter), logged as an error once.
///
/// `Option<AuthInfo>` gives `None` instead of refusing.
impl FromRequest for AuthInfo {
    type Error = BearerRejection;
    type Future = Either<
        Ready<Result<AuthInfo, BearerRejection>>,
        BoxFuture<'static, Result<AuthInfo, BearerRejection>>,
    >;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        if let Some(info) = request.extensions().get::<AuthInfo>() {
            return Either::Left(ready(Ok(info.clone())));
        }
        let guard = request.app_data::<BearerAuth>().or_else(|| {
            request
                .app_data::<web::Data<BearerAuth>>()
                .map(|data| data.get_ref())
        });
        match guard {
            Some(guard) => Either::Right(authenticate(guard, request)),
            None => Either::Left(ready(Err(unguarded_rejection()))),
        }
    }
}

/// The refusal of the extractor on a route with neither the middleware nor a registered guard.
fn unguarded_rejection() -> BearerRejection {
    static LOGGED: Once = Once::new();
    LOGGED.call_once(|| {
        tracing::error!(
            "an `AuthInfo` extractor ran on a route without `BearerAuthMiddleware` and without a \
             `BearerAuth` in app data, so every request there is answered 500; wrap the route \
             with the middleware or register the guard with `.app_data(guard)`"
        );
    });
    BearerRejection::new(BearerAuthError::MissingAuthInfo, &[], false)
}

/// A [`BearerRejection`] as an actix response: the same status, headers and body bytes.
impl ResponseError for BearerRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_status(self.status())
    }

    fn error_response(&self) -> HttpResponse {
        rejection_response(self)
    }
}

fn rejection_response(rejection: &BearerRejection) -> HttpResponse {
    to_actix_response(
        rejection.status(),
        rejection.headers(),
        rejection.body().clone(),
    )
}

/// Registers the metadata endpoints of `metadata` (every path in [`MetadataService::paths`]),
/// for `App::configure` or `ServiceConfig::configure`:
///
/// ```no_run
/// # fn run(auth: mcp_auth::McpAuth) {
/// use actix_web::{App, HttpServer};
/// use mcp_auth::integrations::actix::metadata_routes;
///
/// let metadata = auth.metadata_service();
/// let server = HttpServer::new(move || App::new().configure(metadata_routes(metadata.clone())));
/// # }
/// ```
///
/// The answers are [`MetadataService::respond`]'s, byte for byte: `GET` and `HEAD` 200 with
/// `Access-Control-Allow-Origin: *` and `Cache-Control`, `OPTIONS` 204 with the CORS preflight
/// headers, other methods 405 with `Allow`. No token is needed; register them on the `App`
/// itself (the well-known paths are at the origin's root), outside any scope wrapped with
/// [`BearerAuthMiddleware`]. Other paths fall through to the app's next routes.
pub fn metadata_routes(
    metadata: MetadataService,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone + 'static {
    move |config| {
        let handled = metadata.clone();
        config.service(
            // One resource for every well-known path; the guard keeps paths this service does
            // not serve falling through to the app's other routes.
            web::resource("/.well-known/{tail:.*}")
                .guard(guard::fn_guard(move |context| {
                    handled.handles(context.head().uri.path())
                }))
                .default_service(web::to(move |request: HttpRequest| {
                    let metadata = metadata.clone();
                    async move { metadata_response(&metadata, &request).await }
                })),
        );
    }
}

/// The answer of `metadata` to `request`, or 404 when its path is not a metadata path.
async fn metadata_response(metadata: &MetadataService, request: &HttpRequest) -> HttpResponse {
    let Ok(method) = http::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return HttpResponse::NotFound().finish();
    };
    // actix writes `Content-Length` from the body it is given and drops the body of a HEAD
    // answer itself, so HEAD gets the GET body: its `Content-Length` is then the GET length,
    // as `respond` sets it.
    let asked = if method == http::Method::HEAD {
        http::Method::GET
    } else {
        method
    };
    match metadata.respond(&asked, request.uri().path()).await {
        Some(response) => {
            let (parts, body) = response.into_parts();
            to_actix_response(parts.status, &parts.headers, body)
        }
        None => HttpResponse::NotFound().finish(),
    }
}

/// Copies an `http` 1.x answer into an actix (`http` 0.2) response. `Content-Length` is left to
/// actix, which derives it from the body.
fn to_actix_response(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: Bytes,
) -> HttpResponse {
    let mut response = HttpResponse::with_body(actix_status(status), body).map_into_boxed_body();
    let target = response.headers_mut();
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => target.append(name, value),
            // Both crates validate names and values alike; this is unreachable in practice.
            _ => {
                tracing::error!(header = %name, "a response header could not be converted for actix-web")
            }
        }
    }
    response
}

fn actix_status(status: http::StatusCode) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bearer::BearerChallenge;

    #[test]
    fn every_status_the_guard_uses_converts() {
        for code in [400, 401, 403, 500, 503] {
            let status = http::StatusCode::from_u16(code).unwrap();
            assert_eq!(actix_status(status).as_u16(), code);
        }
    }

    #[test]
    fn rejection_headers_and_body_are_copied_and_content_length_left_to_actix() {
        let rejection = BearerRejection::new(
            BearerAuthError::InvalidToken {
                reason: "expired".into(),
            },
            &[BearerChallenge {
                error: Some("invalid_token".into()),
                ..BearerChallenge::default()
            }],
            false,
        );
        let mut headers = rejection.headers().clone();
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("999"),
        );
        let response = to_actix_response(rejection.status(), &headers, rejection.body().clone());
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
        assert!(response.headers().get("content-length").is_none());
        let body = response.into_body().try_into_bytes().unwrap();
        assert_eq!(&body, rejection.body());
    }

    #[test]
    fn the_unguarded_extractor_answers_500_naming_the_layer() {
        let rejection = unguarded_rejection();
        assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(rejection.www_authenticate().is_none());
        let body: serde_json::Value = serde_json::from_slice(rejection.body()).unwrap();
        assert_eq!(body["error"], "server_error");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("BearerAuthMiddleware")),
            "{body}"
        );
    }
}
