//! Token verification: the [`TokenVerifier`] trait and the built-in verifiers.
//!
//! A verifier turns a bearer token into an [`AuthInfo`] or says why it cannot. The bearer
//! guard then checks issuer, audience and scopes on what it returns, the same way for every
//! verifier, so a custom verifier cannot skip those checks by accident. (The one exception:
//! API keys from [`ApiKeyVerifier`] are this server's own, so issuer and audience do not apply
//! to them; see [`CredentialKind`](crate::CredentialKind).) [`PrefixRouter`] puts API keys and
//! OAuth tokens behind one guard.
//!
//! Any async closure `Fn(String) -> impl Future<Output = Result<AuthInfo, VerifyError>>` is a
//! verifier:
//!
//! ```
//! use mcp_auth::{AuthInfo, TokenVerifier, VerifyError};
//!
//! let verifier = |token: String| async move {
//!     if token == "let-me-in" {
//!         Ok(AuthInfo::new(token, "https://auth.example.com").with_subject("alice"))
//!     } else {
//!         Err(VerifyError::invalid_token("unknown token"))
//!     }
//! };
//! # tokio_test_block_on(async {
//! let info = verifier.verify("let-me-in").await?;
//! assert_eq!(info.subject.as_deref(), Some("alice"));
//! # Ok::<(), VerifyError>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod algorithm;
pub mod api_key;
pub mod cache;
mod claims;
mod endpoint;
pub mod introspection;
mod jwk;
mod jwks;
pub mod jwt;
pub mod prefix_router;
mod shared_cache;
pub mod userinfo;

pub use algorithm::JwsAlgorithm;
pub use api_key::{ApiKey, ApiKeyEntry, ApiKeyVerifier, ApiKeyVerifierBuilder};
pub use cache::{CachedVerifier, TokenCache, TokenCacheBuilder};
pub use introspection::{IntrospectionVerifier, IntrospectionVerifierBuilder};
/// A JWKS document (`jsonwebtoken`'s type), for [`JwtVerifierBuilder::jwks_seed`].
pub use jsonwebtoken::jwk::JwkSet;
pub use jwt::{JwtVerifier, JwtVerifierBuilder};
pub use prefix_router::{PrefixRouter, PrefixRouterBuilder};
pub use userinfo::{UserinfoVerifier, UserinfoVerifierBuilder};

use std::future::Future;
use std::sync::Arc;

use crate::auth_info::AuthInfo;
use crate::error::VerifyError;

/// Turns a bearer token into an [`AuthInfo`].
///
/// Object-safe (`Arc<dyn TokenVerifier>` works) and implemented for async closures taking the
/// token as a `String`. Return [`VerifyError::InvalidToken`] for tokens that are not acceptable,
/// [`VerifyError::Unavailable`] when the authorization server cannot be reached, and
/// [`VerifyError::Misconfigured`] for problems only an operator can fix.
#[async_trait::async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token`.
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError>;
}

#[async_trait::async_trait]
impl<F, Fut> TokenVerifier for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AuthInfo, VerifyError>> + Send + 'static,
{
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        (self)(token.to_owned()).await
    }
}

#[async_trait::async_trait]
impl<T: TokenVerifier + ?Sized> TokenVerifier for Arc<T> {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        (**self).verify(token).await
    }
}
