//! Generates the tonic/prost code for our own `.proto` files (Terraform plugin protocol 6.8 and go-plugin's
//! controller/stdio/broker services) with the vendored `protoc`, so a fresh machine needs no system protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    // prost-build reads PROTOC/PROTOC_INCLUDE from the environment of the build script.
    std::env::set_var("PROTOC", &protoc);
    std::env::set_var("PROTOC_INCLUDE", &well_known);

    let dir = PathBuf::from("proto");
    let files = [
        dir.join("tfplugin6.proto"),
        dir.join("grpc_controller.proto"),
        dir.join("grpc_stdio.proto"),
        dir.join("grpc_broker.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    tonic_prost_build::configure()
        .build_server(true)
        // Clients are used by tests that play Terraform's part.
        .build_client(true)
        // Every RPC gets a default body returning UNIMPLEMENTED, as Terraform expects for optional RPCs.
        .generate_default_stubs(true)
        // These carry user configuration and state (passwords, keys): their Debug is hand-written in
        // src/proto.rs and prints sizes only.
        .skip_debug(["tfplugin6.DynamicValue", "tfplugin6.RawState"])
        .compile_protos(&files, &[dir, well_known])?;
    Ok(())
}
