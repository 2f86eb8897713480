//! The budget shared by the threads checking keys in parallel: a deadline, a memory
//! ceiling charged as the memo tables grow, and a stop flag raised when an invalid key
//! ends the check early.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::Budget;

/// Why a key's search stopped before deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    TimeLimit,
    MemoryLimit,
    /// Another key was found invalid and `all_keys` is off.
    Cancelled,
}

impl Stop {
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::TimeLimit => "time limit reached",
            Stop::MemoryLimit => "memory limit reached",
            Stop::Cancelled => "not checked: another key was invalid (use --all-keys)",
        }
    }
}

pub struct Limits {
    deadline: Option<Instant>,
    memory_limit: Option<u64>,
    used: AtomicU64,
    peak: AtomicU64,
    cancel: AtomicBool,
}

impl Limits {
    pub fn new(budget: &Budget, start: Instant) -> Self {
        Limits {
            deadline: budget.time_limit.map(|t| start + t),
            memory_limit: budget.memory_limit_bytes,
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            cancel: AtomicBool::new(false),
        }
    }

    /// Polled by searches every few thousand steps.
    pub fn check(&self) -> Result<(), Stop> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Stop::TimeLimit),
            _ => Ok(()),
        }
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Charges `bytes` against the memory ceiling; false (and nothing charged) if it
    /// would go over.
    pub fn reserve(&self, bytes: u64) -> bool {
        let prev = self.used.fetch_add(bytes, Ordering::Relaxed);
        if self.memory_limit.is_some_and(|limit| prev + bytes > limit) {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        self.peak.fetch_max(prev + bytes, Ordering::Relaxed);
        true
    }

    pub fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The most memo memory charged at once.
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn memory_is_charged_and_refused_over_the_limit() {
        let l = Limits::new(
            &Budget {
                time_limit: None,
                memory_limit_bytes: Some(100),
            },
            Instant::now(),
        );
        assert!(l.reserve(60));
        assert!(!l.reserve(60));
        l.release(60);
        assert!(l.reserve(100));
        assert_eq!(l.peak_bytes(), 100);
        assert_eq!(l.check(), Ok(()));
        l.cancel();
        assert_eq!(l.check(), Err(Stop::Cancelled));
    }

    #[test]
    fn deadline_expires() {
        let l = Limits::new(
            &Budget {
                time_limit: Some(Duration::ZERO),
                memory_limit_bytes: None,
            },
            Instant::now(),
        );
        assert_eq!(l.check(), Err(Stop::TimeLimit));
    }
}
