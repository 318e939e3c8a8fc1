//! [`MemoryStore`]: the state of one process, in memory (the default store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{StateKey, StateStore, StoreError};
use crate::error::ConfigError;

/// The default bound on a [`MemoryStore`]'s entries (100 000).
const DEFAULT_MAX_ENTRIES: u64 = 100_000;

#[derive(Clone)]
struct Stored {
    value: Arc<[u8]>,
    ttl: Duration,
}

/// Each entry lives the `ttl` it was stored with.
struct StoredTtl;

impl moka::Expiry<StateKey, Stored> for StoredTtl {
    fn expire_after_create(&self, _: &StateKey, stored: &Stored, _: Instant) -> Option<Duration> {
        Some(stored.ttl)
    }

    fn expire_after_update(
        &self,
        _: &StateKey,
        stored: &Stored,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(stored.ttl)
    }
}

/// A [`StateStore`] in this process's memory: what every replica keeps for itself when no
/// shared store is configured. Cloning it shares the entries.
///
/// Bounded to [`MemoryStoreBuilder::max_entries`] entries (default 100 000); past the bound
/// the least recently used entries make room. For replay detection, size the bound above the
/// number of proofs one replay window can hold, or an evicted `jti` could be used again.
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::store::{MemoryStore, StateKey, StateKind, StateStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::builder().max_entries(10_000).build()?;
/// let key = StateKey::new(StateKind::Userinfo, &[b"token"]);
/// store.set(&key, b"cached answer", Duration::from_secs(30)).await?;
/// assert_eq!(store.get(&key).await?.as_deref(), Some(&b"cached answer"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    entries: moka::future::Cache<StateKey, Stored>,
    max_entries: u64,
}

impl MemoryStore {
    /// A store with the default bound (100 000 entries).
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// Settings for a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    fn with_max_entries(max_entries: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(StoredTtl)
            .build();
        Self {
            entries,
            max_entries,
        }
    }

    /// How many entries the store holds (approximate while insertions are pending).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_entries", &self.max_entries)
            .field("entry_count", &self.entries.entry_count())
            .finish()
    }
}

/// Settings of a [`MemoryStore`], from [`MemoryStore::builder`].
#[derive(Debug, Clone)]
#[must_use = "call build() to get the store"]
pub struct MemoryStoreBuilder {
    max_entries: u64,
}

impl MemoryStoreBuilder {
    /// The most entries the store holds (default 100 000); the least recently used make room.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroSetting`] for `max_entries(0)`.
    pub fn build(self) -> Result<MemoryStore, ConfigError> {
        if self.max_entries == 0 {
            return Err(ConfigError::ZeroSetting {
                setting: "MemoryStoreBuilder::max_entries",
                advice: "a store that holds nothing would accept every replayed proof",
            });
        }
        Ok(MemoryStore::with_max_entries(self.max_entries))
    }
}

