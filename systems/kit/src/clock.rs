//! Clocks a node reads.
//!
//! - The **protocol clock** gives wall and monotonic readings moved by a harness-controlled
//!   offset and rate (`FAULTLINE_CLOCK_FILE`: one line `OFFSET_MS [RATE]`, re-read every
//!   10 ms), so lease code on the monotonic clock can be faulted too. Without the file it is
//!   the system clock (which libfaketime may move: wall only, see `keep_monotonic_clock_real`).
//! - The **timer clock** (`TimerClock`) drives elections and timeouts: the larger of ticks
//!   counted by a sleeping ticker thread and forward steps of the protocol monotonic clock.
//!   Wake-ups never come from timed waits on an absolute monotonic deadline: under
//!   libfaketime the process's monotonic clock can differ from the kernel's and such waits
//!   hang.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

pub const CLOCK_FILE_ENV: &str = "FAULTLINE_CLOCK_FILE";

/// A parsed clock file: offset (ms, both readings) and rate (1.0 = real time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSetting {
    pub offset_ms: i64,
    pub rate: f64,
}

impl Default for ClockSetting {
    fn default() -> Self {
        ClockSetting {
            offset_ms: 0,
            rate: 1.0,
        }
    }
}

/// Parses `OFFSET_MS [RATE]` (e.g. `-1500 0.9`); `None` for anything else.
pub fn parse_setting(text: &str) -> Option<ClockSetting> {
    let mut it = text.split_whitespace();
    let offset_ms = it.next()?.parse().ok()?;
    let rate = match it.next() {
        Some(r) => r
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0)?,
        None => 1.0,
    };
    it.next()
        .is_none()
        .then_some(ClockSetting { offset_ms, rate })
}

/// The pure arithmetic of the protocol clock: real elapsed time scaled piecewise by the rate
/// in force, plus the offset. Rate changes never make readings jump.
#[derive(Clone, Debug)]
pub struct Skew {
    setting: ClockSetting,
    /// Scaled ms accumulated up to `since_real_ms` (real ms since start).
    scaled_ms: f64,
    since_real_ms: f64,
    last_mono: i64,
}

impl Default for Skew {
    fn default() -> Self {
        Skew {
            setting: ClockSetting::default(),
            scaled_ms: 0.0,
            since_real_ms: 0.0,
            last_mono: i64::MIN,
        }
    }
}

impl Skew {
    /// Switches to `s` at real time `real_ms` (ms since start).
    pub fn set(&mut self, s: ClockSetting, real_ms: f64) {
        self.scaled_ms = self.scaled(real_ms);
        self.since_real_ms = real_ms;
        self.setting = s;
    }

    fn scaled(&self, real_ms: f64) -> f64 {
        self.scaled_ms + (real_ms - self.since_real_ms) * self.setting.rate
    }

    /// Extra ms the wall reading gets at real time `real_ms`.
    pub fn wall_shift(&self, real_ms: f64) -> i64 {
        (self.scaled(real_ms) - real_ms) as i64 + self.setting.offset_ms
    }

    /// Monotonic ms at real time `real_ms`: scaled, offset, never decreasing.
    pub fn mono(&mut self, real_ms: f64) -> u64 {
        let m = (self.scaled(real_ms) as i64 + self.setting.offset_ms).max(self.last_mono);
        self.last_mono = m;
        m.max(0) as u64
    }
}

struct Protocol {
    start: Instant,
    file: Option<std::path::PathBuf>,
    skew: Skew,
    last_read: Option<Instant>,
}

fn protocol() -> &'static Mutex<Protocol> {
    static P: OnceLock<Mutex<Protocol>> = OnceLock::new();
    P.get_or_init(|| {
        Mutex::new(Protocol {
            start: Instant::now(),
            file: std::env::var_os(CLOCK_FILE_ENV).map(Into::into),
            skew: Skew::default(),
            last_read: None,
        })
    })
}

impl Protocol {
    fn real_ms(&mut self) -> f64 {
        let now = Instant::now();
        let real = now.saturating_duration_since(self.start).as_secs_f64() * 1000.0;
        if let Some(file) = &self.file
            && self
                .last_read
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(10))
        {
            self.last_read = Some(now);
            // A missing or half-written file keeps the setting in force.
            if let Some(s) = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| parse_setting(&t))
                && s != self.skew.setting
            {
                self.skew.set(s, real);
            }
        }
        real
    }
}

