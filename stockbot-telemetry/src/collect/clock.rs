//! Time: a cheap monotonic clock on the caller's thread, turned into UTC wall-clock time on the
//! worker, calibrated against the system clock; or a simulated clock for backtests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Simulated time for backtests.
///
/// When a `SimClock` is given to [`TelemetryBuilder::with_sim_clock`](crate::TelemetryBuilder::with_sim_clock), every record
/// gets the simulated time as `@timestamp` and the real wall-clock time as `event.ingested`.
/// The backtest advances it as it replays history.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let clock = stockbot_telemetry::SimClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.unix_nanos(), 1_700_000_000_005_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct SimClock {
    nanos: Arc<AtomicU64>,
}

impl SimClock {
    /// A simulated clock starting at `start`.
    pub fn new(start: SystemTime) -> Self {
        let clock = SimClock {
            nanos: Arc::new(AtomicU64::new(0)),
        };
        clock.set(start);
        clock
    }

    /// Jumps to `time` (times before 1970 become 1970).
    pub fn set(&self, time: SystemTime) {
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.nanos.store(nanos, Ordering::Release);
    }

    /// Moves forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::AcqRel);
    }

    /// The simulated time in nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

/// The clock records are stamped with.
#[derive(Debug)]
pub(crate) struct RecordClock {
    mono: quanta::Clock,
    sim: Option<SimClock>,
    /// (raw monotonic reading, unix nanos) taken together; refreshed by the worker.
    base: Mutex<(u64, u64)>,
}

impl RecordClock {
    pub(crate) fn new(sim: Option<SimClock>) -> Self {
        let mono = quanta::Clock::new();
        let base = Mutex::new(sample(&mono));
        RecordClock { mono, sim, base }
    }

    /// Cheap reading taken on the caller's thread.
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        match &self.sim {
            Some(sim) => sim.unix_nanos(),
            None => self.mono.raw(),
        }
    }

    /// Whether stamps are simulated unix nanos rather than raw monotonic readings.
    pub(crate) fn is_simulated(&self) -> bool {
        self.sim.is_some()
    }

    /// Turns a stamp into unix nanoseconds (done on the worker).
    pub(crate) fn unix_nanos(&self, stamp: u64) -> u64 {
        if self.sim.is_some() {
            return stamp;
        }
        let (raw, wall) = *self.base.lock().unwrap_or_else(|p| p.into_inner());
        if stamp >= raw {
            wall.saturating_add(self.mono.delta_as_nanos(raw, stamp))
        } else {
            wall.saturating_sub(self.mono.delta_as_nanos(stamp, raw))
        }
    }

    /// Nanoseconds between two stamps (cheap: no calibration lock).
    pub(crate) fn elapsed_nanos(&self, start: u64, end: u64) -> u64 {
        match self.sim {
            Some(_) => end.saturating_sub(start),
            None if end >= start => self.mono.delta_as_nanos(start, end),
            None => 0,
        }
    }

    /// Real wall-clock time now, in unix nanoseconds.
    pub(crate) fn wall_now(&self) -> u64 {
        system_unix_nanos()
    }

    /// Re-reads the system clock so the wall time follows NTP adjustments.
    pub(crate) fn recalibrate(&self) {
        let fresh = sample(&self.mono);
        *self.base.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
    }
}

fn system_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn sample(mono: &quanta::Clock) -> (u64, u64) {
    // Bracket the system clock read between two monotonic reads and take the midpoint.
    let before = mono.raw();
    let wall = system_unix_nanos();
    let after = mono.raw();
    (before + after.saturating_sub(before) / 2, wall)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); the
/// inverse of [`civil_from_days`]. Out-of-range days are not checked (round-trip to check).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds).
pub(crate) fn write_rfc3339_micros(out: &mut Vec<u8>, unix_nanos: u64) {
    let secs = unix_nanos / 1_000_000_000;
    let micros = (unix_nanos % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    push_num(out, y as u64, 4);
    out.push(b'-');
    push_num(out, u64::from(m), 2);
    out.push(b'-');
    push_num(out, u64::from(d), 2);
    out.push(b'T');
    push_num(out, hh, 2);
    out.push(b':');
    push_num(out, mm, 2);
    out.push(b':');
    push_num(out, ss, 2);
    out.push(b'.');
    push_num(out, micros, 6);
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 && i > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = digits.len().saturating_sub(width).min(i);
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(nanos: u64) -> String {
        let mut v = Vec::new();
        write_rfc3339_micros(&mut v, nanos);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(
            fmt(1_732_400_000_123_456_789),
            "2024-11-23T22:13:20.123456Z"
        );
        assert_eq!(
            fmt(4_102_444_799_999_999_000),
            "2099-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn calibrated_clock_tracks_system_time() {
        let clock = RecordClock::new(None);
        let stamp = clock.stamp();
        let unix = clock.unix_nanos(stamp);
        let now = system_unix_nanos();
        assert!(now.abs_diff(unix) < 50_000_000, "{now} vs {unix}");
        clock.recalibrate();
        // A stamp taken before the new base still converts monotonically.
        assert!(clock.unix_nanos(stamp) <= clock.unix_nanos(clock.stamp()));
    }

    #[test]
    fn simulated_clock_is_used_verbatim() {
        let sim = SimClock::new(UNIX_EPOCH + std::time::Duration::from_secs(10));
        let clock = RecordClock::new(Some(sim.clone()));
        sim.advance(std::time::Duration::from_nanos(7));
        assert_eq!(clock.unix_nanos(clock.stamp()), 10_000_000_007);
    }
}
