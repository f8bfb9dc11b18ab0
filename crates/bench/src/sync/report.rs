//! The figures of `gnomon-bench sync` (see sync.rs) and their layout: what each client showed
//! in a run ([`RunFigures`]), the per-run summary ([`Summary`]: first sync, `Last offset` RMS
//! and maximum, the daemon's own `RMS offset` and `Frequency`, gnomond's served-time error),
//! the lines of one run in the layout of the retired `sync_benchmark` test, and the medians
//! over runs with the median of each run's gnomond/chronyd ratio.

use crate::relay::RelayCounts;
use crate::stats::{max_abs, median, rms};
use std::fmt::Write as _;

/// The signed value of a `tracking` line such as `Frequency : 50.1 ppm fast` (fast positive)
/// or `Stratum : 9`.
pub fn tracking_value(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(label))?;
    let rest = line.split_once(':')?.1.trim();
    let v: f64 = rest
        .split_whitespace()
        .next()?
        .trim_start_matches('+')
        .parse()
        .ok()?;
    Some(if rest.ends_with("slow") { -v } else { v })
}

/// What one client showed in one run.
#[derive(Clone, Debug, Default)]
pub struct ClientRun {
    /// Seconds from the start to the first synchronised `tracking`.
    pub first_sync: Option<f64>,
    /// `Last offset` sampled once a second after the settle time, seconds.
    pub last: Vec<f64>,
    /// `Frequency` sampled once a second after the settle time, ppm. Both clients run on the
    /// clock their upstream serves, so the true value is 0 and this is the error itself.
    pub freq: Vec<f64>,
    /// The last non-empty `tracking` text.
    pub tracking: String,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default)]
pub struct RunFigures {
    /// chronyd, then gnomond.
    pub clients: [ClientRun; 2],
    /// gnomond's served time minus CLOCK_REALTIME after the settle time, seconds.
    pub served: Vec<f64>,
    /// The relays to chronyd and to gnomond.
    pub relays: [RelayCounts; 2],
}

impl RunFigures {
    /// Whether both clients synchronised.
    pub fn both_synced(&self) -> bool {
        self.clients.iter().all(|c| c.first_sync.is_some())
    }
}

/// The figures of one run that the medians are taken of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// First sync, seconds (chronyd, gnomond; NaN: never).
    pub first_sync: [f64; 2],
    /// Last offset RMS after the settle time, seconds.
    pub last_rms: [f64; 2],
    /// Last offset largest magnitude after the settle time, seconds.
    pub last_max: [f64; 2],
    /// `RMS offset` of the last `tracking`, seconds.
    pub tracking_rms: [f64; 2],
    /// `Frequency` of the last `tracking`, ppm (fast positive).
    pub frequency: [f64; 2],
    /// RMS of the `Frequency` samples after the settle time, ppm: the frequency error (the
    /// true value is 0).
    pub freq_rms: [f64; 2],
    /// gnomond's served time vs CLOCK_REALTIME: RMS, seconds.
    pub served_rms: f64,
    /// gnomond's served time vs CLOCK_REALTIME: largest magnitude, seconds.
    pub served_max: f64,
}

impl Summary {
    /// Summarises one run.
    pub fn of(f: &RunFigures) -> Summary {
        let each = |g: &dyn Fn(&ClientRun) -> f64| [g(&f.clients[0]), g(&f.clients[1])];
        let value = |c: &ClientRun, label| tracking_value(&c.tracking, label).unwrap_or(f64::NAN);
        Summary {
            first_sync: each(&|c| c.first_sync.unwrap_or(f64::NAN)),
            last_rms: each(&|c| rms(&c.last)),
            last_max: each(&|c| max_abs(&c.last)),
            tracking_rms: each(&|c| value(c, "RMS offset")),
            frequency: each(&|c| value(c, "Frequency")),
            freq_rms: each(&|c| rms(&c.freq)),
            served_rms: rms(&f.served),
            served_max: max_abs(&f.served),
        }
    }

    /// gnomond/chronyd time to first sync.
    pub fn first_sync_ratio(&self) -> f64 {
        self.first_sync[1] / self.first_sync[0]
    }

    /// gnomond/chronyd Last offset RMS.
    pub fn last_rms_ratio(&self) -> f64 {
        self.last_rms[1] / self.last_rms[0]
    }

    /// gnomond/chronyd frequency error RMS.
    pub fn freq_rms_ratio(&self) -> f64 {
        self.freq_rms[1] / self.freq_rms[0]
    }
}

