//! axum 0.8 integration: the metadata endpoints as a [`Router`], and [`AuthInfo`] as an
//! extractor.
//!
//! - [`McpAuth::metadata_router`] serves every well-known metadata document (no token needed);
//!   merge it into your app ([`DelegatedAuth::metadata_router`] for the deprecated
//!   authorization-server mode).
//! - The bearer guard is a tower layer, so it mounts with axum's own tools:
//!   `Router::route_layer` / `Router::layer`, or around one service
//!   (`route_service("/mcp", guard.layer().layer(mcp_service))`). Keep the metadata routes
//!   outside it: clients fetch them before they have a token.
//! - Handlers behind the layer take `auth: AuthInfo` (or `Option<AuthInfo>`) as an argument.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource};
//! use mcp_auth::verify::JwtVerifier;
//!
//! async fn whoami(auth: AuthInfo) -> String {
//!     auth.subject.unwrap_or_default()
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = AuthServer::discover("https://tenant.logto.app/oidc", AuthServerType::Oidc);
//! let auth = McpAuth::builder()
//!     .protected_resource(
//!         ProtectedResource::new("https://api.example.com/mcp").authorization_server(issuer.clone()),
//!     )
//!     .build()?;
//! let verifier = JwtVerifier::builder().authorization_server(issuer).build()?;
//! let guard = auth
//!     .bearer_auth("https://api.example.com/mcp", verifier)
//!     .required_scopes(["read"])
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/mcp", get(whoami))            // or .route_service("/mcp", guard.layer().layer(rmcp_service))
//!     .route_layer(guard.layer())            // only the routes above need a token
//!     .merge(auth.metadata_router());        // /.well-known/oauth-protected-resource/mcp
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # The extractor without the layer
//!
//! The layer is what authenticates; the extractor only reads what it left in the request
//! extensions. On a route without the layer the extractor finds nothing: the route is
//! misconfigured, a server bug, so it answers 500 ([`AuthInfoRejection`]) with a message
//! naming the layer to add, logged as an error, as every adapter does (see
//! [`BearerAuthError::MissingAuthInfo`]).

use std::convert::Infallible;
use std::fmt;

use axum::Router;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::auth_info::AuthInfo;
use crate::bearer::{BearerAuthError, BearerRejection};
#[allow(deprecated)]
use crate::mcp_auth::{DelegatedAuth, McpAuth};
use crate::tower::MetadataService;

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl McpAuth {
    /// An axum [`Router`] serving this configuration's well-known metadata endpoints (see
    /// [`McpAuth::metadata_service`]): every method on each metadata path goes to the
    /// [`MetadataService`] (`GET`/`HEAD` 200, `OPTIONS` 204, others 405). Merge it into your
    /// app outside the bearer layer. Shorthand for
    /// [`metadata_router(self.metadata_service())`](metadata_router).
    pub fn metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        metadata_router(self.metadata_service())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[allow(deprecated)]
impl DelegatedAuth {
    /// An axum [`Router`] serving the authorization server's metadata at
    /// `/.well-known/oauth-authorization-server` (see [`DelegatedAuth::metadata_service`]), as
    /// [`McpAuth::metadata_router`] does for protected resources.
    pub fn metadata_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        metadata_router(self.metadata_service())
    }
}

/// An axum [`Router`] serving `metadata`'s paths, for a [`MetadataService`] you configured
/// (for example with [`MetadataService::max_age`]). See [`McpAuth::metadata_router`].
///
/// A resource whose path has a segment starting with `:` or `*` makes axum 0.8 panic when the
/// route is added (a guard against axum 0.7 syntax); such routes are added with
/// `Router::without_v07_checks`, and a router you merge this one into needs that call too.
pub fn metadata_router<S>(metadata: MetadataService) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    let needs_literal_segments = metadata.paths().any(|path| {
        path.split('/')
            .any(|segment| segment.starts_with(':') || segment.starts_with('*'))
    });
    if needs_literal_segments {
        router = router.without_v07_checks();
    }
    let paths: Vec<String> = metadata.paths().map(str::to_owned).collect();
    for path in paths {
        router = router.route_service(&path, metadata.clone());
    }
    router
}

/// The rejection of the [`AuthInfo`] extractor: the request reached the handler without a
/// verified identity because the route is not behind the bearer layer. Answered as
/// [`BearerAuthError::MissingAuthInfo`]: 500, JSON body `{"error": "server_error", ..}`
/// naming the layer to add. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct AuthInfoRejection {
    rejection: BearerRejection,
}

impl AuthInfoRejection {
    fn new(parts: &Parts) -> Self {
        tracing::error!(
            path = parts.uri.path(),
            "a handler asked for AuthInfo but the request carries none; put BearerAuthLayer in \
             front of this route (answering 500)"
        );
        Self {
            rejection: BearerRejection::new(BearerAuthError::MissingAuthInfo, &[], false),
        }
    }

    /// The answer as framework-neutral parts (status, headers, JSON body).
    pub fn rejection(&self) -> &BearerRejection {
        &self.rejection
    }
}

impl fmt::Display for AuthInfoRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.rejection.error(), f)
    }
}

impl std::error::Error for AuthInfoRejection {}

impl IntoResponse for AuthInfoRejection {
    fn into_response(self) -> Response {
        self.rejection.into_response()
    }
}

/// `AuthInfo` as an axum extractor: the identity the [`BearerAuthLayer`](crate::BearerAuthLayer)
/// verified for this request. Rejects with [`AuthInfoRejection`] (500) when there is none.
impl<S> FromRequestParts<S> for AuthInfo
where
    S: Send + Sync,
{
    type Rejection = AuthInfoRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AuthInfo>() {
            Some(info) => Ok(info.clone()),
            None => Err(AuthInfoRejection::new(parts)),
        }
    }
}

/// `Option<AuthInfo>` as an axum extractor: `None` when the request carries no verified
/// identity (for routes that serve anonymous callers too). Never rejects.
impl<S> OptionalFromRequestParts<S> for AuthInfo
where
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthInfo>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http::header::WWW_AUTHENTICATE;

    #[tokio::test]
    async fn extractor_without_layer_answers_500_naming_the_layer() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let rejection = <AuthInfo as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert!(
            rejection.to_string().contains("BearerAuthLayer"),
            "{rejection}"
        );
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn metadata_router_serves_paths_axum_would_read_as_captures() {
        use crate::discovery::AuthServer;
        use crate::metadata::AuthorizationServerMetadata;
        use tower::ServiceExt;

        let metadata = AuthorizationServerMetadata::authorization_code(
            "https://as.example.com",
            "https://as.example.com/authorize",
            "https://as.example.com/token",
        );
        let auth = McpAuth::builder()
            .protected_resource(
                crate::ProtectedResource::new("https://h.example.com/:tenant/*mcp")
                    .authorization_server(AuthServer::from_metadata(metadata)),
            )
            .build()
            .unwrap();
        let router: Router = Router::new()
            .without_v07_checks()
            .merge(auth.metadata_router());
        let request = http::Request::get("/.well-known/oauth-protected-resource/:tenant/*mcp")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn optional_extractor_gives_none_or_the_auth_info() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let none =
            <AuthInfo as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await;
        assert_eq!(none, Ok(None));
        let info = AuthInfo::new("t", "https://as.example.com").with_subject("alice");
        parts.extensions.insert(info.clone());
        let some =
            <AuthInfo as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await;
        assert_eq!(some, Ok(Some(info)));
    }
}
