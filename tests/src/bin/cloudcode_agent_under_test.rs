//! The `cloudcode-agent` binary, built inside the test crate so integration tests get it via CARGO_BIN_EXE_.
fn main() -> anyhow::Result<()> {
    cloudcode_agent::cli::main()
}
