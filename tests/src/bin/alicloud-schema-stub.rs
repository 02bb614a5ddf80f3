//! `alicloud-schema-stub`: the schema-only stand-in for `aliyun/alicloud` 1.289.0 that the harness installs in
//! the filesystem mirror (see `cloudcode_tests::alicloud_stub`). Run by Terraform, never by hand.

use std::process::ExitCode;

use cloudcode_tests::alicloud_stub::{schema_path, AlicloudStub};

fn main() -> ExitCode {
    cloudcode_tfplugin::logging::init("alicloud");
    let path = schema_path();
    let stub = match AlicloudStub::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alicloud-schema-stub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("alicloud-schema-stub: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cloudcode_tfplugin::serve_service("alicloud", stub)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alicloud-schema-stub: {e}");
            ExitCode::FAILURE
        }
    }
}
