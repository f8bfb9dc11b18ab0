//! gnomonc: the Gnomon control tool, a drop-in for chronyc 4.3 (features.md §1.4, §1.5, §3):
//! same options, command language, report layouts, CSV, status texts and exit codes, plus
//! `--json` output (docs/json.md).

mod c_number;
mod check;
mod client_pages;
mod command;
mod fmt;
mod help;
mod ntpdata;
mod session;
mod sources;
mod system;
mod transport;

use session::{CmdError, Mode, Session};
use std::io::{BufRead, IsTerminal, Write};
use transport::{Client, Family};

/// Tried in order: our daemon's socket, chrony's, then UDP on loopback.
const DEFAULT_HOSTS: &str = "/run/gnomond/gnomond.sock,/run/chrony/chronyd.sock,127.0.0.1,::1";

fn usage() -> String {
    format!(
        "Usage: gnomonc [OPTION]... [COMMAND]...

Options:
  -4\t\tUse IPv4 addresses only
  -6\t\tUse IPv6 addresses only
  -n\t\tDon't resolve hostnames
  -N\t\tPrint original source names
  -c\t\tEnable CSV format
      --json\tEnable JSON format (one document per command, see docs/json.md)
  -m\t\tAccept multiple commands
  -h HOST\tSpecify server ({DEFAULT_HOSTS})
  -p PORT\tSpecify UDP port (323)
  -v, --version\tPrint version and exit
      --help\tPrint usage and exit

Extra commands (not in chronyc):
  lint FILE\tCheck a chrony.conf file as chronyd would read it; prints the
\t\tfindings; exit 0 clean, 1 warnings only, 2 errors
  check [-w S] [-c S] [-s N] [-S N]
\t\tNagios plugin: offset warning/critical seconds (0.05/0.2), minimum
\t\tusable sources (2), maximum stratum (10); exit 0/1/2/3
"
    )
}

struct Options {
    hosts: String,
    port: u16,
    family: Family,
    numeric: bool,
    source_names: bool,
    mode: Mode,
    multi: bool,
    end_dot: bool,
    commands: Vec<String>,
}

enum ParseOutcome {
    Run(Options),
    Exit(i32),
}

fn parse_args(args: &[String]) -> ParseOutcome {
    let mut o = Options {
        hosts: DEFAULT_HOSTS.to_string(),
        port: 323,
        family: Family::Any,
        numeric: false,
        source_names: false,
        mode: Mode::Text,
        multi: false,
        end_dot: false,
        commands: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        match a {
            "--help" => {
                print!("{}", usage());
                return ParseOutcome::Exit(0);
            }
            "--version" => {
                println!("gnomonc (gnomon) version {}", env!("CARGO_PKG_VERSION"));
                return ParseOutcome::Exit(0);
            }
            "--json" => o.mode = Mode::Json,
            "--" => break,
            _ => {
                // Bundled short options, getopt style: `-nc`, `-p323`, `-h host`.
                let chars: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < chars.len() {
                    let c = chars[j];
                    j += 1;
                    match c {
                        '4' => o.family = Family::V4,
                        '6' => o.family = Family::V6,
                        'n' => o.numeric = true,
                        'N' => o.source_names = true,
                        'a' | 'd' => {}
                        'c' => o.mode = Mode::Csv,
                        'e' => o.end_dot = true,
                        'm' => o.multi = true,
                        'v' => {
                            println!("gnomonc (gnomon) version {}", env!("CARGO_PKG_VERSION"));
                            return ParseOutcome::Exit(0);
                        }
                        'h' | 'p' | 'f' => {
                            let rest: String = chars[j..].iter().collect();
                            let val = if !rest.is_empty() {
                                rest
                            } else if i < args.len() {
                                i += 1;
                                args[i - 1].clone()
                            } else {
                                eprintln!("gnomonc: option requires an argument -- '{c}'");
                                eprint!("{}", usage());
                                return ParseOutcome::Exit(1);
                            };
                            match c {
                                'h' => o.hosts = val,
                                // chronyc reads the port with atoi() and keeps its low 16
                                // bits: `-p x` is port 0, `-p 99999` is port 34463.
                                'p' => o.port = c_number::c_atoi(&val) as u16,
                                _ => {}
                            }
                            j = chars.len();
                        }
                        _ => {
                            eprintln!("gnomonc: invalid option -- '{c}'");
                            print!("{}", usage());
                            return ParseOutcome::Exit(1);
                        }
                    }
                }
            }
        }
    }
    o.commands = args[i..].to_vec();
    ParseOutcome::Run(o)
}