/// The lines of one run (the test's layout, `label` in place of the scenario name).
pub fn run_report(label: &str, names: [&str; 2], settle: f64, f: &RunFigures) -> String {
    let s = Summary::of(f);
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "{label}: {name}: first sync {:.2} s; Last offset after {settle} s: n {} RMS {:.1} us \
             max {:.1} us; tracking RMS offset {:.1} us; frequency {:.3} ppm; frequency \
             error RMS after {settle} s {:.3} ppm",
            s.first_sync[i],
            f.clients[i].last.len(),
            s.last_rms[i] * 1e6,
            s.last_max[i] * 1e6,
            s.tracking_rms[i] * 1e6,
            s.frequency[i],
            s.freq_rms[i],
        );
    }
    let _ = writeln!(
        out,
        "{label}: gnomond/chronyd: first sync {:.2}, Last offset RMS {:.2}, frequency error \
         RMS {:.2}",
        s.first_sync_ratio(),
        s.last_rms_ratio(),
        s.freq_rms_ratio()
    );
    let _ = writeln!(
        out,
        "{label}: gnomond served time vs CLOCK_REALTIME after {settle} s: n {} RMS {:.1} us max \
         {:.1} us",
        f.served.len(),
        s.served_rms * 1e6,
        s.served_max * 1e6
    );
    let r = |c: &RelayCounts| {
        format!(
            "up {} in, {} lost, {} out; down {} in, {} lost, {} out; {} overflow, {} failed",
            c.up.received,
            c.up.lost,
            c.up.sent,
            c.down.received,
            c.down.lost,
            c.down.sent,
            c.up.overflow + c.down.overflow,
            c.up.failed + c.down.failed
        )
    };
    let _ = writeln!(
        out,
        "{label}: relay to {}: {} | relay to gnomond: {}",
        names[0],
        r(&f.relays[0]),
        r(&f.relays[1])
    );
    for (i, name) in names.iter().enumerate() {
        if f.clients[i].first_sync.is_none() {
            let _ = writeln!(out, "{label}: {name} never synchronised");
        }
    }
    out
}

