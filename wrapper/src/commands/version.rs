//! `cloudcode version`: version, commit and build date (set by build.rs).

pub fn run() {
    println!(
        "cloudcode {} (commit {}, built {})",
        env!("CARGO_PKG_VERSION"),
        env!("CLOUDCODE_COMMIT"),
        env!("CLOUDCODE_BUILD_DATE")
    );
}
