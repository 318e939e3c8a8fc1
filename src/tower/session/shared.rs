//! Session bindings in a shared [`StateStore`] (one per deployment, for every replica), used
//! instead of the in-memory table when [`SessionBindingBuilder::store`] is set.
//!
//! - creation: `insert_if_absent(session, principal digest, idle timeout)`: the first
//!   replica to record a session id owns it for everyone;
//! - a request in a session: `get_and_refresh(session, idle timeout)` and a comparison with
//!   the caller's principal digest (one store call, which also restarts the idle timer);
//! - an ended session (DELETE, or a 404 from the service): `delete`.
//!
//! Every store error fails closed: the request is answered 503 and never forwarded, and the
//! error is counted in `mcp_auth_session_store_errors_total{store}`.
//!
//! [`SessionBindingBuilder::store`]: super::SessionBindingBuilder::store

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::store::{PrincipalKey, SessionKey};
use crate::store::{StateKey, StateKind, StateStore, StoreError};
use crate::tower::plumbing::json_refusal;

/// What the shared store says of a session id presented by a principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SharedLookup {
    /// Bound to this principal (its idle timer restarted).
    Owner,
    /// Bound to another principal.
    OtherOwner,
    /// Not bound (never created, idle, ended).
    Unknown,
}

/// The session bindings of every replica, in one store.
#[derive(Clone)]
pub(super) struct SharedBindings {
    store: Arc<dyn StateStore>,
    idle_timeout: Duration,
}

impl SharedBindings {
    pub(super) fn new(store: Arc<dyn StateStore>, idle_timeout: Duration) -> Self {
        Self {
            store,
            idle_timeout,
        }
    }

    fn key(session: &SessionKey) -> StateKey {
        StateKey::new(StateKind::Session, &[session.bytes()])
    }

    /// Counts and logs a failed store call; the caller answers 503.
    fn failed(&self, error: &StoreError, doing: &'static str) {
        crate::metrics::session_store_error(self.store.name());
        tracing::error!(
            store = self.store.name(),
            %error,
            "the session store failed while {doing}; the request is answered 503"
        );
    }

    /// Who owns `session`, for a request by `principal`.
    pub(super) async fn lookup(
        &self,
        session: SessionKey,
        principal: PrincipalKey,
    ) -> Result<SharedLookup, StoreError> {
        let owner = self
            .store
            .get_and_refresh(&Self::key(&session), self.idle_timeout)
            .await
            .inspect_err(|error| self.failed(error, "looking up a session"))?;
        Ok(match owner {
            None => SharedLookup::Unknown,
            Some(owner) if owner.as_slice() == principal.bytes() => SharedLookup::Owner,
            Some(_) => SharedLookup::OtherOwner,
        })
    }

    /// Records that `principal` created `session`; `Ok(false)` when another principal had
    /// already claimed the id (it keeps it).
    pub(super) async fn bind(
        &self,
        session: SessionKey,
        principal: PrincipalKey,
    ) -> Result<bool, StoreError> {
        let key = Self::key(&session);
        let inserted = self
            .store
            .insert_if_absent(&key, principal.bytes(), self.idle_timeout)
            .await
            .inspect_err(|error| self.failed(error, "recording a new session"))?;
        if inserted {
            return Ok(true);
        }
        // Already there: the same principal's (a retried answer) or another's.
        match self.lookup(session, principal).await? {
            SharedLookup::Owner => Ok(true),
            SharedLookup::OtherOwner => Ok(false),
            // Expired in between: claim it again.
            SharedLookup::Unknown => self
                .store
                .insert_if_absent(&key, principal.bytes(), self.idle_timeout)
                .await
                .inspect_err(|error| self.failed(error, "recording a new session")),
        }
    }

    /// Forgets `session` (it ended at the service).
    pub(super) async fn end(&self, session: SessionKey) -> Result<(), StoreError> {
        self.store
            .delete(&Self::key(&session))
            .await
            .inspect_err(|error| self.failed(error, "forgetting an ended session"))
    }

    /// The store's name.
    pub(super) fn store_name(&self) -> &'static str {
        self.store.name()
    }
}

/// The answer when the session store fails: 503, so that no request in a session whose owner
/// cannot be checked reaches the service.
pub(super) fn unavailable() -> Response<Full<Bytes>> {
    let mut response = json_refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "The MCP session store is unreachable, so the session's owner cannot be checked; \
         retry shortly.",
    );
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}