/// The median lines over the runs of one scenario (ratios: the median of each run's ratio,
/// since both clients of a run shared its conditions).
pub fn median_report(scenario: &str, names: [&str; 2], settle: f64, runs: &[Summary]) -> String {
    let m = |g: &dyn Fn(&Summary) -> f64| median(&runs.iter().map(g).collect::<Vec<_>>());
    let n = runs.len();
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            "{scenario} median of {n}: {name}: first sync {:.2} s; Last offset after {settle} s: \
             RMS {:.1} us max {:.1} us; tracking RMS offset {:.1} us; frequency {:.3} ppm; \
             frequency error RMS {:.3} ppm",
            m(&|s| s.first_sync[i]),
            m(&|s| s.last_rms[i]) * 1e6,
            m(&|s| s.last_max[i]) * 1e6,
            m(&|s| s.tracking_rms[i]) * 1e6,
            m(&|s| s.frequency[i]),
            m(&|s| s.freq_rms[i]),
        );
    }
    let _ = writeln!(
        out,
        "{scenario} median of {n}: gnomond/chronyd (median of the runs' ratios): first sync \
         {:.2}, Last offset RMS {:.2}, frequency error RMS {:.2}",
        m(&Summary::first_sync_ratio),
        m(&Summary::last_rms_ratio),
        m(&Summary::freq_rms_ratio)
    );
    let _ = writeln!(
        out,
        "{scenario} median of {n}: gnomond served time vs CLOCK_REALTIME after {settle} s: RMS \
         {:.1} us max {:.1} us",
        m(&|s| s.served_rms) * 1e6,
        m(&|s| s.served_max) * 1e6
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::DirectionCounts;

    const TRACKING: &str = "Reference ID    : 7F000001 (127.0.0.1)\n\
        Stratum         : 9\n\
        System time     : 0.000000001 seconds slow of NTP time\n\
        Last offset     : -0.000012000 seconds\n\
        RMS offset      : 0.000010000 seconds\n\
        Frequency       : 1.250 ppm slow\n";

    #[test]
    fn tracking_values_are_signed_by_fast_and_slow() {
        assert_eq!(tracking_value(TRACKING, "Stratum"), Some(9.0));
        assert_eq!(tracking_value(TRACKING, "Last offset"), Some(-12e-6));
        assert_eq!(tracking_value(TRACKING, "Frequency"), Some(-1.25));
        let fast = TRACKING.replace("ppm slow", "ppm fast");
        assert_eq!(tracking_value(&fast, "Frequency"), Some(1.25));
        assert_eq!(tracking_value(TRACKING, "Skew"), None);
        assert_eq!(tracking_value("Stratum : x", "Stratum"), None);
    }

    fn figures(first: [Option<f64>; 2], last: [Vec<f64>; 2], served: Vec<f64>) -> RunFigures {
        let [a, b] = first;
        let [la, lb] = last;
        let counts = DirectionCounts {
            received: 100,
            lost: 5,
            overflow: 0,
            sent: 95,
            failed: 0,
        };
        RunFigures {
            clients: [
                ClientRun {
                    first_sync: a,
                    last: la,
                    freq: vec![1.0, -1.0],
                    tracking: TRACKING.into(),
                },
                ClientRun {
                    first_sync: b,
                    last: lb,
                    freq: vec![0.5, -0.5],
                    tracking: TRACKING.replace("ppm slow", "ppm fast"),
                },
            ],
            served,
            relays: [RelayCounts {
                up: counts,
                down: counts,
            }; 2],
        }
    }

    #[test]
    fn run_report_prints_the_figures_and_ratios_in_the_tests_layout() {
        let f = figures(
            [Some(1.14), Some(0.57)],
            [vec![10e-6, -10e-6], vec![5e-6, -5e-6, 5e-6, -5e-6]],
            vec![30e-6, -40e-6],
        );
        let r = run_report("impaired", ["chronyd 4.3", "gnomond"], 60.0, &f);
        assert!(r.contains(
            "impaired: chronyd 4.3: first sync 1.14 s; Last offset after 60 s: n 2 RMS 10.0 us \
             max 10.0 us; tracking RMS offset 10.0 us; frequency -1.250 ppm; frequency error \
             RMS after 60 s 1.000 ppm\n"
        ), "{r}");
        assert!(r.contains("impaired: gnomond: first sync 0.57 s; Last offset after 60 s: n 4"));
        assert!(r.contains("frequency 1.250 ppm; frequency error RMS after 60 s 0.500 ppm\n"));
        assert!(r.contains(
            "impaired: gnomond/chronyd: first sync 0.50, Last offset RMS 0.50, frequency error \
             RMS 0.50\n"
        ));
        assert!(
            r.contains(
                "impaired: gnomond served time vs CLOCK_REALTIME after 60 s: n 2 RMS 35.4 us max \
             40.0 us\n"
            ),
            "{r}"
        );
        assert!(r.contains(
            "impaired: relay to chronyd 4.3: up 100 in, 5 lost, 95 out; down 100 in, 5 lost, 95 \
             out; 0 overflow, 0 failed | relay to gnomond: up 100 in"
        ), "{r}");
        assert!(!r.contains("never"));
    }

    #[test]
    fn a_client_that_never_synchronised_is_named_and_measures_nothing() {
        let f = figures([Some(1.0), None], [vec![1e-6], vec![]], vec![]);
        assert!(!f.both_synced());
        let r = run_report("clean", ["chronyd", "gnomond"], 40.0, &f);
        assert!(r.contains("clean: gnomond never synchronised"), "{r}");
        assert!(r.contains("gnomond: first sync NaN s; Last offset after 40 s: n 0 RMS NaN"));
        assert!(r.contains("first sync NaN, Last offset RMS NaN"));
    }

    #[test]
    fn medians_are_of_the_runs_figures_and_of_their_ratios() {
        let runs: Vec<Summary> = [
            ([1.0, 0.5], [10e-6, 12e-6], 30e-6),
            ([1.2, 0.9], [20e-6, 10e-6], 50e-6),
            ([0.8, 0.8], [40e-6, 20e-6], 70e-6),
        ]
        .iter()
        .map(|&(first, lrms, served)| {
            let mut s = Summary::of(&figures([None, None], [vec![], vec![]], vec![served]));
            s.first_sync = first;
            s.last_rms = lrms;
            s
        })
        .collect();
        let r = median_report("impaired", ["chronyd", "gnomond"], 60.0, &runs);
        assert!(
            r.contains(
                "impaired median of 3: chronyd: first sync 1.00 s; Last offset after \
             60 s: RMS 20.0 us"
            ),
            "{r}"
        );
        assert!(
            r.contains(
                "impaired median of 3: gnomond: first sync 0.80 s; Last offset after \
             60 s: RMS 12.0 us"
            ),
            "{r}"
        );
        // Ratios 0.50, 0.75, 1.00 and 1.20, 0.50, 0.50: medians 0.75 and 0.50.
        assert!(
            r.contains("first sync 0.75, Last offset RMS 0.50, frequency error RMS 0.50\n"),
            "{r}"
        );
        assert!(
            r.contains("CLOCK_REALTIME after 60 s: RMS 50.0 us max 50.0 us\n"),
            "{r}"
        );
    }
}
