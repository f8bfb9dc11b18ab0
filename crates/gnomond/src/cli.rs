//! gnomond's command line, parsed the way chronyd 4.3 parses its own (getopt with the option
//! string `46df:F:hl:L:mnpP:qQrRst:u:UvxX:`, GNU argument permutation, `--` ending options,
//! `--help`/`--version` recognised anywhere): same options, usage text layout, messages and
//! exit codes. Our additions: `--lint` (check the configuration and exit) and the hidden
//! `-X offset=S,freq=PPM` (start the `-x` null clock with an artificial error, for tests).

use crate::clock::NullClockStart;

/// The configuration file read when neither `-f` nor directives are given (chrony's, so that
/// gnomond is a drop-in replacement).
pub const DEFAULT_CONFIG: &str = "/etc/chrony/chrony.conf";
/// The user to drop to when neither `-u` nor `user` says otherwise (Debian's chrony user).
pub const DEFAULT_USER: &str = "_chrony";

/// Which address family `-4`/`-6` restrict the daemon to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `-4`: IPv4 only.
    V4,
    /// `-6`: IPv6 only.
    V6,
}

/// Everything the command line asks for when the daemon is to run (or print its config).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// `-f FILE`.
    pub config_file: Option<String>,
    /// Number of `-d` given (1: foreground and stderr; 2: also debug messages).
    pub debug: u8,
    /// `-n`: don't detach.
    pub no_detach: bool,
    /// `-x`: never touch the system clock.
    pub no_clock: bool,
    /// `-p`: print the configuration and exit.
    pub print_config: bool,
    /// `-q` / `-Q`: set the clock (or only log the offset) and exit. Not supported yet.
    pub one_shot: Option<char>,
    /// `-4` / `-6`.
    pub family: Option<Family>,
    /// `-L LEVEL` (0 informational, 1 warning, 2 error, 3 fatal only).
    pub log_level: i32,
    /// `-l FILE`.
    pub log_file: Option<String>,
    /// `-P PRIORITY` (SCHED_FIFO priority, 0 = don't change).
    pub priority: i32,
    /// `-u USER`.
    pub user: Option<String>,
    /// `-U`: don't insist on starting as root.
    pub no_root_check: bool,
    /// `-m`: lock memory.
    pub lock_memory: bool,
    /// `-F LEVEL`: system call filter level (not supported; non-zero is warned about).
    pub filter_level: i32,
    /// `-t SECONDS`: exit after this long.
    pub timeout: Option<i32>,
    /// `-r`: reload dump files.
    pub reload_dumps: bool,
    /// `-R`: adapt configuration for restart.
    pub restart: bool,
    /// `-s`: set the clock from the RTC.
    pub rtc_set: bool,
    /// `-X offset=S,freq=PPM` (hidden).
    pub null_clock: NullClockStart,
    /// Trailing arguments: configuration directives that replace the configuration file.
    pub directives: Vec<String>,
}

/// What the command line asks gnomond to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h` / `--help`: print usage to stdout, exit 0.
    Help,
    /// `-v` / `--version`: print the version line, exit 0.
    Version,
    /// `--lint`: check the configuration and exit 0 (clean), 1 (warnings) or 2 (errors).
    Lint(Options),
    /// Run the daemon (or print the configuration with `-p`).
    Run(Options),
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// An option letter gnomond does not know: "invalid option -- 'Z'" and the usage, exit 1.
    InvalidOption(char),
    /// An option that needs an argument came last: "option requires an argument -- 'L'".
    MissingArgument(char),
    /// An option argument that is not what the option takes: "Invalid argument abc" (fatal).
    InvalidArgument(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::InvalidOption(c) => write!(f, "invalid option -- '{c}'"),
            CliError::MissingArgument(c) => write!(f, "option requires an argument -- '{c}'"),
            CliError::InvalidArgument(a) => write!(f, "Invalid argument {a}"),
        }
    }
}

impl std::error::Error for CliError {}

/// Option letters that take an argument.
const WITH_ARGUMENT: &str = "fFlLPtuX";
/// Option letters that stand alone.
const FLAGS: &str = "46dhmnpqQrRsUvx";

