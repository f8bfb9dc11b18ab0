//! gnomond: the Gnomon time daemon (chronyd-compatible command line).
fn main() {
    eprintln!("gnomond: under construction");
    std::process::exit(1);
}
