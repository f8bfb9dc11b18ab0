//! Reading configuration files: `include` globs, `confdir`, `sourcedir`, depth and size bounds.
//!
//! chronyd 4.3 behaviour reproduced here (checked with `chronyd -p`):
//! - `include PATTERN`: a pattern without glob characters must open ("Could not open F : …"),
//!   a glob that matches nothing is silently empty; matches are read in sorted order.
//! - `confdir DIR...`: `*.conf` files of all directories, sorted by file name, the first
//!   directory winning when two have the same name; a missing directory is ignored. The
//!   `include`/`confdir` lines themselves are not printed by `-p`.
//! - `sourcedir DIR...`: printed by `-p` but its `*.sources` files are read later by chronyd (at
//!   start and on `reload sources`); we read them after the main file and mark the entries.
//! - at most 10 nested files ("Maximum include level reached").
//!
//! Our own bounds: files over 16 MiB and more than 1000 files in total are refused.

use crate::error::ConfError;
use crate::location::Location;
use crate::parse::parse_line;
use crate::{Config, Directive, Entry};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Deepest file nesting chronyd accepts: the main file is level 0, level 10 is fatal.
pub const MAX_INCLUDE_LEVEL: usize = 9;
/// Largest file we read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most files one configuration may consist of.
pub const MAX_FILES: usize = 1000;

/// Directives allowed in `sourcedir` files.
const SOURCE_DIRECTIVES: &[&str] = &["server", "pool", "peer", "refclock"];

/// Most errors a tolerant load collects.
const MAX_ERRORS: usize = 100;

struct Loader {
    entries: Vec<Entry>,
    ignored: Vec<ConfError>,
    /// `Some` in tolerant mode: errors are collected and the line skipped.
    errors: Option<Vec<ConfError>>,
    files: usize,
    sourcedirs: Vec<(Location, Vec<PathBuf>)>,
}

/// Load a configuration file and everything it includes.
pub fn load_file(path: &Path) -> Result<Config, ConfError> {
    let mut l = Loader::new();
    let at = Location::new(Arc::from(path), 0);
    l.file(path, &at, 0, false)?;
    l.finish()
}

/// Parse directives given as separate lines (chronyd's command-line form: each argument is one
/// line, the configuration file is not read). Includes are followed.
pub fn load_lines(lines: &[String]) -> Result<Config, ConfError> {
    let mut l = Loader::new();
    for (i, line) in lines.iter().enumerate() {
        l.line(line, Location::command_line(i + 1), 0, false)?;
    }
    l.finish()
}

/// Parse configuration text as if it were the file `name` (includes are followed on disk).
pub fn load_str(text: &str, name: &Path) -> Result<Config, ConfError> {
    let mut l = Loader::new();
    let file: Arc<Path> = Arc::from(name);
    l.text(text, &file, 0, false)?;
    l.finish()
}

/// Load like [`load_file`] but skip bad lines, collecting every fatal error (for `lint`, which
/// reports all of them, not just the first one that stops chronyd).
pub fn load_file_tolerant(path: &Path) -> (Config, Vec<ConfError>) {
    let mut l = Loader::new();
    l.errors = Some(Vec::new());
    let at = Location::new(Arc::from(path), 0);
    // In tolerant mode every error is collected, so these calls cannot fail.
    let _ = l.file(path, &at, 0, false);
    l.finish_tolerant()
}

/// [`load_lines`] in tolerant mode: bad lines are skipped and every fatal error collected.
pub fn load_lines_tolerant(lines: &[String]) -> (Config, Vec<ConfError>) {
    let mut l = Loader::new();
    l.errors = Some(Vec::new());
    for (i, line) in lines.iter().enumerate() {
        // In tolerant mode every error is collected, so these calls cannot fail.
        let _ = l.line(line, Location::command_line(i + 1), 0, false);
    }
    l.finish_tolerant()
}

impl Loader {
    /// Ends a tolerant load: reads the sourcedir files, then hands back the directives kept
    /// and every fatal error collected.
    fn finish_tolerant(mut self) -> (Config, Vec<ConfError>) {
        let _ = self.sourcedir_files();
        let errors = self.errors.take().unwrap_or_default();
        (
            Config {
                entries: self.entries,
                ignored: self.ignored,
            },
            errors,
        )
    }

