//! State handles bound to the caller: [`CallerBoundState`] seals a tool's state into an opaque
//! handle (rmcp's [`RequestStateCodec`], HMAC-SHA256) whose tag covers the verified caller, so
//! that a handle opens only for the principal it was sealed for.
//!
//! MCP 2026-07-28 has no protocol sessions. A server that keeps state across requests mints a
//! handle (a cart id, a workflow id, an MRTR `requestState`) and receives it back as an
//! ordinary argument. The security best practices say servers "**MUST NOT** treat possession
//! of a state handle as authentication" and "**SHOULD** bind handles server-side to the
//! authenticated user"; the MRTR page asks for "the authenticated principal" and "a short
//! expiry (TTL)" inside the integrity-protected state. This module does both:
//!
//! - the principal is the token's issuer, subject and client id, and the kind of credential
//!   (OAuth token or API key), taken from the [`AuthInfo`] the guard verified, never from the
//!   client's arguments. [`principal_context`] encodes it without ambiguity: a version label,
//!   then each part length-prefixed, an absent part told apart from an empty one, so
//!   `("ab", "c")` and `("a", "bc")` never share an encoding;
//! - that encoding is the codec's associated data: authenticated, not stored in the handle, so
//!   a handle sealed for Alice fails the integrity check when Bob presents it, whatever he
//!   changes;
//! - every handle expires ([`CallerBoundState::DEFAULT_TTL`], 15 minutes, or
//!   [`ttl`](CallerBoundState::ttl));
//! - `*_for` variants add a purpose (the tool, the originating request) to the associated
//!   data, so a handle minted by one tool cannot be replayed against another;
//! - every opening failure is one [`StateHandleError::Refused`] with one client-facing message
//!   (rmcp's codec asks for that); the precise reason is its [`source`](std::error::Error::source),
//!   for logs.
//!
//! Handles are signed, not encrypted: the payload is readable (base64url) by whoever holds the
//! handle. Keep secrets server-side and seal only a reference to them. A handle that must be
//! used at most once (a one-time redemption) still needs a server-side record.
//!
//! ```
//! use mcp_auth::AuthInfo;
//! use mcp_auth::integrations::rmcp::{CallerBoundState, StateHandleError};
//! use rmcp::model::RequestStateCodec;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One key for every replica, from your secret store (at least 32 bytes).
//! let codec = RequestStateCodec::try_new(b"0123456789abcdef0123456789abcdef".to_vec())?;
//! let handles = CallerBoundState::new(codec);
//!
//! let alice = AuthInfo::new("t1", "https://auth.example.com").with_subject("alice");
//! let bob = AuthInfo::new("t2", "https://auth.example.com").with_subject("bob");
//!
//! let handle = handles.seal_json(&alice, &serde_json::json!({"cart": 42}))?;
//! let cart: serde_json::Value = handles.open_json(&alice, &handle)?;
//! assert_eq!(cart["cart"], 42);
//!
//! // Bob holding Alice's handle gets nothing.
//! let refused = handles.open_json::<serde_json::Value>(&bob, &handle);
//! assert!(matches!(refused, Err(StateHandleError::Refused { .. })));
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use rmcp::model::{RequestStateCodec, RequestStateError, SealOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth_info::{AuthInfo, CredentialKind};
use crate::error::ConfigError;

/// The first bytes of every [`principal_context`]: names the encoding and its version.
const PRINCIPAL_LABEL: &[u8] = b"mcp-auth/state-principal/v1";

/// The longest handle [`CallerBoundState`] tries to open: 64 KiB. Longer ones are refused
/// before any decoding.
pub const MAX_HANDLE_BYTES: usize = 64 * 1024;

/// What a client is told about any handle that does not open (one message for every reason).
const REFUSED: &str = "the state handle is not valid for this caller: it was altered, has \
                       expired, or was issued to another user or client; start again without it";

/// Why a state handle could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateHandleError {
    /// The caller's [`AuthInfo`] has neither a subject nor a client id, so there is no
    /// principal to bind the handle to (every such caller of the issuer would share it).
    #[error(
        "the caller has neither a subject nor a client id, so a state handle cannot be bound to \
         it; have the authorization server put `sub` or `client_id` in its tokens, or keep this \
         state server-side"
    )]
    NoPrincipal,
    /// The handle did not open for this caller: forged, altered, expired, sealed with another
    /// key, sealed for another principal or purpose, too long, or not the expected JSON. The
    /// message is the same whatever the reason (tell clients nothing more); the
    /// [`source`](std::error::Error::source) says which, for logs.
    #[error("{REFUSED}")]
    Refused {
        /// The precise reason, for logs only.
        #[source]
        reason: RefusalReason,
    },
    /// The value to seal could not be serialized to JSON (a server bug: for example a map
    /// with non-string keys).
    #[error("the state could not be serialized to JSON: {0}; seal a value serde_json can write")]
    Serialization(#[source] serde_json::Error),
}

