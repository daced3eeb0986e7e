//! The Tracing lab's demo: `cargo run -p lab-tracing`.
fn main() {}
