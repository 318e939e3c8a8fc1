//! Reading a client certificate from a trusted proxy's header: RFC 9440 `Client-Cert`
//! (an RFC 8941 byte sequence of the DER) or URL-encoded PEM (nginx's
//! `$ssl_client_escaped_cert`). Strict: anything else is an error, never "no certificate".

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderValue;

use super::certificate::{ClientCertificate, MAX_CERTIFICATE_BYTES};
use super::error::CertificateError;

/// The longest header value read: URL-encoded PEM of the largest certificate accepted is about
/// three times its base64 text.
pub(crate) const MAX_HEADER_BYTES: usize = MAX_CERTIFICATE_BYTES * 4;

/// RFC 8941 §3.3.5: standard base64; "parsers SHOULD NOT fail when "=" padding is not
/// present".
const SF_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How a trusted proxy encodes the client certificate in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderEncoding {
    /// RFC 9440 `Client-Cert`: an RFC 8941 byte sequence, `:<base64 of the DER>:`, with no
    /// parameters. The default.
    #[default]
    ByteSequence,
    /// URL-encoded PEM of one certificate, as nginx's `$ssl_client_escaped_cert` (or
    /// HAProxy and others configured to send PEM percent-encoded).
    UrlEncodedPem,
}

/// The certificate in the header values `values` (every occurrence of the header), `None`
/// when the header is absent.
pub(crate) fn certificate_from_header(
    values: &[HeaderValue],
    encoding: HeaderEncoding,
) -> Result<Option<ClientCertificate>, CertificateError> {
    let value = match values {
        [] => return Ok(None),
        [value] => value.as_bytes(),
        _ => return Err(CertificateError::RepeatedHeader),
    };
    if value.len() > MAX_HEADER_BYTES {
        return Err(CertificateError::TooLarge {
            length: value.len(),
            max: MAX_HEADER_BYTES,
        });
    }
    let value = value.trim_ascii();
    match encoding {
        HeaderEncoding::ByteSequence => byte_sequence(value).map(Some),
        HeaderEncoding::UrlEncodedPem => url_encoded_pem(value).map(Some),
    }
}

/// RFC 8941 §4.2.7 on an Item that must be a bare byte sequence.
fn byte_sequence(value: &[u8]) -> Result<ClientCertificate, CertificateError> {
    let [b':', inner @ .., b':'] = value else {
        return Err(CertificateError::NotByteSequence);
    };
    if inner.is_empty() {
        return Err(CertificateError::NotByteSequence);
    }
    // A `:` inside means the sequence ended early and something (parameters, a list) follows.
    if !inner
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(CertificateError::NotByteSequence);
    }
    let der = SF_BASE64
        .decode(inner)
        .map_err(|_| CertificateError::InvalidBase64)?;
    ClientCertificate::from_der(der)
}

/// Percent-decoding with no leniency: every `%` starts two hex digits, and every other byte is
/// visible ASCII.
fn url_encoded_pem(value: &[u8]) -> Result<ClientCertificate, CertificateError> {
    let mut decoded = Vec::with_capacity(value.len());
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(|&h| hex(h));
                let lo = bytes.next().and_then(|&l| hex(l));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => decoded.push(hi << 4 | lo),
                    _ => return Err(CertificateError::InvalidUrlEncoding),
                }
            }
            b'!'..=b'~' => decoded.push(b),
            _ => return Err(CertificateError::InvalidUrlEncoding),
        }
    }
    ClientCertificate::from_pem(decoded)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;

    const DER: [u8; 4] = [0x30, 0x02, 0x05, 0x00];

    fn read(
        values: &[&str],
        encoding: HeaderEncoding,
    ) -> Result<Option<ClientCertificate>, CertificateError> {
        let values: Vec<HeaderValue> = values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect();
        certificate_from_header(&values, encoding)
    }

    #[test]
    fn a_byte_sequence_gives_the_der() {
        let b64 = B64.encode(DER);
        for value in [
            format!(":{b64}:"),
            format!("  :{b64}: "),
            format!(":{}:", b64.trim_end_matches('=')),
        ] {
            let cert = read(&[&value], HeaderEncoding::ByteSequence)
                .unwrap()
                .unwrap();
            assert_eq!(cert.der(), DER, "{value}");
        }
        assert_eq!(read(&[], HeaderEncoding::ByteSequence), Ok(None));
    }

    #[test]
    fn anything_but_one_bare_byte_sequence_is_an_error() {
        let b64 = B64.encode(DER);
        let cases = [
            (b64.clone(), CertificateError::NotByteSequence),
            (format!(":{b64}"), CertificateError::NotByteSequence),
            ("::".to_owned(), CertificateError::NotByteSequence),
            (format!(":{b64}:;a=1"), CertificateError::NotByteSequence),
            (
                format!(":{b64}:, :{b64}:"),
                CertificateError::NotByteSequence,
            ),
            (
                format!(":{}:", b64.replace('A', "-")),
                CertificateError::NotByteSequence,
            ),
            (":MAIFAA=x:".to_owned(), CertificateError::InvalidBase64),
            (":AAAA:".to_owned(), CertificateError::NotDer),
        ];
        for (value, expected) in cases {
            assert_eq!(
                read(&[&value], HeaderEncoding::ByteSequence),
                Err(expected),
                "{value}"
            );
        }
        let one = format!(":{b64}:");
        assert_eq!(
            read(&[&one, &one], HeaderEncoding::ByteSequence),
            Err(CertificateError::RepeatedHeader)
        );
        let huge = format!(":{}:", "A".repeat(MAX_HEADER_BYTES));
        assert!(matches!(
            read(&[&huge], HeaderEncoding::ByteSequence),
            Err(CertificateError::TooLarge { .. })
        ));
    }

    #[test]
    fn url_encoded_pem_is_decoded_strictly() {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            B64.encode(DER)
        );
        let escaped: String = pem
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let cert = read(&[&escaped], HeaderEncoding::UrlEncodedPem)
            .unwrap()
            .unwrap();
        assert_eq!(cert.der(), DER);
        for bad in [
            format!("{escaped}%"),
            format!("{escaped}%4"),
            format!("{escaped}%zz"),
            escaped.replace("%0A", " "),
        ] {
            assert_eq!(
                read(&[&bad], HeaderEncoding::UrlEncodedPem),
                Err(CertificateError::InvalidUrlEncoding),
                "{bad}"
            );
        }
        assert_eq!(
            read(&["nothing"], HeaderEncoding::UrlEncodedPem),
            Err(CertificateError::NotOneCertificate)
        );
    }
}