    /// A skipped sourcedir line (bounded like the error list).
    fn ignore(&mut self, e: ConfError) {
        if self.ignored.len() < MAX_ERRORS {
            self.ignored.push(e);
        }
    }

    /// Fatal error: returned, or recorded in tolerant mode.
    fn fail(&mut self, e: ConfError) -> Result<(), ConfError> {
        match &mut self.errors {
            Some(v) => {
                if v.len() < MAX_ERRORS {
                    v.push(e);
                }
                Ok(())
            }
            None => Err(e),
        }
    }

    fn new() -> Self {
        Loader {
            entries: Vec::new(),
            ignored: Vec::new(),
            errors: None,
            files: 0,
            sourcedirs: Vec::new(),
        }
    }

    /// Read the `*.sources` files of every `sourcedir` seen.
    fn sourcedir_files(&mut self) -> Result<(), ConfError> {
        let dirs = std::mem::take(&mut self.sourcedirs);
        for (at, list) in dirs {
            for f in dir_files(&list, "sources") {
                self.file(&f, &at, 1, true)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, ConfError> {
        self.sourcedir_files()?;
        Ok(Config {
            entries: self.entries,
            ignored: self.ignored,
        })
    }

    fn file(
        &mut self,
        path: &Path,
        at: &Location,
        depth: usize,
        sources_only: bool,
    ) -> Result<(), ConfError> {
        if depth > MAX_INCLUDE_LEVEL {
            return self.fail(ConfError::MaxIncludeLevel {
                location: at.clone(),
            });
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return self.fail(ConfError::TooManyFiles {
                location: at.clone(),
                limit: MAX_FILES,
            });
        }
        let open_err = |reason: String| ConfError::CouldNotOpen {
            location: at.clone(),
            path: path.display().to_string(),
            reason,
        };
        let bytes = match std::fs::metadata(path) {
            // chronyd opens a directory fine and reads no line from it.
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(m) if m.len() > MAX_FILE_BYTES => Err("File too large".to_string()),
            Ok(_) => std::fs::read(path).map_err(|e| strerror(&e)),
            Err(e) => Err(strerror(&e)),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(reason) => return self.fail(open_err(reason)),
        };
        let text = String::from_utf8_lossy(&bytes);
        let file: Arc<Path> = Arc::from(path);
        self.text(&text, &file, depth, sources_only)
    }

    fn text(
        &mut self,
        text: &str,
        file: &Arc<Path>,
        depth: usize,
        sources_only: bool,
    ) -> Result<(), ConfError> {
        for (i, line) in text.split('\n').enumerate() {
            let loc = Location::new(file.clone(), i + 1);
            self.line(line, loc, depth, sources_only)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        line: &str,
        loc: Location,
        depth: usize,
        sources_only: bool,
    ) -> Result<(), ConfError> {
        let parsed = match parse_line(line, &loc) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            // chronyd 4.3 skips bad lines of sourcedir files silently (checked with chronyc
            // sources on a live daemon); the configuration proper is fatal.
            Err(e) if sources_only => {
                self.ignore(e);
                return Ok(());
            }
            Err(e) => return self.fail(e),
        };
        if sources_only && !SOURCE_DIRECTIVES.contains(&parsed.directive.name()) {
            self.ignore(ConfError::InvalidDirective {
                location: loc,
                name: parsed.directive.name().to_string(),
                hint: Some(
                    "only server, pool, peer and refclock lines are used from sourcedir files"
                        .to_string(),
                ),
            });
            return Ok(());
        }
        let follow = match &parsed.directive {
            Directive::Include(p) => Some(Follow::Include(p.clone())),
            Directive::ConfDir(d) => Some(Follow::ConfDir(d.clone())),
            Directive::SourceDir(d) => {
                self.sourcedirs.push((loc.clone(), d.clone()));
                None
            }
            _ => None,
        };
        self.entries.push(Entry {
            location: loc.clone(),
            directive: parsed.directive,
            text: parsed.text,
            from_sourcedir: sources_only,
        });
        match follow {
            Some(Follow::Include(pattern)) => {
                for f in expand_include(&pattern) {
                    self.file(&f, &loc, depth + 1, false)?;
                }
            }
            Some(Follow::ConfDir(dirs)) => {
                for f in dir_files(&dirs, "conf") {
                    self.file(&f, &loc, depth + 1, false)?;
                }
            }
            None => {}
        }
        Ok(())
    }
}

enum Follow {
    Include(String),
    ConfDir(Vec<PathBuf>),
}

/// Files an `include` pattern names, in glob (sorted) order; at most [`MAX_FILES`] + 1.
fn expand_include(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?', '[']) {
        return vec![PathBuf::from(pattern)];
    }
    let Ok(paths) = glob::glob(pattern) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).take(MAX_FILES + 1).collect();
    v.sort();
    v
}

/// `*.EXT` files from `dirs`, first directory winning per name, sorted by name.
fn dir_files(dirs: &[PathBuf], ext: &str) -> Vec<PathBuf> {
    let mut by_name: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok).take(MAX_FILES + 1) {
            let name = e.file_name();
            let p = dir.join(&name);
            if p.extension().is_some_and(|x| x == ext) && !name.to_string_lossy().starts_with('.') {
                by_name.entry(name).or_insert(p);
            }
            if by_name.len() > MAX_FILES {
                break;
            }
        }
    }
    by_name.into_values().collect()
}

