//! gnomond: the Gnomon time daemon (chronyd-compatible command line).
mod cli;
mod client;
mod clock;
mod command_socket;
mod control;
mod daemon;
mod directives;
mod keys; // keyfile, rekey
mod lint;
mod logging;
mod metrics;
mod ntp_server;
mod nts_ke; // NTS-KE server
mod os;
mod pidfile;
mod privileges;
mod reports;
mod responder;
mod scheduler;
mod statlog;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(daemon::main_with(&args));
}
