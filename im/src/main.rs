//! The `cloudcode-im` binary: everything is in the library's `cli` module.
fn main() -> anyhow::Result<()> {
    cloudcode_im::cli::main()
}
