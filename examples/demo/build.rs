//! Generates `shared_types.py` and `shared_types.h` for the demo's types into `OUT_DIR`. This is
//! the pattern to copy: shared types in a library crate, used here as a build-dependency.

fn main() -> Result<(), zeroipc_codegen::Error> {
    let generated = zeroipc_codegen::Builder::new()
        .add::<zeroipc_demo_types::Reading>()
        .generate()?;
    generated.write_to_out_dir()?;
    println!("cargo::rerun-if-changed=build.rs");
    Ok(())
}
