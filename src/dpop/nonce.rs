//! Server-provided DPoP nonces (RFC 9449 §8) without shared state: a nonce is the index of a
//! time window and an HMAC-SHA-256 of it under a secret, so every replica holding the same
//! secret issues and accepts the same nonces. The current and the previous window are
//! accepted, so a nonce lives between one and two windows.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::{hmac, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ConfigError;

/// Default nonce window: 5 minutes.
pub const DEFAULT_NONCE_WINDOW: Duration = Duration::from_secs(300);
/// Shortest nonce window accepted: 10 seconds.
pub const MIN_NONCE_WINDOW: Duration = Duration::from_secs(10);
/// Longest nonce window accepted: 1 hour.
pub const MAX_NONCE_WINDOW: Duration = Duration::from_secs(3600);

/// Bytes of the HMAC kept in a nonce.
const TAG_LEN: usize = 16;

/// How the guard issues and checks DPoP server nonces ([`DpopConfigBuilder::nonces`](crate::dpop::DpopConfigBuilder::nonces)).
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::dpop::NonceConfig;
///
/// // Replicas given the same secret accept each other's nonces.
/// let nonces = NonceConfig::new().secret([7u8; 32]).window(Duration::from_secs(120));
/// # let _ = nonces;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct NonceConfig {
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) window: Option<Duration>,
}

impl fmt::Debug for NonceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("window", &self.window)
            .finish()
    }
}

impl NonceConfig {
    /// Nonces with a random secret (this process only) and the default 5-minute window.
    pub fn new() -> Self {
        Self::default()
    }

    /// The HMAC secret, at least 32 bytes. Default: 32 random bytes, which only this process
    /// knows; give every replica the same secret so they accept each other's nonces.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// How long one nonce window lasts; a nonce is accepted in its window and the next.
    /// Default: 5 minutes ([`DEFAULT_NONCE_WINDOW`]); between 10 s and 1 hour.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }
}

/// The first [`TAG_LEN`] bytes of an HMAC-SHA-256 tag (32 bytes, so never short).
fn truncated(tag: &hmac::Tag) -> &[u8] {
    let tag = tag.as_ref();
    tag.get(..TAG_LEN).unwrap_or(tag)
}

/// The checked nonce settings of a guard.
#[derive(Clone)]
pub(crate) struct Nonces {
    key: hmac::Key,
    window_secs: u64,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    pub(crate) fn from_config(config: NonceConfig) -> Result<Self, ConfigError> {
        let window = config.window.unwrap_or(DEFAULT_NONCE_WINDOW);
        if !(MIN_NONCE_WINDOW..=MAX_NONCE_WINDOW).contains(&window) {
            return Err(ConfigError::DpopNonceWindow {
                window,
                min: MIN_NONCE_WINDOW,
                max: MAX_NONCE_WINDOW,
            });
        }
        let secret = match config.secret {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::DpopNonceSecretTooShort { len: secret.len() });
            }
            Some(secret) => secret,
            None => {
                let mut secret = vec![0u8; 32];
                rand::fill(&mut secret).map_err(|_| ConfigError::DpopRandomUnavailable)?;
                secret
            }
        };
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            window_secs: window.as_secs(),
        })
    }

    fn window_of(&self, now: i64) -> u64 {
        u64::try_from(now).unwrap_or(0) / self.window_secs.max(1)
    }

    fn tag(&self, window: u64) -> hmac::Tag {
        let mut message = b"mcp-auth dpop nonce ".to_vec();
        message.extend_from_slice(&window.to_be_bytes());
        hmac::sign(&self.key, &message)
    }

    /// The nonce of the window `now` (seconds since the epoch) falls in.
    pub(crate) fn issue(&self, now: i64) -> String {
        let window = self.window_of(now);
        let mut raw = window.to_be_bytes().to_vec();
        raw.extend_from_slice(truncated(&self.tag(window)));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is this secret's nonce of the current or the previous window.
    pub(crate) fn accepts(&self, nonce: &str, now: i64) -> bool {
        if nonce.len() > 64 {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let (Some(window), Some(tag)) = (raw.get(..8), raw.get(8..)) else {
            return false;
        };
        let Ok(window) = <[u8; 8]>::try_from(window) else {
            return false;
        };
        let window = u64::from_be_bytes(window);
        let current = self.window_of(now);
        if window != current && window.saturating_add(1) != current {
            return false;
        }
        let expected = self.tag(window);
        tag.len() == TAG_LEN
            && aws_lc_rs::constant_time::verify_slices_are_equal(tag, truncated(&expected)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(secret: u8, window: u64) -> Nonces {
        Nonces::from_config(
            NonceConfig::new()
                .secret([secret; 32])
                .window(Duration::from_secs(window)),
        )
        .unwrap()
    }

    #[test]
    fn a_nonce_is_accepted_in_its_window_and_the_next_only() {
        let n = nonces(1, 60);
        let t = 6_000; // start of window 100
        let nonce = n.issue(t);
        assert!(n.accepts(&nonce, t));
        assert!(n.accepts(&nonce, t + 59));
        assert!(n.accepts(&nonce, t + 119));
        assert!(!n.accepts(&nonce, t + 120));
        assert!(!n.accepts(&nonce, t - 1));
        assert_ne!(n.issue(t), n.issue(t + 60), "the nonce rotates");
    }

    #[test]
    fn replicas_with_the_same_secret_agree_and_others_do_not() {
        let (a, b, other) = (nonces(1, 60), nonces(1, 60), nonces(2, 60));
        let nonce = a.issue(10_000);
        assert!(b.accepts(&nonce, 10_000));
        assert!(!other.accepts(&nonce, 10_000));
    }

    #[test]
    fn garbage_nonces_are_refused() {
        let n = nonces(1, 60);
        for bad in ["", "abc", "!!!!", &"A".repeat(100)] {
            assert!(!n.accepts(bad, 6_000), "{bad}");
        }
        // Another tag for the same window: flip the first tag byte.
        let mut raw = URL_SAFE_NO_PAD.decode(n.issue(6_000)).unwrap();
        raw[8] ^= 1;
        assert!(!n.accepts(&URL_SAFE_NO_PAD.encode(&raw), 6_000));
        // A nonce of a window in the future is refused too.
        assert!(!n.accepts(&n.issue(6_060), 6_000));
    }

    #[test]
    fn bad_settings_are_config_errors() {
        assert!(matches!(
            Nonces::from_config(NonceConfig::new().secret([1u8; 8])),
            Err(ConfigError::DpopNonceSecretTooShort { len: 8 })
        ));
        assert!(matches!(
            Nonces::from_config(NonceConfig::new().window(Duration::from_secs(1))),
            Err(ConfigError::DpopNonceWindow { .. })
        ));
        assert!(Nonces::from_config(NonceConfig::new()).is_ok());
    }
}
