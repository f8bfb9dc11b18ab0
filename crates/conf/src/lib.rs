//! chrony.conf grammar → typed values. Errors carry file:line. (The key file named by
//! `keyfile` is parsed by `gnomon_core::auth::KeyStore::parse`, the one implementation the
//! server and the engine use.)
//!
//! The behaviour reproduced is chronyd 4.3's, observed black-box with `chronyd -x -p -f FILE`:
//! which lines are accepted or fatal, the exact fatal wording, include/confdir expansion and what
//! `-p` prints. Errors add a "did you mean" hint after chronyd's text; [`lint`] adds checks for
//! lines chronyd accepts but that do not do what their author meant.
#![forbid(unsafe_code)]

pub mod access;
pub mod directive;
pub mod error;
pub mod lint;
pub mod load;
pub mod location;
pub mod options;
pub mod parse;
pub mod refclock;
mod scan;
pub mod settings;
pub mod source;
mod suggest;

pub use access::{AccessSpec, Subnet};
pub use directive::{
    AuthSelectMode, BindCmd, Directive, LeapSecMode, LogKind, TempCompSpec, DIRECTIVE_NAMES,
    GNOMON_EXTENSIONS,
};
pub use error::ConfError;
pub use load::{load_file, load_file_tolerant, load_lines, load_lines_tolerant, load_str};
pub use location::Location;
pub use options::{HwTimestampSpec, LocalSpec, RateLimitSpec, RxFilter};
pub use refclock::RefClockSpec;
pub use settings::{AccessRule, Settings, Source, SourceKind};
pub use source::{Family, SourceSpec};

/// One directive of the configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub location: Location,
    pub directive: Directive,
    /// The line as `chronyd -p` prints it (words joined by one space, name as written).
    pub text: String,
    /// Read from a `sourcedir` file rather than the configuration proper.
    pub from_sourcedir: bool,
}

/// A whole configuration, includes expanded, in reading order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub entries: Vec<Entry>,
    /// Lines of `sourcedir` files that chronyd skips without a message (invalid lines and
    /// directives other than server/pool/peer/refclock); the lint reports them.
    pub ignored: Vec<ConfError>,
}

/// A non-fatal message chronyd prints while reading the file, or that we print at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl Config {
    /// Effective values with chrony's defaults.
    pub fn settings(&self) -> Settings {
        Settings::from_config(self)
    }

    /// What `chronyd -p` prints for this configuration: every directive line in reading order,
    /// normalised, `include`/`confdir` replaced by the files they read, `sourcedir` kept as is.
    pub fn to_chrony_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            if e.from_sourcedir
                || matches!(e.directive, Directive::Include(_) | Directive::ConfDir(_))
            {
                continue;
            }
            out.push_str(&e.text);
            out.push('\n');
        }
        out
    }

    /// Warnings chronyd itself prints while reading (e.g. "commandkey directive is no longer
    /// supported").
    pub fn parse_warnings(&self) -> Vec<Warning> {
        self.entries
            .iter()
            .filter_map(|e| match e.directive {
                Directive::NoLongerSupported(n) => Some(Warning {
                    location: e.location.clone(),
                    message: format!("{n} directive is no longer supported"),
                }),
                _ => None,
            })
            .collect()
    }

    /// Start-up warnings for directives the daemon parses but does not implement yet:
    /// `implemented` says which directive names the caller implements. One warning per line.
    pub fn unimplemented_warnings(&self, implemented: impl Fn(&Directive) -> bool) -> Vec<Warning> {
        let mut out = self.parse_warnings();
        for e in &self.entries {
            if matches!(e.directive, Directive::NoLongerSupported(_)) || implemented(&e.directive) {
                continue;
            }
            out.push(Warning {
                location: e.location.clone(),
                message: format!(
                    "directive `{}` is recognised but not implemented yet; it has no effect",
                    e.directive.name()
                ),
            });
        }
        out
    }

    /// chronyd resolves the host names of `allow`/`deny`/`cmdallow`/`cmddeny` while reading the
    /// file and stops with "Could not parse allow directive at line N in file F" when one does
    /// not resolve. The parser cannot resolve (no network in a library); the daemon calls this
    /// with its resolver to get the same fatal error.
    pub fn check_access_hosts(&self, resolves: impl Fn(&str) -> bool) -> Result<(), ConfError> {
        for e in &self.entries {
            if let Directive::Allow(a)
            | Directive::Deny(a)
            | Directive::CmdAllow(a)
            | Directive::CmdDeny(a) = &e.directive
            {
                if let Some(Subnet::Host { name, .. }) = &a.subnet {
                    if !resolves(name) {
                        return Err(ConfError::CouldNotParse {
                            location: e.location.clone(),
                            directive: e.text.split(' ').next().unwrap_or("allow").to_string(),
                            hint: Some(format!("host name `{name}` could not be resolved")),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Iterate the directives.
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.entries.iter().map(|e| &e.directive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_directives_are_named_in_startup_warnings() {
        let c = load_lines(&[
            "rtcsync".into(),
            "smoothtime 400 0.001".into(),
            "linux_hz 100".into(),
        ])
        .unwrap();
        let w: Vec<String> = c
            .unimplemented_warnings(|d| matches!(d, Directive::RtcSync))
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            w,
            vec![
                "<command line>:3: linux_hz directive is no longer supported".to_string(),
                "<command line>:2: directive `smoothtime` is recognised but not implemented yet; it has no effect".to_string(),
            ]
        );
    }

    #[test]
    fn unresolvable_access_host_is_chronyds_parse_error() {
        let c = load_lines(&["rtcsync".into(), "Allow ntp.invalid".into()]).unwrap();
        let e = c.check_access_hosts(|_| false).unwrap_err();
        assert_eq!(
            e.chrony_message(),
            "Could not parse Allow directive at line 2"
        );
        assert!(c.check_access_hosts(|_| true).is_ok());
    }

    #[test]
    fn print_skips_include_and_keeps_sourcedir() {
        let c = load_lines(&[
            "sourcedir /nonexistent".into(),
            "include /nonexistent/*.conf".into(),
            "rtcsync".into(),
        ])
        .unwrap();
        assert_eq!(c.to_chrony_text(), "sourcedir /nonexistent\nrtcsync\n");
    }
}
