//! [`ClientCertificate`]: the DER bytes of a client's X.509 certificate and its RFC 8705
//! thumbprint.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rustls_pki_types::pem::{self, PemObject as _, SectionKind};

use super::error::CertificateError;

/// The largest certificate accepted, in DER bytes (16 KiB). Client certificates are a few
/// KiB at most; anything larger is refused before it is hashed.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// A client's X.509 certificate as DER bytes, as presented in a mutually authenticated TLS
/// handshake (or forwarded by a trusted proxy). Cheap to clone.
///
/// Only the outer DER structure is checked (one definite-length `SEQUENCE` spanning every
/// byte, at most [`MAX_CERTIFICATE_BYTES`]); the certificate's chain, validity and key were
/// the TLS layer's job. What RFC 8705 binds a token to is the
/// [`thumbprint_s256`](Self::thumbprint_s256) of exactly these bytes.
///
/// The crate's hyper [`Server`](crate::integrations::hyper::Server), serving TLS, puts the
/// peer's certificate into every request's extensions as a `ClientCertificate`, where
/// [`CertificateSource::TlsPeer`](crate::mtls::CertificateSource::TlsPeer) finds it.
///
/// ```
/// use mcp_auth::mtls::ClientCertificate;
///
/// // A DER SEQUENCE of two bytes (not a real certificate, but well-formed DER).
/// let cert = ClientCertificate::from_der(vec![0x30, 0x02, 0x05, 0x00])?;
/// assert_eq!(cert.der(), [0x30, 0x02, 0x05, 0x00]);
/// assert_eq!(cert.thumbprint_s256().len(), 43); // base64url SHA-256, no padding
/// assert!(ClientCertificate::from_der(vec![0x30, 0x05, 0x00]).is_err());
/// # Ok::<(), mcp_auth::mtls::CertificateError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientCertificate {
    der: Bytes,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("len", &self.der.len())
            .field("x5t#S256", &self.thumbprint_s256())
            .finish()
    }
}

impl ClientCertificate {
    /// A certificate from its DER encoding.
    ///
    /// # Errors
    ///
    /// [`CertificateError::TooLarge`] over [`MAX_CERTIFICATE_BYTES`],
    /// [`CertificateError::NotDer`] when the bytes are not one DER `SEQUENCE`.
    pub fn from_der(der: impl Into<Bytes>) -> Result<Self, CertificateError> {
        let der = der.into();
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge {
                length: der.len(),
                max: MAX_CERTIFICATE_BYTES,
            });
        }
        if !is_one_der_sequence(&der) {
            return Err(CertificateError::NotDer);
        }
        Ok(Self { der })
    }

    /// A certificate from PEM: exactly one `-----BEGIN CERTIFICATE-----` section and nothing
    /// else that PEM parsers recognise (no key, no second certificate: a chain is refused, so
    /// it is never ambiguous which certificate is meant).
    ///
    /// # Errors
    ///
    /// [`CertificateError::Pem`] for malformed PEM, [`CertificateError::NotOneCertificate`]
    /// when there is no certificate section or more than one section, and the errors of
    /// [`from_der`](Self::from_der).
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, CertificateError> {
        let pem = pem.as_ref();
        // Base64 grows by 4/3, plus lines and armour: bound the work before decoding.
        if pem.len() > MAX_CERTIFICATE_BYTES * 2 {
            return Err(CertificateError::TooLarge {
                length: pem.len(),
                max: MAX_CERTIFICATE_BYTES * 2,
            });
        }
        let mut sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem);
        let first = sections.next().transpose().map_err(pem_error)?;
        let second = sections.next().transpose().map_err(pem_error)?;
        match (first, second) {
            (Some((SectionKind::Certificate, der)), None) => Self::from_der(der),
            _ => Err(CertificateError::NotOneCertificate),
        }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The RFC 8705 §3.1 thumbprint: base64url (no padding) of the SHA-256 of the DER bytes,
    /// what a certificate-bound token carries as `cnf.x5t#S256`.
    pub fn thumbprint_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest(&SHA256, &self.der))
    }

    /// Whether `x5t` is this certificate's thumbprint, compared in constant time.
    pub(crate) fn matches(&self, x5t: &str) -> bool {
        let ours = self.thumbprint_s256();
        aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_bytes(), x5t.as_bytes()).is_ok()
    }
}

