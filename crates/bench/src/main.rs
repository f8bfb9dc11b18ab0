//! gnomon-bench: NTP load generator, bare responder and the side-by-side benchmark against chronyd.
fn main() {
    eprintln!("gnomon-bench: under construction");
    std::process::exit(1);
}
