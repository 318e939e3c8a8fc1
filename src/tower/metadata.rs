//! [`MetadataService`]: the well-known metadata endpoints.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use crate::discovery::AuthServer;
use crate::error::VerifyError;
use crate::metadata::{AuthorizationServerMetadata, ServedDocument};

/// Where the authorization-server metadata is re-served in the deprecated
/// authorization-server mode.
pub const AUTHORIZATION_SERVER_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// Default `Cache-Control` max-age of metadata responses: one hour.
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// The well-known metadata endpoints of an [`McpAuth`](crate::McpAuth), served without a
/// token. Get one from [`McpAuth::metadata_service`](crate::McpAuth::metadata_service).
///
/// A tower [`Service`] (error [`Infallible`], 404 for paths it does not serve), and, for other
/// frameworks, [`respond`](Self::respond), which returns `None` for paths it does not serve so
/// the caller can fall through. Cheap to clone.
///
/// - RFC 9728 protected-resource metadata of each resource, at its path-inserted URL
///   (`https://h/mcp` → `/.well-known/oauth-protected-resource/mcp`; a resource without a path
///   → `/.well-known/oauth-protected-resource`);
/// - in the deprecated authorization-server mode, the authorization server's RFC 8414 metadata
///   at `/.well-known/oauth-authorization-server` (discovered on the first request if needed).
///
/// Answers: `GET` and `HEAD` → 200 `application/json` with `Access-Control-Allow-Origin: *` and
/// `Cache-Control: public, max-age=3600` (see [`MetadataService::max_age`]); `OPTIONS` → 204 with
/// the CORS preflight headers; any other method → 405 with `Allow`. Documents are serialised
/// once, so the `resource` served is byte-identical to the one configured.
///
/// ```
/// use http::{Method, StatusCode};
/// use mcp_auth::{AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let mut as_metadata = AuthorizationServerMetadata::new(
/// #     "https://auth.example.com", "https://auth.example.com/authorize",
/// #     "https://auth.example.com/token", ["code"]);
/// # as_metadata.code_challenge_methods_supported = Some(vec!["S256".into()]);
/// let auth = McpAuth::builder()
///     .protected_resource(
///         ProtectedResource::new("https://api.example.com/mcp")
///             .authorization_server(AuthServer::from_metadata(as_metadata)),
///     )
///     .build()?;
/// let metadata = auth.metadata_service();
/// let response = metadata
///     .respond(&Method::GET, "/.well-known/oauth-protected-resource/mcp")
///     .await
///     .expect("a metadata path");
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(
///     response.body(),
///     r#"{"resource":"https://api.example.com/mcp","authorization_servers":["https://auth.example.com"]}"#
/// );
/// assert!(metadata.respond(&Method::GET, "/mcp").await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MetadataService {
    inner: Arc<Inner>,
}

struct Inner {
    documents: Vec<(String, Arc<ServedDocument>)>,
    authorization_server: Option<ServedAuthServer>,
    cache_control: HeaderValue,
}

struct ServedAuthServer {
    server: AuthServer,
    /// The last document served and its bytes; re-serialised only when the server's metadata
    /// changes (a refresh gives a new `Arc`).
    serialised: Mutex<Option<(Arc<AuthorizationServerMetadata>, Bytes)>>,
}

enum Route {
    Document(Bytes),
    AuthorizationServer,
}

impl fmt::Debug for MetadataService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataService")
            .field("paths", &self.paths().collect::<Vec<_>>())
            .field("cache_control", &self.inner.cache_control)
            .finish()
    }
}

