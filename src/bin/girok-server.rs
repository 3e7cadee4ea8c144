//! The girok server binary (being written).
fn main() {
    eprintln!("girok-server: not built yet");
    std::process::exit(1);
}
