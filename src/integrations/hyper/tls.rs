//! TLS termination for [`Server`](super::Server) (feature `tls`): tokio-rustls on aws-lc-rs,
//! with optional or required client certificates, and each connection's client certificate
//! put on every one of its requests as a [`ClientCertificate`] extension (RFC 8705 mTLS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tower_service::Service;

pub use tokio_rustls::rustls;

use crate::ConfigError;
use crate::mtls::ClientCertificate;

/// How long a client has, by default, to complete the TLS handshake
/// ([`Server::tls_handshake_timeout`](super::Server::tls_handshake_timeout)).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the server asks TLS clients for a certificate, and which certificate authorities
/// it accepts them from (see [`tls_server_config`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is requested: certificate-bound tokens cannot be proven.
    None,
    /// A certificate is requested; a client without one still connects (and its
    /// certificate-bound tokens are refused), a client with one must chain to `roots`.
    Optional(Arc<RootCertStore>),
    /// A certificate chaining to `roots` is required: the handshake fails without one.
    Required(Arc<RootCertStore>),
}

/// A rustls `ServerConfig` for [`Server::tls`](super::Server::tls): the server's certificate
/// chain and key, client certificates as `client_auth` says (rustls' `WebPkiClientVerifier`
/// over the given roots), ALPN `h2` and `http/1.1`, and aws-lc-rs as the crypto provider (the
/// one reqwest's rustls uses; no process-wide default is needed).
///
/// Build your own `ServerConfig` instead for anything else (revocation lists, other
/// verifiers); [`Server::tls`](super::Server::tls) takes any.
///
/// # Errors
///
/// [`ConfigError::InvalidTlsConfig`] when the roots are empty, or the key does not match the
/// certificate or is of a kind rustls does not support.
pub fn tls_server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<ServerConfig, ConfigError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("protocol_versions", &e))?;
    let verifier = |roots: Arc<RootCertStore>, optional: bool| {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
        let verifier = if optional {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        verifier.build().map_err(|e| invalid("client_auth", &e))
    };
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(roots) => builder.with_client_cert_verifier(verifier(roots, true)?),
        ClientAuth::Required(roots) => builder.with_client_cert_verifier(verifier(roots, false)?),
    };
    let mut config = builder
        .with_single_cert(cert_chain, key)
        .map_err(|e| invalid("certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn invalid(setting: &'static str, error: &dyn std::fmt::Display) -> ConfigError {
    ConfigError::InvalidTlsConfig {
        setting,
        reason: error.to_string(),
    }
}

/// The TLS side of a [`Server`](super::Server): off until [`Server::tls`](super::Server::tls).
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) acceptor: Option<TlsAcceptor>,
    pub(super) handshake_timeout: Duration,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            acceptor: None,
            handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}

impl<S> super::Server<S> {
    /// Serves TLS with `config` on every connection: the handshake runs in the connection's
    /// own task, bounded by the [handshake timeout](Self::tls_handshake_timeout), so a slow or
    /// failing client never holds up the others or the server (failures are logged at `debug`
    /// and the connection closed). Build `config` with [`tls_server_config`] or by hand; set
    /// its ALPN to `h2` and `http/1.1` for HTTP/2.
    ///
    /// When the client presented a certificate (a `config` that requests them, see
    /// [`ClientAuth`]), its end-entity certificate is inserted into every request of the
    /// connection as a [`ClientCertificate`] extension, where
    /// [`CertificateSource::TlsPeer`](crate::mtls::CertificateSource::TlsPeer) finds it; on a
    /// connection without one, no request has that extension.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mcp_auth::integrations::hyper::Server;
    /// use mcp_auth::integrations::hyper::tls::{ClientAuth, rustls, tls_server_config};
    /// use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    ///
    /// # async fn run(app: impl tower_service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<http_body_util::Empty<bytes::Bytes>>, Error = std::convert::Infallible, Future: Send + 'static> + Clone + Send + 'static) -> Result<(), Box<dyn std::error::Error>> {
    /// let chain = CertificateDer::pem_file_iter("server.pem")?.collect::<Result<Vec<_>, _>>()?;
    /// let key = PrivateKeyDer::from_pem_file("server.key")?;
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(CertificateDer::from_pem_file("client-ca.pem")?)?;
    /// let config = tls_server_config(chain, key, ClientAuth::Optional(Arc::new(roots)))?;
    ///
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// Server::new(listener, app).tls(Arc::new(config)).serve().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls.acceptor = Some(TlsAcceptor::from(config));
        self
    }

    /// How long a TLS client has to complete the handshake after its connection was accepted.
    /// Default: 10 seconds ([`DEFAULT_TLS_HANDSHAKE_TIMEOUT`]). The
    /// [header-read timeout](Self::header_read_timeout) starts once the handshake is done, so a
    /// TLS client has at most the sum of both to send its first request head. Has no effect without
    /// [`tls`](Self::tls). Values over 100 years count as 100 years; [`serve`](Self::serve)
    /// refuses zero.
    #[must_use]
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls.handshake_timeout = timeout.min(super::LONGEST_TIMEOUT);
        self
    }
}

impl Tls {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::ZeroSetting {
                setting: "tls_handshake_timeout",
                advice: "no client can complete a TLS handshake in no time, so every connection \
                         would be closed; keep the default (10 s)",
            });
        }
        Ok(())
    }

    /// The handshake with `acceptor`, bounded by `timeout`; `None` (logged at `debug`) when it
    /// fails.
    pub(super) async fn handshake(
        acceptor: &TlsAcceptor,
        timeout: Duration,
        stream: TcpStream,
        remote: SocketAddr,
    ) -> Option<(TlsStream<TcpStream>, Option<ClientCertificate>)> {
        let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return None;
            }
        };
        let end_entity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        let certificate = match end_entity.map(|der| ClientCertificate::from_der(der.to_vec())) {
            None => None,
            Some(Ok(certificate)) => Some(certificate),
            Some(Err(error)) => {
                // rustls verified it, so this is only our size bound: serve, but bind nothing.
                tracing::debug!(%remote, %error, "client certificate not usable for token binding");
                None
            }
        };
        Some((stream, certificate))
    }
}

/// A service that adds the connection's client certificate to every request's extensions
/// (replacing any a client could not have set anyway).
#[derive(Clone)]
pub(super) struct WithClientCertificate<S> {
    pub(super) inner: S,
    pub(super) certificate: Option<ClientCertificate>,
}

impl<S> Service<Request<Incoming>> for WithClientCertificate<S>
where
    S: Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        match &self.certificate {
            Some(certificate) => {
                request.extensions_mut().insert(certificate.clone());
            }
            None => {
                request.extensions_mut().remove::<ClientCertificate>();
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::Response;
    use http_body_util::Full;
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn empty_client_ca_roots_are_refused_by_name() {
        let key = PrivateKeyDer::Pkcs8(Vec::new().into());
        let error = tls_server_config(
            Vec::new(),
            key,
            ClientAuth::Required(Arc::new(RootCertStore::empty())),
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::InvalidTlsConfig {
                    setting: "client_auth",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_key_that_is_not_a_key_is_refused() {
        let key = PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into());
        let error = tls_server_config(Vec::new(), key, ClientAuth::None).unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::InvalidTlsConfig {
                    setting: "certificate",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn serve_refuses_a_zero_handshake_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let service = tower::service_fn(|_: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let refused = super::super::Server::new(listener, service)
            .tls_handshake_timeout(Duration::ZERO)
            .serve()
            .await;
        assert!(
            matches!(
                refused,
                Err(ConfigError::ZeroSetting {
                    setting: "tls_handshake_timeout",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
