//! The cloudcode provider: resources, data sources and functions on top of the tfplugin layer.

pub mod data_sources;
pub mod functions;
pub mod progress;
pub mod provider;
pub mod resources;

pub use provider::Cloudcode;

/// Runs the provider binary: logging on stderr, then the plugin server. Nothing but the handshake line is
/// ever written to stdout. Shared by the released binary and the test harness' copy of it.
pub fn run() -> std::process::ExitCode {
    use std::process::ExitCode;
    cloudcode_tfplugin::logging::init(provider::NAME);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-cloudcode: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cloudcode_tfplugin::serve(Cloudcode::new())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
