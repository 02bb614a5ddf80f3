//! The `cloudcode-agent` binary: everything is in the library's `cli` module.
fn main() -> anyhow::Result<()> {
    cloudcode_agent::cli::main()
}
