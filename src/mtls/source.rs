//! [`CertificateSource`]: where the guard finds the client certificate of a request.

use http::{HeaderName, HeaderValue};

use super::certificate::ClientCertificate;
use super::error::CertificateError;
use super::header::{HeaderEncoding, certificate_from_header};

/// Where the bearer guard finds a request's client certificate, to prove certificate-bound
/// tokens (RFC 8705 §3). Set with
/// [`BearerAuthBuilder::client_certificates`](crate::BearerAuthBuilder::client_certificates);
/// without one, every certificate-bound token is refused.
///
/// ```
/// use http::HeaderName;
/// use mcp_auth::mtls::{CertificateSource, HeaderEncoding};
///
/// // This process terminates TLS (the crate's hyper `Server` with the `tls` feature).
/// let peer = CertificateSource::TlsPeer;
/// // A TLS-terminating proxy in front forwards it (RFC 9440 `Client-Cert`)...
/// let proxy = CertificateSource::client_cert_header();
/// // ...or as nginx's `$ssl_client_escaped_cert` in a header of your choice.
/// let nginx = CertificateSource::trusted_proxy_header(
///     HeaderName::from_static("x-ssl-client-cert"),
///     HeaderEncoding::UrlEncodedPem,
/// );
/// # let _ = (peer, proxy, nginx);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateSource {
    /// The peer certificate of the request's own mutually authenticated TLS connection: the
    /// [`ClientCertificate`] request extension that the crate's hyper
    /// [`Server`](crate::integrations::hyper::Server) (feature `tls`) puts on every request of
    /// a connection whose client presented a certificate. Any server that does the same
    /// works. No extension means no certificate.
    TlsPeer,
    /// A header set by a TLS-terminating reverse proxy in front of this server.
    ///
    /// # This trusts the proxy
    ///
    /// Whoever can set this header chooses the certificate the guard sees. Use it only when
    /// every request reaches this server through that proxy, and the proxy **removes the header
    /// from client requests** before setting its own (RFC 9440 §2.4, §4). Otherwise a client
    /// that stole a certificate-bound token forges the thumbprint in a header and the binding
    /// protects nothing.
    ///
    /// The header must occur at most once and be well-formed in the chosen
    /// [`encoding`](HeaderEncoding); a malformed one refuses a certificate-bound token
    /// (401 `invalid_token`), it is never read as "no certificate" or ignored.
    #[non_exhaustive]
    TrustedProxyHeader {
        /// The header's name.
        name: HeaderName,
        /// How the proxy encodes the certificate.
        encoding: HeaderEncoding,
    },
}

impl CertificateSource {
    /// The RFC 9440 `Client-Cert` header (a byte sequence of the DER) set by a trusted proxy:
    /// read [`TrustedProxyHeader`](Self::TrustedProxyHeader) first.
    pub fn client_cert_header() -> Self {
        Self::trusted_proxy_header(
            HeaderName::from_static("client-cert"),
            HeaderEncoding::ByteSequence,
        )
    }

    /// The header `name` in `encoding`, set by a trusted proxy: read
    /// [`TrustedProxyHeader`](Self::TrustedProxyHeader) first.
    pub fn trusted_proxy_header(name: HeaderName, encoding: HeaderEncoding) -> Self {
        Self::TrustedProxyHeader { name, encoding }
    }

    /// What of `parts` this source reads, copied so the check can run later: the TLS peer
    /// certificate extension, or the proxy header's values (parsed only if a certificate-bound
    /// token needs them).
    pub(crate) fn capture(&self, parts: &http::request::Parts) -> PresentedCertificate {
        match self {
            Self::TlsPeer => {
                PresentedCertificate::Peer(parts.extensions.get::<ClientCertificate>().cloned())
            }
            Self::TrustedProxyHeader { name, encoding } => PresentedCertificate::Header {
                values: parts.headers.get_all(name).iter().cloned().collect(),
                encoding: *encoding,
            },
        }
    }
}

/// A request's client certificate as its [`CertificateSource`] captured it.
#[derive(Debug)]
pub(crate) enum PresentedCertificate {
    /// The TLS peer certificate, if the connection had one.
    Peer(Option<ClientCertificate>),
    /// The trusted proxy's header values, not yet parsed.
    Header {
        values: Vec<HeaderValue>,
        encoding: HeaderEncoding,
    },
}

impl PresentedCertificate {
    /// The request's certificate, `None` when it presented none.
    pub(crate) fn certificate(&self) -> Result<Option<ClientCertificate>, CertificateError> {
        match self {
            Self::Peer(certificate) => Ok(certificate.clone()),
            Self::Header { values, encoding } => certificate_from_header(values, *encoding),
        }
    }
}
