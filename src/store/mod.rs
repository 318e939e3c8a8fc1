//! State shared by the replicas of one server: [`StateStore`], with [`MemoryStore`] (one
//! process, the default).
//!
//! Verification itself is stateless, but a few answers depend on what this server has seen
//! before: which principal created a session, a cached userinfo or introspection answer, a
//! DPoP proof's `jti` already used. Behind a load balancer without sticky sessions those
//! facts must be shared by every replica; [`StateStore`] is the small interface they are kept
//! behind:
//!
//! - [`insert_if_absent`](StateStore::insert_if_absent): the one atomic operation, for replay
//!   detection and session ownership ("the first to claim it wins");
//! - [`get`](StateStore::get) / [`set`](StateStore::set) with a time to live, for caches;
//! - [`delete`](StateStore::delete).
//!
//! # Keys and values
//!
//! A [`StateKey`] is a [`StateKind`] and the SHA-256 of the parts that identify the entry
//! (a token, a session id, a proof's `jti`): a store never sees a raw token or id, and every
//! key has the same size whatever the input. Values are bytes of at most
//! [`MAX_VALUE_BYTES`]; the crate never stores a raw token in them either. Every entry has a
//! time to live, which callers cap at the expiry of the token it was derived from.
//!
//! # Failure policy
//!
//! Every call is bounded in time by the store (a [`MemoryStore`] never waits). What a caller
//! does with a [`StoreError`] depends on the state: a check that protects something (replay,
//! session ownership) fails closed (503); a cache treats the error as a miss and asks the
//! authorization server (slower, still correct).
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::store::{MemoryStore, StateKey, StateKind, StateStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let key = StateKey::new(StateKind::DpopProof, &[b"https://as.example.com", b"proof-jti-1"]);
//! assert!(store.insert_if_absent(&key, b"", Duration::from_secs(60)).await?);
//! // The same jti a second time: already there, a replay.
//! assert!(!store.insert_if_absent(&key, b"", Duration::from_secs(60)).await?);
//! # Ok::<(), mcp_auth::store::StoreError>(())
//! # }).unwrap();
//! ```

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::time::Duration;

use aws_lc_rs::digest;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_NAMESPACE, RedisStore, RedisStoreBuilder,
};
pub use memory::{MemoryStore, MemoryStoreBuilder};

/// The largest value a store accepts (64 KiB): far above a cached [`AuthInfo`](crate::AuthInfo)
/// of a reasonable token, far below what could exhaust a shared store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// What a [`StateKey`] is the key of. Part of every key, so that two kinds never collide,
/// and of the key's text form (`<namespace>:<kind>:<hex digest>` in Redis), so that an
/// operator can tell entries apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StateKind {
    /// Which principal created an MCP session (`Mcp-Session-Id`).
    Session,
    /// A cached userinfo answer, keyed by the token's digest.
    Userinfo,
    /// A cached introspection answer, keyed by the token's digest.
    Introspection,
    /// A DPoP proof already used (RFC 9449 §11.1), keyed by the proof's `jti` and key.
    DpopProof,
    /// State of DPoP server nonces.
    DpopNonce,
}

impl StateKind {
    /// The kind's name in key texts and metrics: `session`, `userinfo`, `introspection`,
    /// `dpop_proof`, `dpop_nonce`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Session => "session",
            StateKind::Userinfo => "userinfo",
            StateKind::Introspection => "introspection",
            StateKind::DpopProof => "dpop_proof",
            StateKind::DpopNonce => "dpop_nonce",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of one entry: its [`StateKind`] and the SHA-256 of what identifies it.
///
/// [`StateKey::new`] hashes each part with its length in front, so `["ab", "c"]` and
/// `["a", "bc"]` are different keys.
///
/// ```
/// use mcp_auth::store::{StateKey, StateKind};
///
/// let a = StateKey::new(StateKind::Userinfo, &[b"token"]);
/// assert_eq!(a, StateKey::new(StateKind::Userinfo, &[b"token"]));
/// assert_ne!(a, StateKey::new(StateKind::Introspection, &[b"token"]));
/// assert_eq!(a.to_string().len(), "userinfo:".len() + 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateKey {
    kind: StateKind,
    digest: [u8; 32],
}

impl StateKey {
    /// The key of kind `kind` for the entry identified by `parts` (hashed, never kept).
    pub fn new(kind: StateKind, parts: &[&[u8]]) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(kind.as_str().as_bytes());
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        Self { kind, digest: out }
    }

    /// The key's kind.
    pub fn kind(&self) -> StateKind {
        self.kind
    }

    /// The SHA-256 digest that identifies the entry.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// `<kind>:<digest in lowercase hex>`; a store adds its namespace in front.
impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.kind)?;
        for byte in self.digest {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Only the kind and the first bytes of the digest: enough to tell keys apart in logs.
impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateKey({}:", self.kind)?;
        for byte in &self.digest[..4] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

/// Why a [`StateStore`] call did not complete. A caller never treats one as "absent": a
/// protective check answers 503, a cache asks the authorization server instead.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error(
        "the {store} state store did not answer within {timeout:?}; check that it is up and reachable"
    )]
    Timeout {
        /// The store's name (`memory`, `redis`).
        store: &'static str,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The store could not be reached or answered with an error.
    #[error("the {store} state store failed: {reason}")]
    Unavailable {
        /// The store's name (`memory`, `redis`).
        store: &'static str,
        /// What failed.
        reason: String,
    },
    /// The value is larger than [`MAX_VALUE_BYTES`]; nothing was stored.
    #[error("a {len}-byte value is over the {max} bytes a state store accepts")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// [`MAX_VALUE_BYTES`].
        max: usize,
    },
    /// A stored value could not be read back (corrupted, or written by another version).
    #[error("a value in the {store} state store could not be read: {reason}")]
    Corrupt {
        /// The store's name.
        store: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// The error for a value of `len` bytes if it is over [`MAX_VALUE_BYTES`].
    pub(crate) fn check_len(len: usize) -> Result<(), StoreError> {
        if len > MAX_VALUE_BYTES {
            return Err(StoreError::ValueTooLarge {
                len,
                max: MAX_VALUE_BYTES,
            });
        }
        Ok(())
    }
}

impl From<StoreError> for crate::VerifyError {
    /// A store that fails is an outage (503), never an invalid token.
    fn from(error: StoreError) -> Self {
        crate::VerifyError::unavailable(error)
    }
}

/// Where state shared by replicas is kept: see the [module documentation](self).
///
/// Implementations must bound every call in time, keep each entry no longer than its `ttl`,
/// and make [`insert_if_absent`](Self::insert_if_absent) atomic across every process that
/// shares the store. A `ttl` of zero stores nothing (an entry that would already be over);
/// `insert_if_absent` then answers `true`.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl` unless the key holds a live entry. `Ok(true)`
    /// when this call stored it, `Ok(false)` when the key was already there (left as it was).
    async fn insert_if_absent(
        &self,
        key: &StateKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// The live value under `key`, if any.
    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// The live value under `key`, if any, with its time to live reset to `ttl`: one step, for
    /// sliding expiry (a session forgotten after its idle timeout, counted from its last use).
    ///
    /// The default runs [`get`](Self::get) then [`set`](Self::set); stores with an atomic
    /// command for it ([`MemoryStore`], Redis's `GETEX`) override it.
    async fn get_and_refresh(
        &self,
        key: &StateKey,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.get(key).await?;
        if let Some(value) = &value {
            self.set(key, value, ttl).await?;
        }
        Ok(value)
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn set(&self, key: &StateKey, value: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// Removes the entry under `key`, if any.
    async fn delete(&self, key: &StateKey) -> Result<(), StoreError>;

    /// The store's name in logs, errors and metrics labels (`memory`, `redis`).
    fn name(&self) -> &'static str;
}

#[async_trait::async_trait]
impl<S: StateStore + ?Sized> StateStore for std::sync::Arc<S> {
    async fn insert_if_absent(
        &self,
        key: &StateKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        (**self).insert_if_absent(key, value, ttl).await
    }

    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }

    async fn get_and_refresh(
        &self,
        key: &StateKey,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get_and_refresh(key, ttl).await
    }

    async fn set(&self, key: &StateKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        (**self).set(key, value, ttl).await
    }

    async fn delete(&self, key: &StateKey) -> Result<(), StoreError> {
        (**self).delete(key).await
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_length_prefixed_so_shifting_bytes_changes_the_key() {
        let a = StateKey::new(StateKind::Session, &[b"ab", b"c"]);
        let b = StateKey::new(StateKind::Session, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn the_text_form_names_the_kind_and_the_whole_digest_and_debug_only_a_prefix() {
        let key = StateKey::new(StateKind::DpopProof, &[b"jti"]);
        let text = key.to_string();
        assert!(text.starts_with("dpop_proof:"), "{text}");
        assert_eq!(text.len(), "dpop_proof:".len() + 64);
        assert!(
            text["dpop_proof:".len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
        let debug = format!("{key:?}");
        assert!(debug.len() < 40, "{debug}");
        assert!(!debug.contains("jti"), "{debug}");
    }

    #[test]
    fn a_value_over_the_cap_is_refused_and_one_at_it_is_not() {
        assert!(StoreError::check_len(MAX_VALUE_BYTES).is_ok());
        assert!(matches!(
            StoreError::check_len(MAX_VALUE_BYTES + 1),
            Err(StoreError::ValueTooLarge { .. })
        ));
    }
}
