//! Where a configuration line came from: file and 1-based line number.
//!
//! chronyd names errors "at line N in file F" for files and "at line N" for directives given on
//! its command line; [`Location::chrony_suffix`] reproduces both.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Pseudo file name used for directives given as command-line arguments.
pub const COMMAND_LINE: &str = "<command line>";

/// A file and a 1-based line number (0 when the error concerns the whole file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<Path>,
    pub line: usize,
}

impl Location {
    pub fn new(file: Arc<Path>, line: usize) -> Self {
        Location { file, line }
    }

    /// Location of the `line`-th command-line directive.
    pub fn command_line(line: usize) -> Self {
        Location {
            file: Arc::from(Path::new(COMMAND_LINE)),
            line,
        }
    }

    pub fn is_command_line(&self) -> bool {
        self.file.as_os_str() == COMMAND_LINE
    }

    /// chronyd's wording: " at line N in file F" (or " at line N" on the command line).
    pub fn chrony_suffix(&self) -> String {
        if self.is_command_line() {
            format!(" at line {}", self.line)
        } else {
            format!(" at line {} in file {}", self.line, self.file.display())
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_file_colon_line() {
        let l = Location::new(Arc::from(Path::new("/etc/chrony.conf")), 7);
        assert_eq!(l.to_string(), "/etc/chrony.conf:7");
        assert_eq!(l.chrony_suffix(), " at line 7 in file /etc/chrony.conf");
    }

    #[test]
    fn command_line_suffix_has_no_file() {
        assert_eq!(Location::command_line(2).chrony_suffix(), " at line 2");
    }
}
