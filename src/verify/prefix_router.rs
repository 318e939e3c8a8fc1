//! [`PrefixRouter`]: one guard, several kinds of credential, chosen by the token's prefix.
//!
//! A token that starts with a routed prefix goes to that prefix's verifier and only to it;
//! every other token goes to the fallback (the OAuth verifier). Nothing is ever tried twice:
//! a mistyped API key is refused by the API-key verifier (401 `invalid_token`) and never sent
//! to the OAuth verifier, which might call the authorization server with it, and a JWT is
//! never compared with the keys. Prefixes are checked at [`build`](PrefixRouterBuilder::build)
//! so that no JWT can match one (JWTs start with `eyJ`) and no two overlap.
//!
//! ```
//! use mcp_auth::verify::{ApiKey, ApiKeyVerifier, PrefixRouter};
//! use mcp_auth::{AuthInfo, AuthServer, AuthServerType, McpAuth, ProtectedResource, VerifyError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! const RESOURCE: &str = "https://api.example.com/mcp";
//! let issuer = AuthServer::discover("https://auth.example.com", AuthServerType::Oidc);
//! let auth = McpAuth::builder()
//!     .protected_resource(ProtectedResource::new(RESOURCE).authorization_server(issuer.clone()))
//!     .build()?;
//!
//! let oauth = mcp_auth::JwtVerifier::builder().authorization_server(issuer).build()?;
//! let keys = ApiKeyVerifier::from_config(&format!("ci:{}:read", ApiKey::hash_of("mcpk_example")))?;
//! let verifier = PrefixRouter::builder(oauth)
//!     .route(ApiKey::DEFAULT_PREFIX, keys)
//!     .build()?;
//! let guard = auth.bearer_auth(RESOURCE, verifier).required_scopes(["read"]).build()?;
//! # let _ = guard;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use super::TokenVerifier;
use crate::auth_info::AuthInfo;
use crate::error::{ConfigError, VerifyError};

/// How every JWS compact serialisation starts: base64url of `{"`.
const JWT_START: &str = "eyJ";

/// Whether `b` may appear in a bearer token (RFC 6750 `b64token`, without the trailing `=`).
fn is_b64token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Checks that `prefix` can start a bearer token and cannot start a JWT.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let reason = if prefix.is_empty() {
        "it is empty, so every token would match it"
    } else if !prefix.bytes().all(is_b64token_char) {
        "it has characters a bearer token cannot carry (RFC 6750 b64token: letters, digits, \
         `-._~+/`)"
    } else if prefix.starts_with(JWT_START) || JWT_START.starts_with(prefix) {
        "JWTs start with `eyJ`, so JWT access tokens could match it; choose a prefix such as \
         `mcpk_`"
    } else {
        return Ok(());
    };
    Err(ConfigError::InvalidTokenPrefix {
        prefix: crate::error::bounded_echo(prefix),
        reason,
    })
}

/// A [`TokenVerifier`] that sends each token to one verifier chosen by the token's prefix,
/// or to the fallback when no prefix matches. Build it with [`PrefixRouter::builder`]; see the
/// [module documentation](self). Cheap to clone.
#[derive(Clone)]
pub struct PrefixRouter {
    inner: Arc<Routes>,
}

struct Routes {
    routes: Vec<(String, Arc<dyn TokenVerifier>)>,
    fallback: Arc<dyn TokenVerifier>,
}

impl fmt::Debug for PrefixRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixRouter")
            .field(
                "prefixes",
                &self.inner.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PrefixRouter {
    /// A router whose tokens go to `fallback` unless a [route](PrefixRouterBuilder::route)
    /// matches.
    pub fn builder(fallback: impl TokenVerifier) -> PrefixRouterBuilder {
        PrefixRouterBuilder {
            routes: Vec::new(),
            fallback: Arc::new(fallback),
        }
    }

    /// The routed prefixes, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.routes.iter().map(|(prefix, _)| prefix.as_str())
    }

    /// The verifier `token` goes to.
    fn verifier_for(&self, token: &str) -> &dyn TokenVerifier {
        self.inner
            .routes
            .iter()
            .find(|(prefix, _)| token.starts_with(prefix.as_str()))
            .map_or(&*self.inner.fallback, |(_, verifier)| &**verifier)
    }
}

