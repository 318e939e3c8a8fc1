//! [`RedisStore`]: state shared by replicas in Redis (feature `redis`).
//!
//! Built on the `redis` crate (redis-rs) and its Tokio [`ConnectionManager`]: one multiplexed
//! connection per store, reconnected in the background when the server goes away, so a
//! restarted Redis heals without restarting the application.
//!
//! [`ConnectionManager`]: ::redis::aio::ConnectionManager

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Value};

use super::{StateKey, StateStore, StoreError};
use crate::error::ConfigError;

/// The default key namespace: `mcp-auth`.
pub const DEFAULT_NAMESPACE: &str = "mcp-auth";
/// The default bound on one call, connection included: 500 ms.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// The default bound on one connection attempt: 1 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const NAME: &str = "redis";
const MAX_NAMESPACE_LEN: usize = 64;

/// A [`StateStore`] in Redis, shared by every replica that uses the same server and
/// namespace. Cloning it shares the connection.
///
/// - keys are `<namespace>:<kind>:<hex SHA-256>` ([`StateKey`]'s text after the namespace):
///   never a raw token or session id;
/// - [`insert_if_absent`](StateStore::insert_if_absent) is `SET key value NX PX ttl`, atomic
///   across every replica; [`get_and_refresh`](StateStore::get_and_refresh) is `GETEX key PX
///   ttl` (Redis 6.2 or later);
/// - every call is bounded by the [call timeout](RedisStoreBuilder::call_timeout) (500 ms by
///   default), connecting included, and answers [`StoreError::Timeout`] past it; a refused or
///   dropped connection is [`StoreError::Unavailable`]. Neither ever panics; the connection
///   is re-established in the background and the next call after Redis is back succeeds.
///
/// ```no_run
/// use std::time::Duration;
/// use mcp_auth::store::{RedisStore, StateKey, StateKind, StateStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .namespace("my-mcp-server")
///     .call_timeout(Duration::from_millis(200))
///     .build()?;
/// let key = StateKey::new(StateKind::DpopProof, &[b"proof-jti"]);
/// assert!(store.insert_if_absent(&key, b"", Duration::from_secs(60)).await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    namespace: String,
    call_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Settings for a store on the server at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` for TLS when redis-rs is built with a TLS feature).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn key(&self, key: &StateKey) -> String {
        format!("{}:{key}", self.namespace)
    }

    /// Runs `command` within the call timeout and maps every failure to a [`StoreError`].
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        command: &::redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.call_timeout, command.query_async(&mut connection)).await {
            Err(_) => Err(StoreError::Timeout {
                store: NAME,
                timeout: self.call_timeout,
            }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.error(&error)),
        }
    }

    fn error(&self, error: &RedisError) -> StoreError {
        use ::redis::ErrorKind;
        if error.is_timeout() {
            return StoreError::Timeout {
                store: NAME,
                timeout: self.call_timeout,
            };
        }
        match error.kind() {
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt {
                store: NAME,
                reason: error.to_string(),
            },
            _ => StoreError::Unavailable {
                store: NAME,
                reason: error.to_string(),
            },
        }
    }
}

/// Redis's `PX` takes whole milliseconds, at least 1: round up, never down to "no expiry".
fn millis(ttl: Duration) -> u64 {
    let ms = ttl.as_millis().max(1);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Settings of a [`RedisStore`], from [`RedisStore::builder`].
#[derive(Clone)]
#[must_use = "call build() to get the store"]
pub struct RedisStoreBuilder {
    url: String,
    namespace: String,
    call_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("namespace", &self.namespace)
            .field("call_timeout", &self.call_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default [`DEFAULT_NAMESPACE`], `mcp-auth`). Servers that must
    /// not share state (two deployments on one Redis) use different namespaces; replicas of
    /// one server use the same. 1 to 64 ASCII letters, digits, `-`, `_`, `.` or `:`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest one call may take, waiting for a connection included (default
    /// [`DEFAULT_CALL_TIMEOUT`], 500 ms). Past it the call answers [`StoreError::Timeout`]:
    /// a session check then answers 503, a cache asks the authorization server. Keep it short:
    /// every request waits for it while Redis is unreachable.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default [`DEFAULT_CONNECT_TIMEOUT`], 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The store. It connects in the background, so a Redis that is down at start-up only
    /// makes the first calls fail; it must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRedisUrl`] for a URL redis-rs refuses,
    /// [`ConfigError::InvalidStoreNamespace`], [`ConfigError::ZeroSetting`] for a zero timeout,
    /// [`ConfigError::NoTokioRuntime`] outside a runtime.
    pub fn build(self) -> Result<RedisStore, ConfigError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if self.namespace.is_empty()
            || self.namespace.len() > MAX_NAMESPACE_LEN
            || !self.namespace.chars().all(valid)
        {
            return Err(ConfigError::InvalidStoreNamespace {
                namespace: self.namespace,
            });
        }
        for (setting, value) in [
            ("RedisStoreBuilder::call_timeout", self.call_timeout),
            ("RedisStoreBuilder::connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroSetting {
                    setting,
                    advice: "every Redis call would time out at once",
                });
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoTokioRuntime { what: "RedisStore" });
        }
        let client =
            Client::open(self.url.as_str()).map_err(|error| ConfigError::InvalidRedisUrl {
                reason: error.to_string(),
            })?;
        // Few, quick retries: a call never waits longer than its timeout anyway, and the next
        // call after a failed attempt starts a new one.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.call_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|error| {
                ConfigError::InvalidRedisUrl {
                    reason: error.to_string(),
                }
            })?;
        Ok(RedisStore {
            connection,
            namespace: self.namespace,
            call_timeout: self.call_timeout,
        })
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStore {
    async fn insert_if_absent(
        &self,
        key: &StateKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        StoreError::check_len(value.len())?;
        if ttl.is_zero() {
            return Ok(true);
        }
        let mut command = ::redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        // `OK` when set, nil when the key was there.
        let reply: Value = self.run(&command).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = ::redis::cmd("GET");
        command.arg(self.key(key));
        self.run(&command).await
    }

    async fn get_and_refresh(
        &self,
        key: &StateKey,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = ::redis::cmd("GETEX");
        command.arg(self.key(key));
        if ttl.is_zero() {
            // GETEX has no "expire now"; GETDEL reads and removes in one step.
            command = ::redis::cmd("GETDEL");
            command.arg(self.key(key));
        } else {
            command.arg("PX").arg(millis(ttl));
        }
        self.run(&command).await
    }

    async fn set(&self, key: &StateKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        StoreError::check_len(value.len())?;
        if ttl.is_zero() {
            return self.delete(key).await;
        }
        let mut command = ::redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl));
        let _: Value = self.run(&command).await?;
        Ok(())
    }

    async fn delete(&self, key: &StateKey) -> Result<(), StoreError> {
        let mut command = ::redis::cmd("DEL");
        command.arg(self.key(key));
        let _: Value = self.run(&command).await?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_never_to_zero() {
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn bad_settings_are_refused_at_build() {
        // Outside a runtime first: the namespace and URL are checked before it.
        assert!(matches!(
            RedisStore::builder("redis://127.0.0.1")
                .namespace("")
                .build(),
            Err(ConfigError::InvalidStoreNamespace { .. })
        ));
        assert!(matches!(
            RedisStore::builder("redis://127.0.0.1")
                .namespace("has space")
                .build(),
            Err(ConfigError::InvalidStoreNamespace { .. })
        ));
        assert!(matches!(
            RedisStore::builder("redis://127.0.0.1")
                .call_timeout(Duration::ZERO)
                .build(),
            Err(ConfigError::ZeroSetting { .. })
        ));
        assert!(matches!(
            RedisStore::builder("redis://127.0.0.1").build(),
            Err(ConfigError::NoTokioRuntime { .. })
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        assert!(matches!(
            RedisStore::builder("http://not-redis").build(),
            Err(ConfigError::InvalidRedisUrl { .. })
        ));
        let store = RedisStore::builder("redis://127.0.0.1:1").build().unwrap();
        assert_eq!(store.namespace(), DEFAULT_NAMESPACE);
    }

    #[test]
    fn an_unreachable_server_is_an_error_within_the_timeout_never_a_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Port 1 on loopback: nothing listens there.
            let store = RedisStore::builder("redis://127.0.0.1:1")
                .call_timeout(Duration::from_millis(200))
                .build()
                .unwrap();
            let key = StateKey::new(super::super::StateKind::Session, &[b"s"]);
            let error = store.get(&key).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    StoreError::Unavailable { .. } | StoreError::Timeout { .. }
                ),
                "{error:?}"
            );
        });
    }
}