/// The usage text (`-h`, `--help`, and after an invalid option), laid out as chronyd's.
pub fn usage() -> String {
    format!(
        "Usage: gnomond [OPTION]... [DIRECTIVE]...\n\
         \n\
         Options:\n\
         \x20 -4\t\tUse IPv4 addresses only\n\
         \x20 -6\t\tUse IPv6 addresses only\n\
         \x20 -f FILE\tSpecify configuration file ({DEFAULT_CONFIG})\n\
         \x20 -n\t\tDon't run as daemon\n\
         \x20 -d\t\tDon't run as daemon and log to stderr\n\
         \x20 -l FILE\tLog to file\n\
         \x20 -L LEVEL\tSet logging threshold (0)\n\
         \x20 -p\t\tPrint configuration and exit\n\
         \x20 -q\t\tSet clock and exit\n\
         \x20 -Q\t\tLog offset and exit\n\
         \x20 -r\t\tReload dump files\n\
         \x20 -R\t\tAdapt configuration for restart\n\
         \x20 -s\t\tSet clock from RTC\n\
         \x20 -t SECONDS\tExit after elapsed time\n\
         \x20 -u USER\tSpecify user ({DEFAULT_USER})\n\
         \x20 -U\t\tDon't check for root\n\
         \x20 -F LEVEL\tSet system call filter level (0)\n\
         \x20 -P PRIORITY\tSet process priority (0)\n\
         \x20 -m\t\tLock memory\n\
         \x20 -x\t\tDon't control clock\n\
         \x20 --lint\tCheck configuration and exit\n\
         \x20 -v, --version\tPrint version and exit\n\
         \x20 -h, --help\tPrint usage and exit\n"
    )
}

/// Compile-time features, in chronyd's `-v` style: `+` built in, `-` not (yet).
pub const FEATURES: &str =
    "+CMDMON +NTP -REFCLOCK -RTC +PRIVDROP -SCFILTER -SIGND +ASYNCDNS +NTS +SECHASH +IPV6 -DEBUG";

/// The `-v` line.
pub fn version_line() -> String {
    format!(
        "gnomond (gnomon) version {} ({FEATURES})",
        env!("CARGO_PKG_VERSION")
    )
}

/// chronyd reads integer option arguments with sscanf("%d"): leading digits count, trailing
/// junk is ignored, no digits at all is an error.
fn int_argument(text: &str) -> Result<i32, CliError> {
    let trimmed = text.trim_start();
    let (sign, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (-1i64, &trimmed[1..]),
        Some(b'+') => (1, &trimmed[1..]),
        _ => (1, trimmed),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return Err(CliError::InvalidArgument(text.to_string()));
    }
    let value: i64 = digits[..end]
        .parse()
        .map_err(|_| CliError::InvalidArgument(text.to_string()))?;
    i32::try_from(sign * value).map_err(|_| CliError::InvalidArgument(text.to_string()))
}

