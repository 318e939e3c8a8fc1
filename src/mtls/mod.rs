//! Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf.x5t#S256` names a client
//! certificate is accepted only from a request that comes with that certificate.
//!
//! - [`ClientCertificate`]: the DER bytes of a client certificate and their
//!   [`thumbprint_s256`](ClientCertificate::thumbprint_s256);
//! - [`CertificateSource`]: where the guard finds a request's certificate, set with
//!   [`BearerAuthBuilder::client_certificates`](crate::BearerAuthBuilder::client_certificates):
//!   the TLS peer of the crate's hyper [`Server`](crate::integrations::hyper::Server) (feature
//!   `tls`), or a header set by a trusted TLS-terminating proxy (RFC 9440 `Client-Cert`, or
//!   URL-encoded PEM).
//!
//! The check runs after the token is verified (issuer, audience, expiry) and before scopes: a
//! bound token with no certificate, an unreadable one, or another one gets 401
//! `invalid_token`; with the right one the [`AuthInfo::binding`](crate::AuthInfo::binding) is
//! [`TokenBinding::Certificate`](crate::TokenBinding::Certificate). Tokens without `cnf` are
//! unaffected. The thumbprints are compared in constant time. With a source configured, the
//! resource's metadata says `tls_client_certificate_bound_access_tokens: true`.
//!
//! ```
//! use http::{Request, StatusCode};
//! use mcp_auth::mtls::{CertificateSource, ClientCertificate};
//! use mcp_auth::{AuthInfo, AuthServer, AuthorizationServerMetadata, McpAuth, ProtectedResource, TokenBinding};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let cert = ClientCertificate::from_der(vec![0x30, 0x02, 0x05, 0x00])?; // from the TLS layer
//! let x5t = cert.thumbprint_s256();
//! # let as_metadata = AuthorizationServerMetadata::authorization_code(
//! #     "https://auth.example.com", "https://auth.example.com/authorize", "https://auth.example.com/token");
//! let auth = McpAuth::builder()
//!     .protected_resource(
//!         ProtectedResource::new("https://api.example.com/mcp")
//!             .authorization_server(AuthServer::from_metadata(as_metadata)),
//!     )
//!     .build()?;
//! let bound = x5t.clone();
//! let guard = auth
//!     .bearer_auth("https://api.example.com/mcp", move |token: String| {
//!         let bound = bound.clone();
//!         async move {
//!             let mut info = AuthInfo::new(token, "https://auth.example.com")
//!                 .with_audience(["https://api.example.com/mcp"]);
//!             info.claims.insert("cnf".into(), serde_json::json!({ "x5t#S256": bound }));
//!             Ok(info)
//!         }
//!     })
//!     .client_certificates(CertificateSource::TlsPeer)
//!     .build()?;
//!
//! let request = |cert: Option<ClientCertificate>| {
//!     let mut request = Request::builder().uri("/mcp").header("authorization", "Bearer t");
//!     if let Some(cert) = cert {
//!         request = request.extension(cert);
//!     }
//!     request.body(()).unwrap().into_parts().0
//! };
//! let info = guard.authenticate_request(&request(Some(cert))).await?;
//! assert_eq!(info.binding(), &TokenBinding::Certificate { x5t_s256: x5t });
//! let refused = guard.authenticate_request(&request(None)).await.unwrap_err();
//! assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod certificate;
mod error;
mod header;
mod source;

pub use certificate::{ClientCertificate, MAX_CERTIFICATE_BYTES};
pub use error::CertificateError;
pub use header::HeaderEncoding;
pub use source::CertificateSource;
pub(crate) use source::PresentedCertificate;

use crate::bearer::BearerAuthError;

/// Proves a certificate-bound token: `x5t` (its `cnf.x5t#S256`) must be the thumbprint of the
/// certificate the configured `source` captured from the request (`presented`: `None` for a
/// guard called with headers only). Gives the proven thumbprint.
pub(crate) fn prove_binding(
    source: Option<&CertificateSource>,
    x5t: &str,
    presented: Option<&PresentedCertificate>,
) -> Result<String, BearerAuthError> {
    let mismatch = |reason| Err(BearerAuthError::TokenBindingMismatch { reason });
    if source.is_none() {
        return mismatch("certificate-bound token but no client certificate source is configured");
    }
    // With a source, every request seen by `authenticate_request` has its capture.
    let Some(presented) = presented else {
        return mismatch(
            "certificate-bound token checked without the request (BearerAuth::authenticate sees \
             headers only; adapters call authenticate_request)",
        );
    };
    match presented.certificate() {
        Ok(Some(cert)) if cert.matches(x5t) => Ok(x5t.to_owned()),
        Ok(Some(_)) => mismatch("the client certificate is not the one the token is bound to"),
        Ok(None) => mismatch("certificate-bound token but the request has no client certificate"),
        Err(error) => {
            tracing::debug!(%error, "the client certificate cannot be read");
            mismatch(error.reason())
        }
    }
}