#[async_trait::async_trait]
impl TokenVerifier for PrefixRouter {
    async fn verify(&self, token: &str) -> Result<AuthInfo, VerifyError> {
        self.verifier_for(token).verify(token).await
    }
}

/// The routes of a [`PrefixRouter`]; [`build`](Self::build) checks them.
#[must_use]
pub struct PrefixRouterBuilder {
    routes: Vec<(String, Arc<dyn TokenVerifier>)>,
    fallback: Arc<dyn TokenVerifier>,
}

impl fmt::Debug for PrefixRouterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixRouterBuilder")
            .field(
                "prefixes",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PrefixRouterBuilder {
    /// Sends tokens that start with `prefix` (case-sensitive) to `verifier`, and only there.
    ///
    /// [`build`](Self::build) refuses ([`ConfigError::InvalidTokenPrefix`]) an empty prefix,
    /// one with characters a bearer token cannot carry, and one a JWT could start with (`e`,
    /// `ey`, `eyJ...`); and ([`ConfigError::OverlappingTokenPrefixes`]) a prefix that starts
    /// with another, or that another starts with.
    pub fn route(mut self, prefix: impl Into<String>, verifier: impl TokenVerifier) -> Self {
        self.routes.push((prefix.into(), Arc::new(verifier)));
        self
    }

    /// The router.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidTokenPrefix`] and [`ConfigError::OverlappingTokenPrefixes`], see
    /// [`route`](Self::route).
    pub fn build(self) -> Result<PrefixRouter, ConfigError> {
        for (i, (prefix, _)) in self.routes.iter().enumerate() {
            check_prefix(prefix)?;
            if let Some((earlier, _)) = self.routes.iter().take(i).find(|(earlier, _)| {
                earlier.starts_with(prefix.as_str()) || prefix.starts_with(earlier.as_str())
            }) {
                return Err(ConfigError::OverlappingTokenPrefixes {
                    first: earlier.clone(),
                    second: prefix.clone(),
                });
            }
        }
        Ok(PrefixRouter {
            inner: Arc::new(Routes {
                routes: self.routes,
                fallback: self.fallback,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &'static str) -> impl TokenVerifier {
        move |token: String| async move { Ok(AuthInfo::new(token, name)) }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn tokens_go_to_the_route_of_their_prefix_or_the_fallback() {
        let router = PrefixRouter::builder(named("oauth"))
            .route("mcpk_", named("keys"))
            .route("svc_", named("services"))
            .build()
            .unwrap();
        let issuer = |token: &'static str| block_on(router.verify(token)).unwrap().issuer;
        assert_eq!(issuer("mcpk_abc"), "keys");
        assert_eq!(issuer("svc_abc"), "services");
        assert_eq!(issuer("eyJhbGciOiJSUzI1NiJ9.e30.sig"), "oauth");
        assert_eq!(issuer("MCPK_abc"), "oauth");
        assert_eq!(issuer("mcpk"), "oauth");
        assert_eq!(router.prefixes().collect::<Vec<_>>(), ["mcpk_", "svc_"]);
    }

    #[test]
    fn a_refusal_of_the_route_is_final() {
        let router = PrefixRouter::builder(named("oauth"))
            .route("mcpk_", |_token: String| async {
                Err::<AuthInfo, _>(VerifyError::invalid_token("unknown key"))
            })
            .build()
            .unwrap();
        assert!(matches!(
            block_on(router.verify("mcpk_x")),
            Err(VerifyError::InvalidToken { .. })
        ));
    }

    #[test]
    fn build_refuses_bad_and_overlapping_prefixes() {
        for prefix in ["", "e", "ey", "eyJ", "eyJz", "a b", "k=", "ключ"] {
            let err = PrefixRouter::builder(named("oauth"))
                .route(prefix, named("keys"))
                .build()
                .unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidTokenPrefix { .. }),
                "{prefix:?}: {err:?}"
            );
        }
        for (first, second) in [("mcpk_", "mcpk_"), ("mcp", "mcpk_"), ("mcpk_", "mcp")] {
            let err = PrefixRouter::builder(named("oauth"))
                .route(first, named("a"))
                .route(second, named("b"))
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, ConfigError::OverlappingTokenPrefixes { first: f, second: s } if f == first && s == second),
                "{err:?}"
            );
        }
    }
}
