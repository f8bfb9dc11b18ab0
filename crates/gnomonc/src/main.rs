//! gnomonc: the Gnomon control tool (chronyc-compatible command line).
fn main() {
    eprintln!("gnomonc: under construction");
    std::process::exit(1);
}
