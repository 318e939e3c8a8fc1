//! The tombstones: every session id this layer has stopped binding, as a Bloom filter of
//! digests, so that a forgotten id is never forwarded again (only kept when unknown session
//! ids are forwarded; without forwarding, a forgotten id is refused anyway).
//!
//! A Bloom filter has no false negatives: an id once added is reported present for the life of
//! the layer, however many are added after it. That is the property the binding needs (see
//! the module docs of `store`): the filter cannot overflow into forgetting a tombstone.
//! Past its capacity only its false positives grow, and a false positive refuses (404) an id
//! this layer never saw, the answer it gives with forwarding off.

use super::store::SessionKey;

/// Bits per id of the design capacity: 10 bits and [`PROBES`] probes give a false-positive
/// rate of 0.82 % at capacity (`(1 - e^(-7/10))^7`).
const BITS_PER_ID: u64 = 10;

/// Bits probed (and set) per id.
const PROBES: u64 = 7;

/// A Bloom filter of forgotten session ids.
pub(super) struct Tombstones {
    bits: Vec<u64>,
    /// `bits.len() * 64`, never zero.
    len_bits: u64,
    /// Ids added; past `capacity` the false-positive rate rises above 1 %.
    added: u64,
    capacity: u64,
    warned: bool,
}

impl Tombstones {
    /// A filter holding `capacity` ids at under 1 % false positives: `capacity * 10 / 8`
    /// bytes, allocated at once. `capacity` is checked by the builder (1 ..= the maximum).
    pub(super) fn new(capacity: u64) -> Self {
        let words = capacity
            .max(1)
            .saturating_mul(BITS_PER_ID)
            .div_ceil(64)
            .max(1);
        let words = usize::try_from(words).unwrap_or(usize::MAX);
        let bits = vec![0u64; words];
        Self {
            len_bits: (bits.len() as u64).saturating_mul(64),
            bits,
            added: 0,
            capacity,
            warned: false,
        }
    }

    /// The bit positions of `key`: double hashing over the two halves of its digest.
    fn probes(&self, key: &SessionKey) -> impl Iterator<Item = (usize, u64)> + use<> {
        let (h1, h2) = key.halves();
        // An odd step visits distinct positions whatever the filter's size.
        let h2 = h2 | 1;
        let len_bits = self.len_bits;
        (0..PROBES).map(move |i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % len_bits;
            // `bit / 64 < bits.len()`, which is a usize.
            let word = usize::try_from(bit / 64).unwrap_or(usize::MAX);
            (word, 1u64 << (bit % 64))
        })
    }

    /// Remembers `key` as forgotten, for good.
    pub(super) fn insert(&mut self, key: &SessionKey) {
        for (word, mask) in self.probes(key) {
            if let Some(word) = self.bits.get_mut(word) {
                *word |= mask;
            }
        }
        self.added = self.added.saturating_add(1);
        if self.added > self.capacity && !self.warned {
            self.warned = true;
            tracing::warn!(
                capacity = self.capacity,
                "the session binding's tombstones are past their capacity: more and more \
                 session ids created on other instances will get 404 (clients then start a new \
                 session); raise SessionBindingBuilder::tombstone_capacity, or use sticky \
                 routing and turn forward_unknown_sessions off"
            );
        }
    }

    /// Whether `key` was forgotten (or, rarely, collides with forgotten ones: refused alike).
    pub(super) fn contains(&self, key: &SessionKey) -> bool {
        self.probes(key)
            .all(|(word, mask)| self.bits.get(word).is_some_and(|bits| bits & mask != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> SessionKey {
        SessionKey::of(format!("session-{n}").as_bytes())
    }

    #[test]
    fn an_inserted_id_is_never_lost_however_many_follow() {
        let mut tombstones = Tombstones::new(100);
        tombstones.insert(&key(0));
        // Fifty times the capacity: a bounded set would have dropped the first long ago.
        for n in 1..5_000 {
            tombstones.insert(&key(n));
            assert!(tombstones.contains(&key(0)), "lost after {n} more");
        }
        assert!((0..5_000).all(|n| tombstones.contains(&key(n))));
        assert_eq!(
            tombstones.bits.len(),
            16,
            "100 ids * 10 bits, in 64-bit words"
        );
    }

    #[test]
    fn false_positives_stay_under_one_percent_at_capacity() {
        let mut tombstones = Tombstones::new(10_000);
        for n in 0..10_000 {
            tombstones.insert(&key(n));
        }
        let false_positives = (10_000..110_000)
            .filter(|&n| tombstones.contains(&key(n)))
            .count();
        assert!(false_positives < 1_000, "{false_positives} of 100 000");
        assert!(
            !Tombstones::new(1).contains(&key(1)),
            "an empty filter holds nothing"
        );
    }
}