/// Parses the arguments after the program name.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, CliError> {
    // chronyd looks for the long options before getopt sees anything.
    for arg in args {
        match arg.as_ref() {
            "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            _ => {}
        }
    }
    let mut opts = Options::default();
    let mut lint = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        if arg == "--" {
            opts.directives
                .extend(args[i..].iter().map(|a| a.as_ref().to_string()));
            break;
        }
        if arg == "--lint" {
            lint = true;
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            opts.directives.push(arg.to_string());
            continue;
        }
        let letters = &arg[1..];
        for (pos, c) in letters.char_indices() {
            if WITH_ARGUMENT.contains(c) {
                let rest = &letters[pos + c.len_utf8()..];
                let value = if !rest.is_empty() {
                    rest.to_string()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].as_ref().to_string()
                } else {
                    return Err(CliError::MissingArgument(c));
                };
                match c {
                    'f' => opts.config_file = Some(value),
                    'F' => opts.filter_level = int_argument(&value)?,
                    'l' => opts.log_file = Some(value),
                    'L' => opts.log_level = int_argument(&value)?,
                    'P' => opts.priority = int_argument(&value)?,
                    't' => opts.timeout = Some(int_argument(&value)?),
                    'u' => opts.user = Some(value),
                    _ => {
                        opts.null_clock = NullClockStart::parse(&value)
                            .map_err(|_| CliError::InvalidArgument(value.clone()))?
                    }
                }
                break;
            }
            if !FLAGS.contains(c) {
                return Err(CliError::InvalidOption(c));
            }
            match c {
                '4' => opts.family = Some(Family::V4),
                '6' => opts.family = Some(Family::V6),
                'd' => opts.debug = opts.debug.saturating_add(1),
                'h' => return Ok(Command::Help),
                'm' => opts.lock_memory = true,
                'n' => opts.no_detach = true,
                'p' => opts.print_config = true,
                'q' | 'Q' => opts.one_shot = Some(c),
                'r' => opts.reload_dumps = true,
                'R' => opts.restart = true,
                's' => opts.rtc_set = true,
                'U' => opts.no_root_check = true,
                'v' => return Ok(Command::Version),
                _ => opts.no_clock = true,
            }
        }
    }
    Ok(if lint {
        Command::Lint(opts)
    } else {
        Command::Run(opts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_help_and_version_win_anywhere() {
        assert_eq!(parse(&["-Z", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-x", "--version"]), Ok(Command::Version));
    }

    #[test]
    fn short_version_stops_parsing() {
        assert_eq!(parse(&["-xv", "-Z"]), Ok(Command::Version));
        assert_eq!(parse(&["-Z", "-v"]), Err(CliError::InvalidOption('Z')));
    }

    #[test]
    fn bundled_flags_and_attached_arguments() {
        let o = run(&["-xd", "-f/tmp/a.conf", "-L", "2", "-d"]);
        assert!(o.no_clock);
        assert_eq!(o.debug, 2);
        assert_eq!(o.config_file.as_deref(), Some("/tmp/a.conf"));
        assert_eq!(o.log_level, 2);
    }

    #[test]
    fn options_after_directives_are_still_options() {
        let o = run(&["-p", "port 5", "-f", "/dev/null", "allow 1.2.3.4"]);
        assert!(o.print_config);
        assert_eq!(o.config_file.as_deref(), Some("/dev/null"));
        assert_eq!(o.directives, vec!["port 5", "allow 1.2.3.4"]);
    }

    #[test]
    fn double_dash_ends_options() {
        let o = run(&["-p", "--", "-x"]);
        assert!(!o.no_clock);
        assert_eq!(o.directives, vec!["-x"]);
    }

    #[test]
    fn missing_and_invalid_arguments_are_errors() {
        assert_eq!(parse(&["-L"]), Err(CliError::MissingArgument('L')));
        assert_eq!(
            parse(&["-L", "abc"]),
            Err(CliError::InvalidArgument("abc".into()))
        );
        assert_eq!(
            CliError::InvalidOption('Z').to_string(),
            "invalid option -- 'Z'"
        );
    }

    #[test]
    fn integer_arguments_read_like_sscanf() {
        assert_eq!(run(&["-t", "1.5"]).timeout, Some(1));
        assert_eq!(run(&["-P", "-5"]).priority, -5);
        assert_eq!(run(&["-L", "9x"]).log_level, 9);
    }

    #[test]
    fn last_family_option_wins() {
        assert_eq!(run(&["-4", "-6"]).family, Some(Family::V6));
    }

    #[test]
    fn lint_and_null_clock_start() {
        match parse(&["--lint", "-f", "x.conf"]) {
            Ok(Command::Lint(o)) => assert_eq!(o.config_file.as_deref(), Some("x.conf")),
            other => panic!("{other:?}"),
        }
        let o = run(&["-x", "-X", "offset=0.5,freq=50"]);
        assert_eq!(o.null_clock.offset, 0.5);
        assert_eq!(
            parse(&["-X", "bogus=1"]),
            Err(CliError::InvalidArgument("bogus=1".into()))
        );
    }

    #[test]
    fn usage_matches_chronyd_layout() {
        let u = usage();
        assert!(u.starts_with("Usage: gnomond [OPTION]... [DIRECTIVE]...\n\nOptions:\n  -4\t\t"));
        assert!(u.contains("  -t SECONDS\tExit after elapsed time\n"));
        assert!(u.ends_with("  -h, --help\tPrint usage and exit\n"));
    }
}