/// The protocol wall clock, ms since the epoch.
pub fn wall_ms() -> i64 {
    let mut p = protocol().lock().expect("clock lock");
    let real = p.real_ms();
    faultline_proto::stamp::unix_ms(SystemTime::now()) + p.skew.wall_shift(real)
}

/// The protocol monotonic clock, ms since the process started reading it.
pub fn mono_ms() -> u64 {
    let mut p = protocol().lock().expect("clock lock");
    let real = p.real_ms();
    p.skew.mono(real)
}

/// The timer clock: ticks counted and forward monotonic steps, whichever is further.
#[derive(Debug)]
pub struct TimerClock {
    tick: Duration,
    ticks: Duration,
    mono: Duration,
    mono_last: u64,
    now: Duration,
}

impl TimerClock {
    pub fn new(tick: Duration) -> TimerClock {
        TimerClock {
            tick,
            ticks: Duration::ZERO,
            mono: Duration::ZERO,
            mono_last: mono_ms(),
            now: Duration::ZERO,
        }
    }

    pub fn tick_interval(&self) -> Duration {
        self.tick
    }

    /// One tick from the ticker thread.
    pub fn ticked(&mut self) {
        self.ticks += self.tick;
    }

    /// Advances and returns the timer clock (jumps back are ignored; a pause or a jump forward
    /// counts).
    pub fn update(&mut self) -> Duration {
        let m = mono_ms();
        self.mono += Duration::from_millis(m.saturating_sub(self.mono_last));
        self.mono_last = self.mono_last.max(m);
        self.now = self.now.max(self.mono.max(self.ticks));
        self.now
    }

    pub fn now(&self) -> Duration {
        self.now
    }
}

/// Under libfaketime (LD_PRELOAD) only the wall clock may be faked: a faked monotonic clock
/// breaks timed waits (tokio timers fire at once, futex deadlines hang). Re-execs the process
/// once with FAKETIME_DONT_FAKE_MONOTONIC=1, which libfaketime reads at load time. Returns
/// whether libfaketime is preloaded.
pub fn keep_monotonic_clock_real() -> anyhow::Result<bool> {
    use anyhow::Context;
    use std::os::unix::process::CommandExt;
    let preloaded = std::env::var("LD_PRELOAD").is_ok_and(|p| p.contains("faketime"));
    if !preloaded || std::env::var_os("FAKETIME_DONT_FAKE_MONOTONIC").is_some() {
        return Ok(preloaded);
    }
    let exe = std::env::current_exe()?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .exec();
    Err(err).context("re-exec with FAKETIME_DONT_FAKE_MONOTONIC=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_strictly() {
        assert_eq!(
            parse_setting("-1500 0.9\n"),
            Some(ClockSetting {
                offset_ms: -1500,
                rate: 0.9
            })
        );
        assert_eq!(parse_setting("250").map(|s| s.rate), Some(1.0));
        for bad in ["", "x", "1 0", "1 -2", "1 2 3", "1 inf"] {
            assert_eq!(parse_setting(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rate_scales_both_readings_without_jumps_and_mono_never_goes_back() {
        let mut s = Skew::default();
        assert_eq!((s.wall_shift(1000.0), s.mono(1000.0)), (0, 1000));
        s.set(
            ClockSetting {
                offset_ms: 0,
                rate: 0.5,
            },
            1000.0,
        );
        // 2 s of real time at half rate: 1 s of protocol time.
        assert_eq!(s.mono(3000.0), 2000);
        assert_eq!(s.wall_shift(3000.0), -1000);
        s.set(
            ClockSetting {
                offset_ms: 500,
                rate: 2.0,
            },
            3000.0,
        );
        assert_eq!(s.mono(3000.0), 2500);
        assert_eq!(s.mono(4000.0), 4500);
        assert_eq!(s.wall_shift(4000.0), 500);
        // A step back of the offset moves the wall clock back, never the monotonic one.
        s.set(
            ClockSetting {
                offset_ms: -5000,
                rate: 2.0,
            },
            4000.0,
        );
        assert_eq!(s.wall_shift(4000.0), -5000);
        assert_eq!(s.mono(4000.0), 4500);
        assert_eq!(s.mono(7000.0), 5000);
    }
}