#[async_trait::async_trait]
impl StateStore for MemoryStore {
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
        let stored = Stored {
            value: Arc::from(value),
            ttl,
        };
        let entry = self
            .entries
            .entry(*key)
            .or_insert_with(async move { stored })
            .await;
        Ok(entry.is_fresh())
    }

    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .entries
            .get(key)
            .await
            .map(|stored| stored.value.to_vec()))
    }

    async fn get_and_refresh(
        &self,
        key: &StateKey,
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if ttl.is_zero() {
            let value = self.get(key).await?;
            self.entries.invalidate(key).await;
            return Ok(value);
        }
        // One step under the entry's lock: a concurrent delete is never undone.
        let result = self
            .entries
            .entry(*key)
            .and_compute_with(|entry| {
                let op = match entry {
                    Some(entry) => moka::ops::compute::Op::Put(Stored {
                        value: entry.into_value().value,
                        ttl,
                    }),
                    None => moka::ops::compute::Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(match result {
            moka::ops::compute::CompResult::ReplacedWith(entry) => {
                Some(entry.value().value.to_vec())
            }
            _ => None,
        })
    }

    async fn set(&self, key: &StateKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        StoreError::check_len(value.len())?;
        if ttl.is_zero() {
            self.entries.invalidate(key).await;
            return Ok(());
        }
        let stored = Stored {
            value: Arc::from(value),
            ttl,
        };
        self.entries.insert(*key, stored).await;
        Ok(())
    }

    async fn delete(&self, key: &StateKey) -> Result<(), StoreError> {
        self.entries.invalidate(key).await;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MAX_VALUE_BYTES, StateKind};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn key(name: &str) -> StateKey {
        StateKey::new(StateKind::DpopProof, &[name.as_bytes()])
    }

    #[test]
    fn the_first_insert_wins_and_the_second_leaves_the_value_alone() {
        block_on(async {
            let store = MemoryStore::new();
            let ttl = Duration::from_secs(60);
            assert!(
                store
                    .insert_if_absent(&key("a"), b"one", ttl)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .insert_if_absent(&key("a"), b"two", ttl)
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.get(&key("a")).await.unwrap().as_deref(),
                Some(&b"one"[..])
            );
            assert!(store.insert_if_absent(&key("b"), b"", ttl).await.unwrap());
        });
    }

    #[test]
    fn concurrent_inserts_of_one_key_have_exactly_one_winner() {
        block_on(async {
            let store = MemoryStore::new();
            let attempts = (0..64).map(|_| {
                let store = store.clone();
                async move {
                    store
                        .insert_if_absent(&key("race"), b"", Duration::from_secs(60))
                        .await
                        .unwrap()
                }
            });
            let wins = futures_util::future::join_all(attempts)
                .await
                .into_iter()
                .filter(|won| *won)
                .count();
            assert_eq!(wins, 1);
        });
    }

    #[test]
    fn an_entry_is_gone_after_its_ttl_and_the_key_can_be_claimed_again() {
        block_on(async {
            let store = MemoryStore::new();
            let ttl = Duration::from_millis(50);
            assert!(store.insert_if_absent(&key("t"), b"x", ttl).await.unwrap());
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert_eq!(store.get(&key("t")).await.unwrap(), None);
            assert!(store.insert_if_absent(&key("t"), b"y", ttl).await.unwrap());
        });
    }

    #[test]
    fn set_replaces_and_delete_removes_and_a_zero_ttl_stores_nothing() {
        block_on(async {
            let store = MemoryStore::new();
            let ttl = Duration::from_secs(60);
            store.set(&key("s"), b"1", ttl).await.unwrap();
            store.set(&key("s"), b"2", ttl).await.unwrap();
            assert_eq!(
                store.get(&key("s")).await.unwrap().as_deref(),
                Some(&b"2"[..])
            );
            store.delete(&key("s")).await.unwrap();
            assert_eq!(store.get(&key("s")).await.unwrap(), None);
            store.set(&key("z"), b"1", Duration::ZERO).await.unwrap();
            assert_eq!(store.get(&key("z")).await.unwrap(), None);
            assert!(
                store
                    .insert_if_absent(&key("z"), b"", Duration::ZERO)
                    .await
                    .unwrap()
            );
            assert_eq!(store.get(&key("z")).await.unwrap(), None);
        });
    }

    #[test]
    fn a_value_over_the_cap_is_refused_not_stored() {
        block_on(async {
            let store = MemoryStore::new();
            let big = vec![0u8; MAX_VALUE_BYTES + 1];
            let ttl = Duration::from_secs(60);
            assert!(matches!(
                store.set(&key("big"), &big, ttl).await,
                Err(StoreError::ValueTooLarge { .. })
            ));
            assert!(matches!(
                store.insert_if_absent(&key("big"), &big, ttl).await,
                Err(StoreError::ValueTooLarge { .. })
            ));
            assert_eq!(store.get(&key("big")).await.unwrap(), None);
        });
    }

    #[test]
    fn get_and_refresh_extends_a_live_entry_and_leaves_a_missing_one_missing() {
        block_on(async {
            let store = MemoryStore::new();
            store
                .set(&key("r"), b"v", Duration::from_millis(150))
                .await
                .unwrap();
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(60)).await;
                let value = store
                    .get_and_refresh(&key("r"), Duration::from_millis(150))
                    .await
                    .unwrap();
                assert_eq!(value.as_deref(), Some(&b"v"[..]));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(store.get(&key("r")).await.unwrap(), None);
            let missing = store
                .get_and_refresh(&key("m"), Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(missing, None);
            assert_eq!(store.get(&key("m")).await.unwrap(), None);
        });
    }

    #[test]
    fn zero_entries_is_refused_at_build() {
        assert!(matches!(
            MemoryStore::builder().max_entries(0).build(),
            Err(ConfigError::ZeroSetting { .. })
        ));
    }
}
