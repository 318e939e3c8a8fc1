//! The binding store: which principal created each session, in memory, per layer.
//!
//! Keys are digests (the first 16 bytes of SHA-256): of the session id, and of the principal
//! (issuer, subject, client id). A binding costs the same whatever the length of the id or of
//! the claims, and the store holds neither ids nor identities.
//!
//! Bookkeeping, all under one lock, in the request's own call (no background task):
//! - a binding is made only for a session the MCP service created in answer to that principal
//!   (a `2xx` carrying `Mcp-Session-Id` to a request without one) or, when forwarding unknown
//!   sessions, for an id this layer has never bound that the service accepted;
//! - a principal holds at most `max_sessions_per_principal` bindings: a new one beyond it
//!   forgets **that principal's** least recently used one, never another principal's;
//! - the store holds at most `max_sessions`: a new binding beyond it forgets the least
//!   recently used one (with the per-principal cap, filling it takes many principals);
//! - a binding unused for `idle_timeout` is forgotten;
//! - when forwarding unknown sessions, every forgotten id becomes a tombstone (see
//!   `tombstones`), and a tombstoned id is refused, never forwarded nor bound again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;

use super::SessionBinding;
use super::tombstones::Tombstones;
use crate::auth_info::AuthInfo;

/// 16 bytes of a SHA-256 digest: collisions are out of reach (2^-64 at 2^32 ids), and a
/// collision could only refuse, or tie two ids of which the MCP service issued both.
type Digest16 = [u8; 16];

fn digest16(parts: &[&[u8]]) -> Digest16 {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 16];
    for (out, byte) in out.iter_mut().zip(context.finish().as_ref()) {
        *out = *byte;
    }
    out
}

/// A session id, as its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct SessionKey(Digest16);

impl SessionKey {
    /// The key of the session id `id` (the header value's bytes).
    pub(super) fn of(id: &[u8]) -> Self {
        Self(digest16(&[id]))
    }

    /// The digest's bytes (for a shared store's key).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The two 64-bit halves of the digest (for the tombstones' probes).
    pub(super) fn halves(&self) -> (u64, u64) {
        let mut low = [0u8; 8];
        let mut high = [0u8; 8];
        let (a, b) = self.0.split_at(8);
        low.copy_from_slice(a);
        high.copy_from_slice(b);
        (u64::from_le_bytes(low), u64::from_le_bytes(high))
    }
}

/// Who created a session: the token's issuer, subject and client id, as a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PrincipalKey(Digest16);

impl PrincipalKey {
    /// The digest's bytes (a shared store's value).
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(super) fn of(info: &AuthInfo) -> Self {
        // Each part is length-prefixed, and an absent part is told from an empty one, so that
        // no two principals share an encoding.
        let issuer = info.issuer.as_bytes();
        let issuer_len = (issuer.len() as u64).to_be_bytes();
        let mut parts: Vec<&[u8]> = vec![&issuer_len, issuer];
        let subject_len;
        let client_len;
        match &info.subject {
            Some(subject) => {
                subject_len = (subject.len() as u64).to_be_bytes();
                parts.extend([b"S".as_slice(), &subject_len, subject.as_bytes()]);
            }
            None => parts.push(b"s"),
        }
        match &info.client_id {
            Some(client) => {
                client_len = (client.len() as u64).to_be_bytes();
                parts.extend([b"C".as_slice(), &client_len, client.as_bytes()]);
            }
            None => parts.push(b"c"),
        }
        Self(digest16(&parts))
    }
}

/// What the store knows of a session id presented by a principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Bound to this principal (and now the most recently used).
    Owner,
    /// Bound to another principal.
    OtherOwner,
    /// Bound here once, forgotten since (only known when forwarding unknown sessions).
    Forgotten,
    /// Never bound here (or forgotten, when not forwarding).
    Unknown,
}

/// How a binding came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The MCP service created the session in answer to this principal.
    Created,
    /// Forwarding: an id created elsewhere, first presented here by this principal.
    FirstSeen,
}