/// Why a handle was refused ([`StateHandleError::Refused`]'s source): for logs, never for the
/// client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Longer than [`MAX_HANDLE_BYTES`].
    #[error("the handle is {length} bytes long, more than the {MAX_HANDLE_BYTES} accepted")]
    TooLong {
        /// The handle's length in bytes.
        length: usize,
    },
    /// rmcp's codec refused it: malformed, bad tag (forged, altered, another principal or
    /// purpose, another key), unknown key id, or expired.
    #[error(transparent)]
    Codec(RequestStateError),
    /// It opened, but its payload is not the JSON the caller expected.
    #[error("the opened state is not the expected JSON: {0}")]
    Payload(#[source] serde_json::Error),
}

impl StateHandleError {
    fn refused(reason: RefusalReason) -> Self {
        tracing::debug!(%reason, "a state handle was refused");
        Self::Refused { reason }
    }
}

/// The JSON-RPC error a tool returns for a [`StateHandleError`]: `invalid_params` (-32602)
/// with the one refusal message for a handle that does not open, `internal_error` (-32603)
/// for the server-side problems.
impl From<StateHandleError> for rmcp::ErrorData {
    fn from(error: StateHandleError) -> Self {
        match error {
            StateHandleError::Refused { .. } => rmcp::ErrorData::invalid_params(REFUSED, None),
            other => {
                tracing::error!(error = %other, "a state handle could not be sealed or opened");
                rmcp::ErrorData::internal_error(other.to_string(), None)
            }
        }
    }
}

/// The bytes that identify the caller in a handle's associated data: a version label, the
/// credential kind, the issuer, the subject and the client id, each length-prefixed (an
/// absent subject or client id is told apart from an empty one).
///
/// [`CallerBoundState`] uses it; it is public for servers that bind state of their own (a
/// store key such as `<principal>:<handle>`, or rmcp's codec used directly).
///
/// # Errors
///
/// [`StateHandleError::NoPrincipal`] when the `AuthInfo` has neither a subject nor a client
/// id.
///
/// ```
/// use mcp_auth::AuthInfo;
/// use mcp_auth::integrations::rmcp::principal_context;
///
/// let ab_c = AuthInfo::new("t", "ab").with_subject("c");
/// let a_bc = AuthInfo::new("t", "a").with_subject("bc");
/// assert_ne!(principal_context(&ab_c)?, principal_context(&a_bc)?);
/// # Ok::<(), mcp_auth::integrations::rmcp::StateHandleError>(())
/// ```
pub fn principal_context(auth: &AuthInfo) -> Result<Vec<u8>, StateHandleError> {
    if auth.subject.is_none() && auth.client_id.is_none() {
        return Err(StateHandleError::NoPrincipal);
    }
    let mut out = Vec::with_capacity(
        PRINCIPAL_LABEL.len()
            + 64
            + auth.issuer.len()
            + auth.subject.as_ref().map_or(0, String::len)
            + auth.client_id.as_ref().map_or(0, String::len),
    );
    out.extend_from_slice(PRINCIPAL_LABEL);
    // Exhaustive: a new kind of credential must choose its own tag.
    out.push(match auth.credential {
        CredentialKind::OAuth => b'O',
        CredentialKind::ApiKey { .. } => b'K',
    });
    push_part(&mut out, Some(&auth.issuer));
    push_part(&mut out, auth.subject.as_deref());
    push_part(&mut out, auth.client_id.as_deref());
    Ok(out)
}