fn pem_error(error: pem::Error) -> CertificateError {
    CertificateError::Pem {
        reason: error.to_string(),
    }
}

/// Whether `der` is exactly one DER `SEQUENCE` (tag 0x30, definite minimal-form length
/// covering the rest of the bytes).
fn is_one_der_sequence(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (length, content) = match *first {
        short @ 0..=0x7f => (usize::from(short), rest),
        // Long form with 1 or 2 length bytes: enough for MAX_CERTIFICATE_BYTES.
        0x81 => match rest {
            [len, content @ ..] if *len >= 0x80 => (usize::from(*len), content),
            _ => return false,
        },
        0x82 => match rest {
            [hi, lo, content @ ..] if *hi != 0 => {
                (usize::from(*hi) << 8 | usize::from(*lo), content)
            }
            _ => return false,
        },
        _ => return false,
    };
    length == content.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outer_der_structure_is_checked() {
        assert!(is_one_der_sequence(&[0x30, 0x00]));
        assert!(is_one_der_sequence(&[0x30, 0x01, 0x00]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend([0; 0x80]);
        assert!(is_one_der_sequence(&long));
        let mut longer = vec![0x30, 0x82, 0x01, 0x00];
        longer.extend([0; 0x100]);
        assert!(is_one_der_sequence(&longer));
        for bad in [
            &[][..],
            &[0x30],
            &[0x31, 0x00],
            &[0x30, 0x01],
            &[0x30, 0x00, 0x00],
            &[0x30, 0x80, 0x00, 0x00],
            // Non-minimal long forms.
            &[0x30, 0x81, 0x01, 0x00],
            &[0x30, 0x82, 0x00, 0x01, 0x00],
            &[0x30, 0x83, 0x00, 0x00, 0x01, 0x00],
        ] {
            assert!(!is_one_der_sequence(bad), "{bad:?}");
        }
    }

    #[test]
    fn oversized_certificates_are_refused_before_hashing() {
        let mut der = vec![0x30, 0x82, 0x40, 0x00];
        der.extend(vec![0; 0x4000]);
        assert!(matches!(
            ClientCertificate::from_der(der),
            Err(CertificateError::TooLarge {
                max: MAX_CERTIFICATE_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn the_thumbprint_is_base64url_sha256_of_the_der_and_compares_exactly() {
        let cert = ClientCertificate::from_der(vec![0x30, 0x00]).unwrap();
        // SHA-256 of 30 00, base64url without padding.
        let expected = URL_SAFE_NO_PAD.encode(digest(&SHA256, &[0x30, 0x00]));
        assert_eq!(cert.thumbprint_s256(), expected);
        assert!(cert.matches(&expected));
        assert!(!cert.matches(&expected[..42]));
        assert!(!cert.matches(&format!("{expected}=")));
        assert!(!cert.matches(""));
    }

    #[test]
    fn pem_must_hold_exactly_one_certificate() {
        let body = base64::engine::general_purpose::STANDARD.encode([0x30, 0x00]);
        let one = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
        assert_eq!(
            ClientCertificate::from_pem(&one).unwrap().der(),
            [0x30, 0x00]
        );
        let two = format!("{one}{one}");
        assert_eq!(
            ClientCertificate::from_pem(two),
            Err(CertificateError::NotOneCertificate)
        );
        let key = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
        assert_eq!(
            ClientCertificate::from_pem(&key),
            Err(CertificateError::NotOneCertificate)
        );
        assert_eq!(
            ClientCertificate::from_pem(format!("{one}{key}")),
            Err(CertificateError::NotOneCertificate)
        );
        assert_eq!(
            ClientCertificate::from_pem(""),
            Err(CertificateError::NotOneCertificate)
        );
        assert!(matches!(
            ClientCertificate::from_pem(
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
            ),
            Err(CertificateError::Pem { .. })
        ));
    }
}
