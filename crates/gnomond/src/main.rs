//! gnomond: the Gnomon time daemon (chronyd-compatible command line).
mod cli;
mod clock;
mod daemon;
mod directives;
mod lint;
mod logging;
mod ntp_server;
mod os;
mod pidfile;
mod privileges;
mod responder;
mod scheduler;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(daemon::main_with(&args));
}