/// The C library's strerror text for an I/O error (Rust appends " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gnomon-conf-load-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_main_file_reports_strerror() {
        let e = load_file(Path::new("/nonexistent/gnomon.conf")).unwrap_err();
        assert_eq!(
            e.chrony_message(),
            "Could not open /nonexistent/gnomon.conf : No such file or directory"
        );
    }

    #[test]
    fn include_and_confdir_expand_in_chronyd_order() {
        let d = tmpdir("inc");
        std::fs::create_dir_all(d.join("d1")).unwrap();
        std::fs::create_dir_all(d.join("d2")).unwrap();
        std::fs::write(d.join("d1/b.conf"), "manual\n").unwrap();
        std::fs::write(d.join("d2/a.conf"), "rtcsync\n").unwrap();
        std::fs::write(d.join("d2/b.conf"), "lock_all\n").unwrap();
        std::fs::write(d.join("d1/c.txt"), "noclientlog\n").unwrap();
        std::fs::write(d.join("i1.conf"), "port 1\n").unwrap();
        std::fs::write(d.join("i2.conf"), "port 2\n").unwrap();
        let main = format!(
            "include {0}/i*.conf\ninclude {0}/none*.conf\ninclude {0}/d1\ninclude {0}/[\nconfdir {0}/d1 {0}/d2 {0}/missing\n",
            d.display()
        );
        std::fs::write(d.join("main.conf"), main).unwrap();
        let c = load_file(&d.join("main.conf")).unwrap();
        assert_eq!(c.to_chrony_text(), "port 1\nport 2\nrtcsync\nmanual\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn self_include_hits_the_level_limit() {
        let d = tmpdir("self");
        let f = d.join("self.conf");
        std::fs::write(&f, format!("include {}\n", f.display())).unwrap();
        let e = load_file(&f).unwrap_err();
        assert_eq!(e.chrony_message(), "Maximum include level reached");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn error_in_included_file_names_that_file() {
        let d = tmpdir("bad");
        std::fs::write(d.join("bad.conf"), "rtcsync\nfoo 1\n").unwrap();
        std::fs::write(
            d.join("main.conf"),
            format!("\ninclude {}/bad.conf\n", d.display()),
        )
        .unwrap();
        let e = load_file(&d.join("main.conf")).unwrap_err();
        assert_eq!(
            e.chrony_message(),
            format!(
                "Invalid directive at line 2 in file {}/bad.conf",
                d.display()
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn sourcedir_is_printed_but_its_sources_are_loaded() {
        let d = tmpdir("src");
        std::fs::write(
            d.join("a.sources"),
            "server 192.0.2.1 iburst\nrtcsync\nserver x foo\n",
        )
        .unwrap();
        std::fs::write(d.join("main.conf"), format!("sourcedir {}\n", d.display())).unwrap();
        let c = load_file(&d.join("main.conf")).unwrap();
        assert_eq!(c.to_chrony_text(), format!("sourcedir {}\n", d.display()));
        assert_eq!(c.settings().sources.len(), 1);
        assert_eq!(c.ignored.len(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn command_line_errors_have_no_file() {
        let e = load_lines(&["rtcsync".into(), "server a minpoll x".into()]).unwrap_err();
        assert_eq!(
            e.chrony_message(),
            "Could not parse server directive at line 2"
        );
    }
}
