//! Links libsoxr when the `soxr` feature is on; nothing otherwise.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SOXR").is_some() {
        println!("cargo:rustc-link-lib=soxr");
    }
}