/// What [`Table::bind`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bound {
    /// A new binding.
    New,
    /// Already bound to this principal.
    Already,
    /// Bound to another principal, who keeps it.
    OtherOwner,
    /// A tombstoned id presented again: not bound.
    Forgotten,
}

/// Why a binding was forgotten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    /// The session ended at the MCP service (DELETE, or a 404 from it).
    Ended,
    Idle,
    /// Its principal opened one more than its cap.
    PrincipalCap,
    /// The store was full.
    Capacity,
}

struct Binding {
    principal: PrincipalKey,
    last_used: Instant,
    /// Position in [`Table::recency`]; larger is more recent.
    seq: u64,
}

/// The bindings, their order of use and their principals (not synchronised: see [`Registry`]).
pub(super) struct Table {
    max_sessions: usize,
    per_principal: usize,
    idle_timeout: Duration,
    bindings: HashMap<SessionKey, Binding>,
    /// Least recently used first.
    recency: BTreeMap<u64, SessionKey>,
    /// Each principal's sessions (at most `per_principal`, so scanning them is cheap).
    principals: HashMap<PrincipalKey, Vec<SessionKey>>,
    next_seq: u64,
    /// `Some` when forwarding unknown sessions.
    tombstones: Option<Tombstones>,
    warned_full: bool,
}

impl Table {
    pub(super) fn new(settings: &SessionBinding) -> Self {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            max_sessions: size(settings.max_sessions),
            per_principal: size(settings.max_sessions_per_principal),
            idle_timeout: settings.idle_timeout,
            bindings: HashMap::new(),
            recency: BTreeMap::new(),
            principals: HashMap::new(),
            next_seq: 0,
            tombstones: settings
                .forward_unknown
                .then(|| Tombstones::new(settings.tombstone_capacity)),
            warned_full: false,
        }
    }

    /// What is known of `session` presented by `principal` at `now`; a session of its own is
    /// marked as used.
    pub(super) fn lookup(
        &mut self,
        session: &SessionKey,
        principal: &PrincipalKey,
        now: Instant,
    ) -> Lookup {
        self.expire(now);
        match self.bindings.get(session) {
            Some(binding) if binding.principal == *principal => {
                self.touch(session, now);
                Lookup::Owner
            }
            Some(_) => Lookup::OtherOwner,
            None if self.is_tombstone(session) => Lookup::Forgotten,
            None => Lookup::Unknown,
        }
    }

    /// Binds `session` to `principal`, unless another principal holds it or (first seen) it
    /// was forgotten, making room under both caps first.
    pub(super) fn bind(
        &mut self,
        session: SessionKey,
        principal: PrincipalKey,
        origin: Origin,
        now: Instant,
    ) -> Bound {
        self.expire(now);
        if let Some(binding) = self.bindings.get(&session) {
            if binding.principal != principal {
                return Bound::OtherOwner;
            }
            self.touch(&session, now);
            return Bound::Already;
        }
        // A session the service has just created for this principal is bound even if its id
        // was forgotten before (or collides with a tombstone): the service vouches for it. An id
        // merely presented again is not.
        if origin == Origin::FirstSeen && self.is_tombstone(&session) {
            return Bound::Forgotten;
        }
        let own = self.principals.get(&principal);
        if own.is_some_and(|own| own.len() >= self.per_principal) {
            let oldest = own.and_then(|own| {
                own.iter()
                    .filter_map(|key| Some((self.bindings.get(key)?.seq, *key)))
                    .min_by_key(|(seq, _)| *seq)
            });
            if let Some((_, oldest)) = oldest {
                self.forget(&oldest, Reason::PrincipalCap);
            }
        }
        if self.bindings.len() >= self.max_sessions {
            if !self.warned_full {
                self.warned_full = true;
                tracing::warn!(
                    max_sessions = self.max_sessions,
                    "the session binding is full: each new session now forgets the least \
                     recently used one (its next request gets 404); raise \
                     SessionBindingBuilder::max_sessions if this server has that many users"
                );
            }
            if let Some((_, lru)) = self.recency.first_key_value() {
                let lru = *lru;
                self.forget(&lru, Reason::Capacity);
            }
        }
        let seq = self.next_seq();
        self.recency.insert(seq, session);
        self.principals.entry(principal).or_default().push(session);
        self.bindings.insert(
            session,
            Binding {
                principal,
                last_used: now,
                seq,
            },
        );
        Bound::New
    }

    /// Forgets `session` because it ended at the MCP service; a no-op for an unbound id (so
    /// that ids nobody bound never fill the tombstones).
    pub(super) fn end(&mut self, session: &SessionKey, now: Instant) {
        self.expire(now);
        self.forget(session, Reason::Ended);
    }

    /// Bindings held.
    pub(super) fn len(&self) -> usize {
        self.bindings.len()
    }

    fn is_tombstone(&self, session: &SessionKey) -> bool {
        self.tombstones
            .as_ref()
            .is_some_and(|tombstones| tombstones.contains(session))
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    fn touch(&mut self, session: &SessionKey, now: Instant) {
        let seq = self.next_seq();
        if let Some(binding) = self.bindings.get_mut(session) {
            self.recency.remove(&binding.seq);
            binding.seq = seq;
            binding.last_used = now;
            self.recency.insert(seq, *session);
        }
    }

    /// Forgets the bindings unused for the idle timeout: the least recently used come first,
    /// so this stops at the first one still in use.
    fn expire(&mut self, now: Instant) {
        while let Some((_, lru)) = self.recency.first_key_value() {
            let lru = *lru;
            let idle = self
                .bindings
                .get(&lru)
                .is_none_or(|b| now.saturating_duration_since(b.last_used) >= self.idle_timeout);
            if !idle {
                break;
            }
            self.forget(&lru, Reason::Idle);
        }
    }

    fn forget(&mut self, session: &SessionKey, reason: Reason) {
        let Some(binding) = self.bindings.remove(session) else {
            return;
        };
        self.recency.remove(&binding.seq);
        if let Some(own) = self.principals.get_mut(&binding.principal) {
            own.retain(|key| key != session);
            if own.is_empty() {
                self.principals.remove(&binding.principal);
            }
        }
        if let Some(tombstones) = &mut self.tombstones {
            tombstones.insert(session);
        }
        match reason {
            Reason::Ended => {}
            Reason::Idle => crate::metrics::session_evicted("idle"),
            Reason::PrincipalCap => crate::metrics::session_evicted("principal_cap"),
            Reason::Capacity => crate::metrics::session_evicted("capacity"),
        }
        tracing::debug!(?reason, "forgot an MCP session binding");
    }
}