/// `0` for an absent part, else `1`, the length (8 bytes, big-endian) and the bytes.
fn push_part(out: &mut Vec<u8>, part: Option<&str>) {
    match part {
        None => out.push(0),
        Some(part) => {
            out.push(1);
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
}

/// The associated data of a handle: the principal, then the purpose, length-prefixed.
fn associated_data(auth: &AuthInfo, purpose: &[u8]) -> Result<Vec<u8>, StateHandleError> {
    let mut data = principal_context(auth)?;
    data.extend_from_slice(&(purpose.len() as u64).to_be_bytes());
    data.extend_from_slice(purpose);
    Ok(data)
}

/// Seals state into handles that open only for the caller they were sealed for, and only
/// before they expire: see the [module docs](self).
///
/// Cheap to clone; keep one in the MCP server's state, with the same key on every replica.
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::AuthInfo;
/// use mcp_auth::integrations::rmcp::CallerBoundState;
/// use rmcp::model::RequestStateCodec;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let codec = RequestStateCodec::try_new(b"0123456789abcdef0123456789abcdef".to_vec())?;
/// let handles = CallerBoundState::new(codec).ttl(Duration::from_secs(60))?;
/// let alice = AuthInfo::new("t", "https://auth.example.com").with_subject("alice");
///
/// // Bound to Alice and to the tool that minted it.
/// let handle = handles.seal_for(&alice, b"tools/call:checkout", b"cart=42")?;
/// assert_eq!(handles.open_for(&alice, b"tools/call:checkout", &handle)?, b"cart=42");
/// assert!(handles.open_for(&alice, b"tools/call:refund", &handle).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct CallerBoundState {
    codec: RequestStateCodec,
    ttl: Duration,
}

impl CallerBoundState {
    /// How long a handle opens by default: 15 minutes.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

    /// Handles sealed with `codec` (build it with `RequestStateCodec::try_new` or
    /// `new_with_keyring` for key rotation), valid for [`DEFAULT_TTL`](Self::DEFAULT_TTL).
    pub fn new(codec: RequestStateCodec) -> Self {
        Self {
            codec,
            ttl: Self::DEFAULT_TTL,
        }
    }

    /// How long a handle opens after it was sealed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] for zero: every handle would be expired when issued.
    pub fn ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        if ttl.is_zero() {
            return Err(ConfigError::ZeroSetting {
                setting: "ttl",
                advice: "it is how long a state handle opens after it was sealed; choose a \
                         duration the client needs to come back (the default is 15 minutes)",
            });
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// The lifetime of new handles.
    pub fn handle_ttl(&self) -> Duration {
        self.ttl
    }

    /// The codec underneath (for its key configuration).
    pub fn codec(&self) -> &RequestStateCodec {
        &self.codec
    }

    /// Seals `payload` for the caller `auth`.
    ///
    /// # Errors
    ///
    /// [`StateHandleError::NoPrincipal`] when `auth` names no subject and no client.
    pub fn seal(&self, auth: &AuthInfo, payload: &[u8]) -> Result<String, StateHandleError> {
        self.seal_for(auth, &[], payload)
    }

    /// Seals `payload` for the caller `auth` and for `purpose` (for example the tool name, or
    /// the method and a digest of the originating request's parameters): it opens only with the
    /// same purpose.
    ///
    /// # Errors
    ///
    /// [`StateHandleError::NoPrincipal`] when `auth` names no subject and no client.
    pub fn seal_for(
        &self,
        auth: &AuthInfo,
        purpose: &[u8],
        payload: &[u8],
    ) -> Result<String, StateHandleError> {
        let data = associated_data(auth, purpose)?;
        let options = SealOptions::new().associated_data(&data).ttl(self.ttl);
        Ok(self.codec.seal_with(payload, &options))
    }

    /// The payload of `handle`, if it was sealed for the caller `auth` (with no purpose) and
    /// has not expired.
    ///
    /// # Errors
    ///
    /// [`StateHandleError::Refused`] for any handle that does not open for `auth`;
    /// [`StateHandleError::NoPrincipal`] when `auth` names no subject and no client.
    pub fn open(&self, auth: &AuthInfo, handle: &str) -> Result<Vec<u8>, StateHandleError> {
        self.open_for(auth, &[], handle)
    }

    /// The payload of `handle`, if it was sealed for the caller `auth` and for `purpose`, and
    /// has not expired.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_for(
        &self,
        auth: &AuthInfo,
        purpose: &[u8],
        handle: &str,
    ) -> Result<Vec<u8>, StateHandleError> {
        let data = associated_data(auth, purpose)?;
        if handle.len() > MAX_HANDLE_BYTES {
            return Err(StateHandleError::refused(RefusalReason::TooLong {
                length: handle.len(),
            }));
        }
        self.codec
            .open_with(handle, &data)
            .map_err(|error| StateHandleError::refused(RefusalReason::Codec(error)))
    }

    /// Seals `value` as JSON for the caller `auth`.
    ///
    /// # Errors
    ///
    /// [`StateHandleError::Serialization`] when `value` cannot be written as JSON,
    /// [`StateHandleError::NoPrincipal`] as for [`seal`](Self::seal).
    pub fn seal_json<T: Serialize>(
        &self,
        auth: &AuthInfo,
        value: &T,
    ) -> Result<String, StateHandleError> {
        self.seal_json_for(auth, &[], value)
    }

    /// Seals `value` as JSON for the caller `auth` and for `purpose`.
    ///
    /// # Errors
    ///
    /// As [`seal_json`](Self::seal_json).
    pub fn seal_json_for<T: Serialize>(
        &self,
        auth: &AuthInfo,
        purpose: &[u8],
        value: &T,
    ) -> Result<String, StateHandleError> {
        let payload = serde_json::to_vec(value).map_err(StateHandleError::Serialization)?;
        self.seal_for(auth, purpose, &payload)
    }

    /// The JSON value sealed in `handle` for the caller `auth`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); a payload that is not a `T` is refused too.
    pub fn open_json<T: DeserializeOwned>(
        &self,
        auth: &AuthInfo,
        handle: &str,
    ) -> Result<T, StateHandleError> {
        self.open_json_for(auth, &[], handle)
    }

    /// The JSON value sealed in `handle` for the caller `auth` and for `purpose`.
    ///
    /// # Errors
    ///
    /// As [`open_json`](Self::open_json).
    pub fn open_json_for<T: DeserializeOwned>(
        &self,
        auth: &AuthInfo,
        purpose: &[u8],
        handle: &str,
    ) -> Result<T, StateHandleError> {
        let payload = self.open_for(auth, purpose, handle)?;
        serde_json::from_slice(&payload)
            .map_err(|error| StateHandleError::refused(RefusalReason::Payload(error)))
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
