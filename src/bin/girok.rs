//! The girok command-line client (being written).
fn main() {
    eprintln!("girok: not built yet");
    std::process::exit(1);
}
