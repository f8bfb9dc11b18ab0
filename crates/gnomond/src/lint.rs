//! `gnomond --lint`: reads the configuration as the daemon would (the `-f` file or the trailing
//! directives), prints chronyd's fatal error if any and every lint finding, one per line
//! (`FILE:LINE: severity: message [id]`), and exits 0 when clean, 1 with warnings only, 2 with
//! errors (a line chronyd would refuse, or an error-level finding).

use crate::cli::Options;
use gnomon_conf::lint::{lint, lint_file, LintReport};
use std::path::Path;

/// Exit status for a report: 0 clean, 1 warnings, 2 errors.
pub fn exit_status(report: &LintReport) -> i32 {
    if report.has_errors() {
        2
    } else if report.findings.is_empty() {
        0
    } else {
        1
    }
}

/// Lints what the options name; prints the report to stdout; returns the exit status.
pub fn run(opts: &Options) -> i32 {
    let report = if opts.directives.is_empty() {
        let file = opts
            .config_file
            .as_deref()
            .unwrap_or(crate::cli::DEFAULT_CONFIG);
        lint_file(Path::new(file))
    } else {
        match gnomon_conf::load_lines(&opts.directives) {
            Ok(config) => LintReport {
                fatal: None,
                more_fatal: Vec::new(),
                findings: lint(&config),
            },
            Err(e) => LintReport {
                fatal: Some(e),
                more_fatal: Vec::new(),
                findings: Vec::new(),
            },
        }
    };
    print!("{report}");
    exit_status(&report)
}