/// Writes out what the current command printed so far.
pub fn flush(s: &mut Session) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.out.as_bytes());
    let _ = out.flush();
    s.out.clear();
}

/// Runs one command line; prints its output and error. Returns success and whether to quit.
fn execute(s: &mut Session, line: &str, end_dot: bool) -> (bool, bool) {
    let result = command::run(s, line);
    flush(s);
    let ok = match &result {
        Ok(_) => true,
        Err(e) => {
            match e {
                CmdError::Silent => {}
                e if e.to_stderr() => eprintln!("{}", e.message()),
                e => println!("{}", e.message()),
            }
            false
        }
    };
    if end_dot {
        println!(".");
    }
    (ok, matches!(result, Ok(command::Flow::Quit)))
}

/// `gnomonc lint FILE`: 0 clean, 1 warnings only, 2 errors (or unreadable file).
fn lint(args: &[String]) -> i32 {
    let [file] = args else {
        eprintln!("Usage: gnomonc lint FILE");
        return 2;
    };
    let report = gnomon_conf::lint::lint_file(std::path::Path::new(file));
    print!("{report}");
    if report.has_errors() {
        2
    } else if report.findings.is_empty() {
        0
    } else {
        1
    }
}

/// Current Unix time in seconds (for `settime HH:MM`, which means today).
#[allow(clippy::disallowed_methods)]
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[allow(clippy::disallowed_methods)] // the one place that seeds sequence numbers from the clock
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse_args(&args) {
        ParseOutcome::Run(o) => o,
        ParseOutcome::Exit(code) => std::process::exit(code),
    };
    if o.commands.first().map(String::as_str) == Some("lint") {
        std::process::exit(lint(&o.commands[1..]));
    }
    let targets: Vec<String> = o
        .hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    let Some(client) = Client::open(&targets, o.port, o.family, seed()) else {
        eprintln!("Could not open connection to daemon");
        std::process::exit(1);
    };
    let mut s = Session::new(Some(client), o.mode, o.numeric);
    s.source_names = o.source_names;
    if o.commands.first().map(String::as_str) == Some("check") {
        let words: Vec<&str> = o.commands[1..].iter().map(String::as_str).collect();
        let code = match check::parse(&words) {
            Some(t) => check::run(&mut s, &t),
            None => {
                eprint!("{}", check::CHECK_USAGE);
                3
            }
        };
        drop(s);
        std::process::exit(code);
    }
    let code = if !o.commands.is_empty() {
        let lines = if o.multi {
            o.commands.clone()
        } else {
            vec![o.commands.join(" ")]
        };
        let mut ok = true;
        for l in &lines {
            let (good, quit) = execute(&mut s, l, o.end_dot);
            ok = good;
            if !good || quit {
                break;
            }
        }
        i32::from(!ok)
    } else {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let mut last_ok = true;
        let mut line = String::new();
        loop {
            if interactive {
                print!("gnomonc> ");
                let _ = std::io::stdout().flush();
            }
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let (good, quit) = execute(&mut s, line.trim(), o.end_dot);
            last_ok = good;
            if quit {
                break;
            }
        }
        i32::from(!last_ok)
    };
    drop(s);
    std::process::exit(code);
}