/// The store shared by every service a layer makes.
#[derive(Clone)]
pub(super) struct Registry {
    table: Arc<Mutex<Table>>,
    pub(super) forward_unknown: bool,
}

impl Registry {
    pub(super) fn new(settings: &SessionBinding) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table::new(settings))),
            forward_unknown: settings.forward_unknown,
        }
    }

    /// Runs `f` on the table at the current instant, read under the lock so that instants
    /// grow with the order of use. A panic cannot leave the table half-changed (no code under
    /// the lock panics), so a poisoned lock is taken over.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Table, Instant) -> T) -> T {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut table, Instant::now())
    }

    /// Bindings held.
    pub(super) fn len(&self) -> usize {
        self.with(|table, _| table.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(
        configure: fn(super::super::SessionBindingBuilder) -> super::super::SessionBindingBuilder,
    ) -> Table {
        Table::new(&configure(SessionBinding::builder()).build().unwrap())
    }

    fn session(n: u32) -> SessionKey {
        SessionKey::of(format!("s-{n}").as_bytes())
    }

    fn principal(subject: &str) -> PrincipalKey {
        PrincipalKey::of(&AuthInfo::new("t", "https://as").with_subject(subject))
    }

    #[test]
    fn principals_differ_by_each_part_and_by_absence() {
        let info = |subject: Option<&str>, client: Option<&str>| {
            let mut info = AuthInfo::new("t", "https://as");
            info.subject = subject.map(str::to_owned);
            info.client_id = client.map(str::to_owned);
            PrincipalKey::of(&info)
        };
        let keys = [
            info(None, None),
            info(Some(""), None),
            info(None, Some("")),
            info(Some("a"), Some("b")),
            info(Some("ab"), None),
            info(Some("a"), Some("")),
            info(Some(""), Some("ab")),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in keys.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        // Not the token, not the scopes.
        let again = AuthInfo::new("another token", "https://as")
            .with_subject("a")
            .with_client_id("b")
            .with_scopes(["admin"]);
        assert_eq!(PrincipalKey::of(&again), info(Some("a"), Some("b")));
    }

    #[test]
    fn a_principal_over_its_cap_forgets_its_own_least_recently_used() {
        let mut t = table(|b| b.max_sessions(10).max_sessions_per_principal(2));
        let now = Instant::now();
        let (alice, mallory) = (principal("alice"), principal("mallory"));
        assert_eq!(t.bind(session(0), alice, Origin::Created, now), Bound::New);
        for n in [1, 2] {
            assert_eq!(
                t.bind(session(n), mallory, Origin::Created, now),
                Bound::New
            );
        }
        // Used 1 again, so 2 is mallory's least recently used.
        assert_eq!(t.lookup(&session(1), &mallory, now), Lookup::Owner);
        assert_eq!(
            t.bind(session(3), mallory, Origin::Created, now),
            Bound::New
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(&session(0), &alice, now), Lookup::Owner);
        assert_eq!(t.lookup(&session(1), &mallory, now), Lookup::Owner);
        assert_eq!(t.lookup(&session(2), &mallory, now), Lookup::Unknown);
        assert_eq!(t.lookup(&session(3), &mallory, now), Lookup::Owner);
        assert_eq!(t.principals[&mallory].len(), 2);
    }

    #[test]
    fn a_full_store_forgets_the_least_recently_used_binding() {
        let mut t = table(|b| b.max_sessions(3).max_sessions_per_principal(2));
        let now = Instant::now();
        let (alice, bob, carol) = (principal("alice"), principal("bob"), principal("carol"));
        t.bind(session(0), alice, Origin::Created, now);
        t.bind(session(1), bob, Origin::Created, now);
        t.bind(session(2), bob, Origin::Created, now);
        assert_eq!(t.lookup(&session(0), &alice, now), Lookup::Owner);
        // Full: bob's session 1 is the least recently used.
        t.bind(session(3), carol, Origin::Created, now);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(&session(1), &bob, now), Lookup::Unknown);
        assert_eq!(t.principals[&bob], vec![session(2)]);
        for (n, who) in [(0, alice), (2, bob), (3, carol)] {
            assert_eq!(t.lookup(&session(n), &who, now), Lookup::Owner, "{n}");
        }
    }

    #[test]
    fn idle_bindings_are_forgotten_and_use_keeps_them() {
        let mut t = table(|b| {
            b.idle_timeout(Duration::from_secs(60))
                .forward_unknown_sessions(true)
        });
        let t0 = Instant::now();
        let alice = principal("alice");
        t.bind(session(0), alice, Origin::Created, t0);
        t.bind(session(1), alice, Origin::Created, t0);
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(t.lookup(&session(1), &alice, t1), Lookup::Owner);
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(t.lookup(&session(1), &alice, t2), Lookup::Owner);
        assert_eq!(t.len(), 1, "session 0 went idle at t0 + 60 s");
        assert_eq!(t.lookup(&session(0), &alice, t2), Lookup::Forgotten);
        assert!(t.principals[&alice] == vec![session(1)]);
        let t3 = t2 + Duration::from_secs(61);
        assert_eq!(t.lookup(&session(1), &alice, t3), Lookup::Forgotten);
        assert_eq!(t.len(), 0);
        assert!(t.principals.is_empty() && t.recency.is_empty());
    }

    #[test]
    fn forwarding_every_forgotten_id_is_a_tombstone_and_is_never_bound_again() {
        let mut t = table(|b| {
            b.max_sessions(2)
                .max_sessions_per_principal(1)
                .forward_unknown_sessions(true)
                .tombstone_capacity(10)
        });
        let now = Instant::now();
        let (alice, bob, carol, mallory) = (
            principal("alice"),
            principal("bob"),
            principal("carol"),
            principal("mallory"),
        );
        t.bind(session(0), alice, Origin::Created, now); // then forgotten: alice's cap
        t.bind(session(1), alice, Origin::Created, now); // then forgotten: the store is full
        t.bind(session(2), bob, Origin::Created, now); // then ended
        t.end(&session(2), now);
        t.bind(session(3), bob, Origin::Created, now);
        t.bind(session(4), carol, Origin::Created, now); // the store is full: forgets 1
        assert_eq!(t.len(), 2);
        // Far more forgotten ids than the tombstones' capacity: carol's cap forgets each.
        for n in 100..200 {
            t.bind(session(n), carol, Origin::Created, now);
        }
        assert_eq!(t.lookup(&session(3), &bob, now), Lookup::Owner);
        assert_eq!(t.lookup(&session(199), &carol, now), Lookup::Owner);
        for n in [0, 1, 2, 4, 100, 198] {
            for who in [alice, bob, mallory] {
                assert_eq!(t.lookup(&session(n), &who, now), Lookup::Forgotten, "{n}");
                assert_eq!(
                    t.bind(session(n), who, Origin::FirstSeen, now),
                    Bound::Forgotten,
                    "{n}"
                );
            }
        }
        // Ten times past capacity, the filter is saturated: ids never bound here are taken for
        // forgotten ones and refused, as without forwarding; none becomes claimable.
        let never_seen = (1_000..1_100)
            .filter(|&n| t.lookup(&session(n), &mallory, now) == Lookup::Forgotten)
            .count();
        assert!(never_seen > 90, "{never_seen} of 100 refused");
        // The service creating a session vouches for it, even for a tombstoned id.
        assert_eq!(t.bind(session(0), bob, Origin::Created, now), Bound::New);
        assert_eq!(t.lookup(&session(0), &bob, now), Lookup::Owner);
    }

    #[test]
    fn forwarding_an_id_never_bound_here_is_bound_to_its_first_presenter() {
        let mut t = table(|b| b.forward_unknown_sessions(true));
        let now = Instant::now();
        let (alice, mallory) = (principal("alice"), principal("mallory"));
        assert_eq!(t.lookup(&session(7), &mallory, now), Lookup::Unknown);
        assert_eq!(
            t.bind(session(7), mallory, Origin::FirstSeen, now),
            Bound::New
        );
        assert_eq!(t.lookup(&session(7), &alice, now), Lookup::OtherOwner);
        assert_eq!(
            t.bind(session(7), alice, Origin::FirstSeen, now),
            Bound::OtherOwner
        );
        assert_eq!(t.lookup(&session(7), &mallory, now), Lookup::Owner);
        t.end(&session(7), now);
        assert_eq!(t.lookup(&session(7), &mallory, now), Lookup::Forgotten);
        assert_eq!(
            t.bind(session(7), mallory, Origin::FirstSeen, now),
            Bound::Forgotten
        );
    }

    #[test]
    fn without_forwarding_nothing_is_remembered_once_forgotten() {
        let mut t = table(|b| b.max_sessions(1));
        let now = Instant::now();
        let alice = principal("alice");
        t.bind(session(0), alice, Origin::Created, now);
        t.bind(session(1), alice, Origin::Created, now);
        assert!(t.tombstones.is_none());
        assert_eq!(t.lookup(&session(0), &alice, now), Lookup::Unknown);
        // Ending an id nobody bound changes nothing.
        t.end(&session(9), now);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_binding_is_kept_by_its_first_owner() {
        let mut t = table(|b| b);
        let now = Instant::now();
        let (alice, bob) = (principal("alice"), principal("bob"));
        assert_eq!(t.bind(session(0), alice, Origin::Created, now), Bound::New);
        assert_eq!(
            t.bind(session(0), alice, Origin::Created, now),
            Bound::Already
        );
        assert_eq!(
            t.bind(session(0), bob, Origin::Created, now),
            Bound::OtherOwner
        );
        assert_eq!(t.lookup(&session(0), &bob, now), Lookup::OtherOwner);
        assert_eq!(t.lookup(&session(0), &alice, now), Lookup::Owner);
        assert_eq!(t.len(), 1);
    }
}
