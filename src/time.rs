//! The wall clock in the unit tokens use: whole seconds since the Unix epoch (RFC 7519
//! NumericDate). Every expiry in the crate is compared through these functions, so that one
//! rule decides what "now" and "expired" mean.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (0 if the clock is before it).
pub(crate) fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// `time` as seconds since the Unix epoch: 0 before the epoch, `i64::MAX` beyond what `i64`
/// holds.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    })
}

/// Whether an authorization server's answer that says `exp: expires_at` (seconds since the
/// epoch) has expired at `now`: the expiry second itself counts as expired, as in the caches
/// ([`time_left`] is zero from then on). A JWT's own `exp` is checked with a leeway instead
/// (`verify::claims::check_times`).
pub(crate) fn has_expired(expires_at: i64, now: i64) -> bool {
    expires_at <= now
}

/// Time from `now` until `expires_at` (seconds since the epoch): zero once it has passed,
/// unbounded when there is no expiry or it is beyond what `SystemTime` represents.
pub(crate) fn time_left(expires_at: Option<i64>, now: SystemTime) -> Duration {
    let Some(expires_at) = expires_at else {
        return Duration::MAX;
    };
    let Ok(seconds) = u64::try_from(expires_at) else {
        return Duration::ZERO;
    };
    match UNIX_EPOCH.checked_add(Duration::from_secs(seconds)) {
        Some(expiry) => expiry.duration_since(now).unwrap_or(Duration::ZERO),
        None => Duration::MAX,
    }
}

/// A fixed instant for tests: 2023-11-14T22:13:20Z.
#[cfg(test)]
pub(crate) const T0: u64 = 1_700_000_000;

/// The instant `seconds` after the epoch, for tests.
#[cfg(test)]
pub(crate) fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_counts_whole_seconds_and_clamps_before_the_epoch() {
        assert_eq!(
            unix_seconds(at(T0) + Duration::from_millis(999)),
            1_700_000_000
        );
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert!(unix_now() > 1_700_000_000);
    }

    #[test]
    fn a_token_has_expired_at_its_expiry_second() {
        assert!(!has_expired(101, 100));
        assert!(has_expired(100, 100));
        assert!(has_expired(-1, 0));
    }

    #[test]
    fn time_left_is_zero_once_passed_and_unbounded_without_an_expiry() {
        let exp = i64::try_from(T0 + 5).unwrap();
        assert_eq!(time_left(Some(exp), at(T0)), Duration::from_secs(5));
        assert_eq!(time_left(Some(exp), at(T0 + 5)), Duration::ZERO);
        assert_eq!(time_left(Some(-5), at(T0)), Duration::ZERO);
        assert_eq!(time_left(None, at(T0)), Duration::MAX);
    }
}
