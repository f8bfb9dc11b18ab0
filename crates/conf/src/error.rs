//! Fatal configuration errors, worded exactly as chronyd 4.3 words them.
//!
//! Recorded from `chronyd -x -p -f FILE` (the text after chronyd's "Fatal error : " prefix):
//! - `Invalid directive at line N in file F`
//! - `Could not parse NAME directive at line N in file F` (NAME as written in the file)
//! - `Missing arguments for NAME directive at line N in file F`
//! - `Too many arguments for NAME directive at line N in file F`
//! - `Invalid log parameter at line N in file F`
//! - `Invalid refclock option at line N in file F`
//! - `String too long at line N in file F` (lines of 2047 bytes or more)
//! - `Could not open PATH : REASON` (strerror text, no location)
//! - `Maximum include level reached` (no location)
//!
//! For command-line directives chronyd omits " in file F". We append a hint in parentheses.

use crate::location::Location;
use std::fmt;

/// A fatal configuration error (chronyd exits with status 1 on these).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfError {
    /// Unknown directive name.
    InvalidDirective {
        location: Location,
        name: String,
        hint: Option<String>,
    },
    /// Arguments present but not acceptable.
    CouldNotParse {
        location: Location,
        directive: String,
        hint: Option<String>,
    },
    /// Fewer arguments than the directive needs.
    MissingArguments {
        location: Location,
        directive: String,
        hint: Option<String>,
    },
    /// More arguments than the directive takes.
    TooManyArguments {
        location: Location,
        directive: String,
        hint: Option<String>,
    },
    /// Unknown word after `log`.
    InvalidLogParameter {
        location: Location,
        parameter: String,
        hint: Option<String>,
    },
    /// Unknown or malformed option after a `refclock` driver.
    InvalidRefclockOption {
        location: Location,
        hint: Option<String>,
    },
    /// The line does not fit chronyd's 2048-byte line buffer.
    StringTooLong { location: Location },
    /// A configuration file (main or included) could not be read. `location` is the including
    /// line, or line 0 of the file itself for the main file.
    CouldNotOpen {
        location: Location,
        path: String,
        reason: String,
    },
    /// Includes nested deeper than chronyd's limit (10 files).
    MaxIncludeLevel { location: Location },
    /// Our own bound: a glob or confdir expanded to more files than we read (memory bound).
    TooManyFiles { location: Location, limit: usize },
}

impl ConfError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            ConfError::InvalidDirective { location, .. }
            | ConfError::CouldNotParse { location, .. }
            | ConfError::MissingArguments { location, .. }
            | ConfError::TooManyArguments { location, .. }
            | ConfError::InvalidLogParameter { location, .. }
            | ConfError::InvalidRefclockOption { location, .. }
            | ConfError::StringTooLong { location }
            | ConfError::CouldNotOpen { location, .. }
            | ConfError::MaxIncludeLevel { location }
            | ConfError::TooManyFiles { location, .. } => location,
        }
    }

    /// chronyd's message exactly, without our hint.
    pub fn chrony_message(&self) -> String {
        match self {
            ConfError::InvalidDirective { location, .. } => {
                format!("Invalid directive{}", location.chrony_suffix())
            }
            ConfError::CouldNotParse {
                location,
                directive,
                ..
            } => format!(
                "Could not parse {directive} directive{}",
                location.chrony_suffix()
            ),
            ConfError::MissingArguments {
                location,
                directive,
                ..
            } => format!(
                "Missing arguments for {directive} directive{}",
                location.chrony_suffix()
            ),
            ConfError::TooManyArguments {
                location,
                directive,
                ..
            } => format!(
                "Too many arguments for {directive} directive{}",
                location.chrony_suffix()
            ),
            ConfError::InvalidLogParameter { location, .. } => {
                format!("Invalid log parameter{}", location.chrony_suffix())
            }
            ConfError::InvalidRefclockOption { location, .. } => {
                format!("Invalid refclock option{}", location.chrony_suffix())
            }
            ConfError::StringTooLong { location } => {
                format!("String too long{}", location.chrony_suffix())
            }
            ConfError::CouldNotOpen { path, reason, .. } => {
                format!("Could not open {path} : {reason}")
            }
            ConfError::MaxIncludeLevel { .. } => "Maximum include level reached".to_string(),
            ConfError::TooManyFiles { location, limit } => format!(
                "Too many files to include (more than {limit}){}",
                location.chrony_suffix()
            ),
        }
    }

    /// Replace the hint (for variants that carry one).
    pub fn with_hint(mut self, new: String) -> Self {
        match &mut self {
            ConfError::InvalidDirective { hint, .. }
            | ConfError::CouldNotParse { hint, .. }
            | ConfError::MissingArguments { hint, .. }
            | ConfError::TooManyArguments { hint, .. }
            | ConfError::InvalidLogParameter { hint, .. }
            | ConfError::InvalidRefclockOption { hint, .. } => *hint = Some(new),
            _ => {}
        }
        self
    }

    /// Our fix hint, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfError::InvalidDirective { hint, .. }
            | ConfError::CouldNotParse { hint, .. }
            | ConfError::MissingArguments { hint, .. }
            | ConfError::TooManyArguments { hint, .. }
            | ConfError::InvalidLogParameter { hint, .. }
            | ConfError::InvalidRefclockOption { hint, .. } => hint.clone(),
            ConfError::MaxIncludeLevel { location } => Some(format!(
                "include chain too deep at {location}; chronyd allows 10 nested files (is a file including itself?)"
            )),
            ConfError::CouldNotOpen { location, .. } if location.line > 0 => {
                Some(format!("included from {location}"))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chrony_message())?;
        if let Some(h) = self.hint() {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn loc() -> Location {
        Location::new(Arc::from(Path::new("a.conf")), 3)
    }

    #[test]
    fn invalid_directive_reads_like_chronyd_plus_hint() {
        let e = ConfError::InvalidDirective {
            location: loc(),
            name: "schedrr".into(),
            hint: Some("did you mean `sched_priority`?".into()),
        };
        assert_eq!(
            e.to_string(),
            "Invalid directive at line 3 in file a.conf (did you mean `sched_priority`?)"
        );
        assert_eq!(
            e.chrony_message(),
            "Invalid directive at line 3 in file a.conf"
        );
    }

    #[test]
    fn could_not_open_has_no_location_in_chrony_text() {
        let e = ConfError::CouldNotOpen {
            location: Location::new(Arc::from(Path::new("/x.conf")), 0),
            path: "/x.conf".into(),
            reason: "No such file or directory".into(),
        };
        assert_eq!(
            e.to_string(),
            "Could not open /x.conf : No such file or directory"
        );
    }
}
