//! Time as a dependency. The application reads the time from one [`Clock`]: the system's in
//! production, a manual one in tests, which a test moves forward instead of sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

/// The source of "now" for the engine's callers, timers and the worker. Cheap to clone; clones
/// share one time.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System,
    Manual(Mutex<DateTime<Utc>>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Arc::new(Source::System))
    }

    /// A clock that stands still at `start` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Source::Manual(Mutex::new(start))))
    }

    /// True for a manual clock: SQL that would compare against the database's `now()` must use
    /// [`Clock::now`] instead, so a test's time is the only time.
    pub fn is_manual(&self) -> bool {
        matches!(*self.0, Source::Manual(_))
    }

    /// The current time at the precision Postgres stores (microseconds), so an answer built
    /// from memory equals the same resource read back later.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.0 {
            Source::System => Utc::now().trunc_subsecs(6),
            Source::Manual(at) => *at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved, so this does nothing
    /// there.
    pub fn advance(&self, by: chrono::Duration) {
        if let Source::Manual(at) = &*self.0 {
            let mut at = at.lock().unwrap_or_else(|e| e.into_inner());
            *at += by;
        }
    }

    /// Sets a manual clock to `to` (truncated to microseconds); does nothing on the system
    /// clock.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Source::Manual(at) = &*self.0 {
            *at.lock().unwrap_or_else(|e| e.into_inner()) = to.trunc_subsecs(6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(chrono::Duration::hours(2));
        assert_eq!(clock.now(), start + chrono::Duration::hours(2));
        clock.set(start);
        assert_eq!(other.now(), start);
        assert!(clock.is_manual());
    }

    #[test]
    fn the_system_clock_reads_microseconds_and_ignores_advance() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(chrono::Duration::days(365));
        assert!(clock.now() - before < chrono::Duration::days(1));
        assert_eq!(before.timestamp_subsec_nanos() % 1_000, 0);
        assert!(!clock.is_manual());
    }
}
