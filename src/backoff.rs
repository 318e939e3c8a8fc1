//! The retry backoff after failed fetches, shared by discovery and the JWKS cache: a short
//! first wait, doubled after each further failure, up to a cap. A source that heals is used
//! again within about the first wait, while one that stays down is asked at a bounded rate.

use std::time::Duration;

/// The wait before the next attempt after `failures` consecutive failed attempts: `first`,
/// then `2 × first`, `4 × first`, ... never more than `max` (so `max` when it is shorter than
/// `first`). `failures` of 0 counts as 1.
pub(crate) fn retry_after(first: Duration, failures: u32, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    first.saturating_mul(1_u32 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_wait_doubles_from_the_first_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7)
            .map(|n| retry_after(SECOND, n, cap).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(retry_after(SECOND, 0, cap), SECOND);
        assert_eq!(retry_after(SECOND, u32::MAX, cap), cap);
        // A cap below the first wait wins.
        let short = Duration::from_millis(300);
        assert_eq!(retry_after(SECOND, 1, short), short);
        // No overflow with huge caps.
        assert_eq!(
            retry_after(SECOND, u32::MAX, Duration::MAX),
            Duration::from_secs(1 << 16)
        );
    }
}
