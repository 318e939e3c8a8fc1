//! The binding store: who created each session, bounded in number and forgotten after an
//! idle timeout (in memory, per layer).

use std::sync::Arc;

use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::SessionBinding;
use crate::auth_info::AuthInfo;

/// Who created a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) issuer: String,
    pub(super) subject: Option<String>,
    pub(super) client_id: Option<String>,
}

impl Owner {
    pub(super) fn of(info: &AuthInfo) -> Self {
        Self {
            issuer: info.issuer.clone(),
            subject: info.subject.clone(),
            client_id: info.client_id.clone(),
        }
    }
}

/// The sessions seen, shared by every service a layer makes.
#[derive(Clone)]
pub(super) struct Registry {
    pub(super) owners: Cache<String, Arc<Owner>>,
    pub(super) forward_unknown: bool,
}

impl Registry {
    pub(super) fn new(settings: &SessionBinding) -> Self {
        let owners = Cache::builder()
            .max_capacity(settings.max_sessions)
            .time_to_idle(settings.idle_timeout)
            // LRU: a new session is always admitted, evicting the least recently used one
            // (TinyLFU could refuse to admit it, and its creator would get 404 at once).
            .eviction_policy(EvictionPolicy::lru())
            .build();
        Self {
            owners,
            forward_unknown: settings.forward_unknown,
        }
    }

    /// Records `owner` for `session` unless someone already owns it.
    pub(super) async fn bind(&self, session: String, owner: Arc<Owner>) {
        let entry = self.owners.entry(session).or_insert(owner.clone()).await;
        if !entry.is_fresh() && entry.value() != &owner {
            tracing::warn!(
                "the MCP service answered with the id of a session another caller owns; the \
                 first owner keeps it"
            );
        }
    }
}
