//! Where the daemon's messages go, in chronyd's shape: with `-d` (or `-l FILE`) each line is
//! `YYYY-MM-DDTHH:MM:SSZ message`, otherwise syslog (facility daemon). `-L` sets the threshold
//! (0 informational, 1 warnings, 2 errors, 3 fatal only; `-d -d` adds debug messages). Fatal
//! errors always get through, prefixed `Fatal error : ` as chronyd writes them.
//!
//! Built on `tracing`: code logs with `tracing::info!` etc.; this module's layer formats and
//! writes. The sink can change once at start-up (stderr until the options are known).

use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The tracing target that marks a fatal error.
pub const FATAL: &str = "fatal";

/// Where messages are written.
#[derive(Debug)]
pub enum Sink {
    /// Standard error, timestamped (`-d`, and before the options are known).
    Stderr,
    /// A log file, timestamped (`-l FILE`).
    File(std::fs::File),
    /// syslog (facility daemon).
    Syslog,
}

/// How a fatal error is also shown on stderr when the sink is not stderr, as chronyd does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalEcho {
    /// Not at all.
    None,
    /// `Fatal error : MESSAGE` (foreground with `-n`).
    Prefixed,
    /// `MESSAGE` alone (about to detach: what the waiting parent prints).
    Plain,
}

static FATAL_ECHO: Mutex<FatalEcho> = Mutex::new(FatalEcho::None);

static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);
/// Most verbose level written: 0 error, 1 warn, 2 info, 3 debug; below 0 fatal only.
static THRESHOLD: AtomicI32 = AtomicI32::new(2);

/// chronyd's `-L` (and `-d -d`) → our threshold.
pub fn threshold_for(log_level: i32, debug: u8) -> i32 {
    if debug >= 2 {
        return 3;
    }
    match log_level {
        i32::MIN..=0 => 2,
        1 => 1,
        2 => 0,
        _ => -1,
    }
}

fn rank(level: &Level) -> i32 {
    match *level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        _ => 3,
    }
}

struct ChronyLayer;

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            use std::fmt::Write as _;
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn enabled(meta: &Metadata<'_>) -> bool {
    meta.target() == FATAL || rank(meta.level()) <= THRESHOLD.load(Ordering::Relaxed)
}

impl<S: Subscriber> Layer<S> for ChronyLayer {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The threshold can change after start-up, so every event asks `enabled` again.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        enabled(meta)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !enabled(meta) {
            return;
        }
        let mut msg = Message::default();
        event.record(&mut msg);
        let fatal = meta.target() == FATAL;
        let text = if fatal {
            format!("Fatal error : {}", msg.0)
        } else {
            msg.0.clone()
        };
        let to_stderr = write_line(&text, meta.level());
        if fatal && !to_stderr {
            let echo = match FATAL_ECHO.lock() {
                Ok(e) => *e,
                Err(poisoned) => *poisoned.into_inner(),
            };
            match echo {
                FatalEcho::None => {}
                FatalEcho::Prefixed => {
                    let _ = writeln!(std::io::stderr(), "{text}");
                }
                FatalEcho::Plain => {
                    let _ = writeln!(std::io::stderr(), "{}", msg.0);
                }
            }
        }
    }
}

/// Writes one line to the sink; returns whether that sink is stderr.
fn write_line(text: &str, level: &Level) -> bool {
    let mut sink = match SINK.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    match &mut *sink {
        Sink::Stderr => {
            let _ = writeln!(std::io::stderr(), "{} {text}", timestamp());
            true
        }
        Sink::File(f) => {
            let _ = writeln!(f, "{} {text}", timestamp());
            false
        }
        Sink::Syslog => {
            let priority = match *level {
                Level::ERROR => libc::LOG_ERR,
                Level::WARN => libc::LOG_WARNING,
                Level::INFO => libc::LOG_INFO,
                _ => libc::LOG_DEBUG,
            };
            crate::os::process::syslog(priority, text);
            false
        }
    }
}

/// Installs the global subscriber writing to stderr at the default threshold. Call once, first.
pub fn init() {
    let _ = tracing_subscriber::registry().with(ChronyLayer).try_init();
}

/// Switches to the sink, fatal-error echo and threshold the options ask for.
pub fn configure(sink: Sink, echo: FatalEcho, threshold: i32) {
    THRESHOLD.store(threshold, Ordering::Relaxed);
    match FATAL_ECHO.lock() {
        Ok(mut e) => *e = echo,
        Err(poisoned) => *poisoned.into_inner() = echo,
    }
    match SINK.lock() {
        Ok(mut s) => *s = sink,
        Err(poisoned) => *poisoned.into_inner() = sink,
    }
}

/// `cyclelogs`: if messages go to a log file, closes it and opens `path` afresh (appending,
/// created if missing), so that a rotated file is let go. Returns whether a file was reopened;
/// on error the old file stays in use.
pub fn reopen_file(path: &std::path::Path) -> std::io::Result<bool> {
    let mut sink = match SINK.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if !matches!(*sink, Sink::File(_)) {
        return Ok(false);
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    *sink = Sink::File(f);
    Ok(true)
}

/// Logs a fatal error (always written, whatever the threshold).
pub fn fatal(message: &str) {
    tracing::error!(target: "fatal", "{message}");
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now (UTC), as chronyd stamps its log lines.
fn timestamp() -> String {
    format_utc(crate::os::clock::realtime().sec)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from a day count (the proleptic Gregorian calendar, era = 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_316_454), "2026-11-22T03:00:54Z");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn chronyd_levels_map_to_thresholds() {
        assert_eq!(threshold_for(0, 1), 2);
        assert_eq!(threshold_for(1, 0), 1);
        assert_eq!(threshold_for(2, 0), 0);
        assert_eq!(threshold_for(3, 0), -1);
        assert_eq!(threshold_for(0, 2), 3);
    }
}
