//! [`CertificateError`]: why a client certificate could not be read.

/// Why a client certificate (DER, PEM, or a trusted proxy's header) could not be read.
///
/// For a certificate-bound token, the bearer guard answers any of these with 401
/// `invalid_token` ([`BearerAuthError::TokenBindingMismatch`](crate::BearerAuthError::TokenBindingMismatch)):
/// without a readable certificate the binding cannot be proven (RFC 8705 §3). The detail
/// is logged at `debug`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The certificate (or the header carrying it) is larger than the limit.
    #[error("the client certificate is {length} bytes long, over the {max}-byte limit")]
    TooLarge {
        /// Its length in bytes.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not one DER `SEQUENCE`, so not an X.509 certificate.
    #[error("the client certificate is not DER: expected one definite-length SEQUENCE")]
    NotDer,
    /// The PEM text is malformed.
    #[error("the client certificate PEM is malformed: {reason}")]
    Pem {
        /// What the PEM parser reported.
        reason: String,
    },
    /// The PEM text has no `CERTIFICATE` section, or more than one section.
    #[error("the PEM text must hold exactly one CERTIFICATE section and nothing else")]
    NotOneCertificate,
    /// The trusted proxy's header occurs more than once (RFC 9440 §2.2: a singleton field).
    #[error("the client-certificate header occurs more than once")]
    RepeatedHeader,
    /// The header is not an RFC 8941 byte sequence (`:base64:`), or carries parameters or a
    /// list.
    #[error("the client-certificate header is not an RFC 9440 byte sequence `:<base64 DER>:`")]
    NotByteSequence,
    /// The byte sequence's content is not base64.
    #[error("the client-certificate header's byte sequence is not valid base64")]
    InvalidBase64,
    /// The URL-encoded PEM header has a malformed `%` escape or bytes outside printable
    /// ASCII.
    #[error("the client-certificate header is not URL-encoded PEM")]
    InvalidUrlEncoding,
}

impl CertificateError {
    /// A short, fixed reason for the client (the guard's `error_description`).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "the client certificate is too large",
            Self::NotDer | Self::Pem { .. } | Self::NotOneCertificate => {
                "the client certificate cannot be read"
            }
            Self::RepeatedHeader
            | Self::NotByteSequence
            | Self::InvalidBase64
            | Self::InvalidUrlEncoding => "the forwarded client certificate header is malformed",
        }
    }
}
