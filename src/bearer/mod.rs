//! The bearer guard: from an `Authorization` header to a verified [`AuthInfo`](crate::AuthInfo),
//! or to the exact RFC 6750 / MCP refusal.
//!
//! [`BearerAuthBuilder`] holds the guard's settings and checks them in
//! [`build`](BearerAuthBuilder::build). The guard is framework-neutral:
//! [`BearerAuth::authenticate`] takes the request's headers and returns the
//! [`AuthInfo`](crate::AuthInfo) or a [`BearerRejection`] (status, `WWW-Authenticate`, JSON
//! body). [`BearerAuth::layer`] wraps it as a tower middleware.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, StatusCode};
//! use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, VerifyError};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let as_metadata = AuthorizationServerMetadata::authorization_code(
//!     "https://auth.example.com",
//!     "https://auth.example.com/authorize",
//!     "https://auth.example.com/token",
//! );
//! let auth = McpAuth::builder()
//!     .protected_resource(
//!         ProtectedResource::new("https://api.example.com/mcp")
//!             .authorization_server(AuthServer::from_metadata(as_metadata)),
//!     )
//!     .build()?;
//!
//! let guard = auth
//!     .bearer_auth("https://api.example.com/mcp", |token: String| async move {
//!         match token.as_str() {
//!             "alice-token" => Ok(AuthInfo::new(token, "https://auth.example.com")
//!                 .with_subject("alice")
//!                 .with_audience(["https://api.example.com/mcp"])
//!                 .with_scopes(["read"])),
//!             _ => Err(VerifyError::invalid_token("unknown token")),
//!         }
//!     })
//!     .required_scopes(["read"])
//!     .build()?;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("authorization", HeaderValue::from_static("bearer alice-token"));
//! let info = guard.authenticate(&headers).await?;
//! assert_eq!(info.subject.as_deref(), Some("alice"));
//!
//! let refused = guard.authenticate(&HeaderMap::new()).await.unwrap_err();
//! assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     refused.www_authenticate().unwrap(),
//!     "Bearer scope=\"read\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\""
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod challenge;
mod confirmation;
mod dpop_step;
mod error;
mod guard;
mod header;
mod rejection;

pub use builder::BearerAuthBuilder;
pub(crate) use builder::Target;
pub use challenge::{BearerChallenge, ChallengeParseError, ChallengeScheme};
pub use dpop_step::DpopPolicy;
pub use error::BearerAuthError;
pub use guard::BearerAuth;
pub use header::DEFAULT_MAX_HEADER_BYTES;
#[cfg(feature = "__fuzz")]
pub(crate) use header::bearer_token;
pub use rejection::BearerRejection;

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
