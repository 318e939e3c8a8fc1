//! [`ServedDocument`]: a resource's RFC 9728 document as served, with the fields derived from
//! how its guards enforce tokens.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::ProtectedResourceMetadata;

/// One resource's metadata, serialised once for each value of the fields its guards decide:
/// `tls_client_certificate_bound_access_tokens` is `true` once a guard of the resource is built
/// with a client-certificate source (RFC 9728 §2, PRM-12: it agrees with enforcement), and
/// absent before.
#[derive(Debug)]
pub(crate) struct ServedDocument {
    plain: (ProtectedResourceMetadata, Bytes),
    certificate_bound: (ProtectedResourceMetadata, Bytes),
    advertises_certificate_bound: AtomicBool,
}

impl ServedDocument {
    /// Serialises `metadata` (whose derived fields are unset) in each form.
    pub(crate) fn new(metadata: ProtectedResourceMetadata) -> Result<Self, serde_json::Error> {
        let mut bound = metadata.clone();
        bound.tls_client_certificate_bound_access_tokens = Some(true);
        let plain_bytes = Bytes::from(serde_json::to_vec(&metadata)?);
        let bound_bytes = Bytes::from(serde_json::to_vec(&bound)?);
        Ok(Self {
            plain: (metadata, plain_bytes),
            certificate_bound: (bound, bound_bytes),
            advertises_certificate_bound: AtomicBool::new(false),
        })
    }

    fn current(&self) -> &(ProtectedResourceMetadata, Bytes) {
        if self.advertises_certificate_bound.load(Ordering::Acquire) {
            &self.certificate_bound
        } else {
            &self.plain
        }
    }

    /// The metadata as served now.
    pub(crate) fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.current().0
    }

    /// The JSON served now.
    pub(crate) fn bytes(&self) -> Bytes {
        self.current().1.clone()
    }

    /// Records that a guard of the resource proves certificate-bound tokens.
    pub(crate) fn advertise_certificate_bound(&self) {
        self.advertises_certificate_bound
            .store(true, Ordering::Release);
    }
}
