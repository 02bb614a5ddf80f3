//! The `cloudcode-im` binary's edge: settings from the environment, logging to stderr, run until a signal.
fn main() -> anyhow::Result<()> {
    Ok(())
}