impl MetadataService {
    /// `documents` are (path, document) pairs.
    pub(crate) fn new(
        documents: Vec<(String, Arc<ServedDocument>)>,
        authorization_server: Option<AuthServer>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                documents,
                authorization_server: authorization_server.map(|server| ServedAuthServer {
                    server,
                    serialised: Mutex::new(None),
                }),
                cache_control: cache_control(DEFAULT_METADATA_MAX_AGE),
            }),
        }
    }

    /// The `Cache-Control` max-age of successful responses. Default: one hour
    /// ([`DEFAULT_METADATA_MAX_AGE`]).
    #[must_use]
    pub fn max_age(self, max_age: Duration) -> Self {
        let inner = Inner {
            documents: self.inner.documents.clone(),
            authorization_server: self.inner.authorization_server.as_ref().map(|served| {
                ServedAuthServer {
                    server: served.server.clone(),
                    serialised: Mutex::new(None),
                }
            }),
            cache_control: cache_control(max_age),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Every path this service answers.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.inner
            .documents
            .iter()
            .map(|(path, _)| path.as_str())
            .chain(
                self.inner
                    .authorization_server
                    .as_ref()
                    .map(|_| AUTHORIZATION_SERVER_METADATA_PATH),
            )
    }

    /// Whether `path` is one of [`paths`](Self::paths).
    pub fn handles(&self, path: &str) -> bool {
        self.route(path).is_some()
    }

    fn route(&self, path: &str) -> Option<Route> {
        if let Some((_, document)) = self.inner.documents.iter().find(|(p, _)| p == path) {
            return Some(Route::Document(document.bytes()));
        }
        (self.inner.authorization_server.is_some() && path == AUTHORIZATION_SERVER_METADATA_PATH)
            .then_some(Route::AuthorizationServer)
    }

    /// The answer for `method` on `path`, or `None` when `path` is not a metadata path (so
    /// adapters can fall through to their next handler). The body is empty except for `GET` and
    /// error answers.
    ///
    /// In the authorization-server mode, the first request for
    /// `/.well-known/oauth-authorization-server` may discover the server's metadata: if that
    /// fails the answer is 503 (network) or 500 (the document cannot be trusted), with a JSON
    /// body `{"error": "temporarily_unavailable" | "server_error", "error_description": ..}`.
    pub async fn respond(&self, method: &Method, path: &str) -> Option<Response<Bytes>> {
        let route = self.route(path)?;
        Some(match *method {
            Method::GET | Method::HEAD => {
                let body = match route {
                    Route::Document(body) => body,
                    Route::AuthorizationServer => {
                        match self.authorization_server_document().await {
                            Ok(body) => body,
                            Err(response) => return Some(response),
                        }
                    }
                };
                let length = HeaderValue::from(body.len());
                let mut response = Response::new(if method == Method::HEAD {
                    Bytes::new()
                } else {
                    body
                });
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CONTENT_LENGTH, length);
                headers.insert(CACHE_CONTROL, self.inner.cache_control.clone());
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                response
            }
            Method::OPTIONS => {
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::NO_CONTENT;
                let headers = response.headers_mut();
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                headers.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOWED_METHODS),
                );
                // `*` covers every header but `Authorization`, which must be named (Fetch spec).
                headers.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("*, Authorization"),
                );
                headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                response
            }
            _ => {
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                let headers = response.headers_mut();
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                response
            }
        })
    }

    async fn authorization_server_document(&self) -> Result<Bytes, Response<Bytes>> {
        let Some(served) = &self.inner.authorization_server else {
            return Err(error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such metadata document.",
            ));
        };
        let metadata = served.server.metadata().await.map_err(|error| {
            let issuer = served.server.issuer();
            match VerifyError::from(error) {
                VerifyError::Unavailable { reason } => {
                    tracing::warn!(issuer, %reason, "cannot serve the authorization server metadata");
                    error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "The authorization server metadata could not be fetched; try again later.",
                    )
                }
                other => {
                    tracing::error!(issuer, error = %other, "cannot serve the authorization server metadata");
                    misconfigured()
                }
            }
        })?;
        let has_s256 = metadata
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| methods.iter().any(|m| m == "S256"));
        if !has_s256 {
            tracing::error!(
                issuer = served.server.issuer(),
                "the authorization server metadata has no `S256` in code_challenge_methods_supported; \
                 MCP clients refuse such a server, so it is not served"
            );
            return Err(misconfigured());
        }
        let mut cache = served
            .serialised
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, body)) = &*cache
            && Arc::ptr_eq(cached, &metadata)
        {
            return Ok(body.clone());
        }
        let body = Bytes::from(serde_json::to_vec(&*metadata).map_err(|error| {
            tracing::error!(%error, "cannot serialise the authorization server metadata");
            misconfigured()
        })?);
        *cache = Some((metadata, body.clone()));
        Ok(body)
    }
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            let response = match this.respond(&method, &path).await {
                Some(response) => response,
                None => {
                    let mut response = Response::new(Bytes::new());
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                }
            };
            Ok(response.map(Full::new))
        })
    }
}

fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
        .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=3600"))
}

fn misconfigured() -> Response<Bytes> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "The authorization server metadata cannot be served because of a configuration error.",
    )
}

fn error_response(status: StatusCode, error: &str, description: &str) -> Response<Bytes> {
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
