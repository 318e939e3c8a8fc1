//! Framework adapters, each behind its own cargo feature.
//!
//! | module | feature | what it adds |
//! |---|---|---|
//! | `axum` | `axum` | `McpAuth::metadata_router` (and `DelegatedAuth::metadata_router`), [`AuthInfo`](crate::AuthInfo) as an extractor (`FromRequestParts`, `Option<AuthInfo>`) |
//! | `actix` | `actix-web` | middleware, `AuthInfo` extractor and metadata routes for actix-web 4 |
//! | `hyper` | `hyper` | serving the tower services with plain hyper 1 + hyper-util |
//! | `rmcp` | `rmcp` | [`AuthInfo`](crate::AuthInfo) and [`GrantedScopes`](crate::scope::GrantedScopes) as `#[tool]` arguments of the official Rust MCP SDK |
//!
//! The bearer guard itself is framework-neutral: [`BearerAuth::layer`](crate::BearerAuth::layer)
//! is a tower middleware that axum, hyper and rmcp's `StreamableHttpService` use as is.

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "hyper")))]
pub mod hyper;

#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub mod rmcp;
