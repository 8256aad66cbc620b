//! Tells the tests whether the shared Chainhook fixtures sit beside the checkout: tests
//! that read them are marked ignored ("../shared/fixtures not present") on a fresh clone
//! without them, so `cargo test` says plainly what it skipped.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_fixtures)");
    println!("cargo::rerun-if-changed=../shared/fixtures/chainhook");
    println!("cargo::rerun-if-changed=build.rs");
    if std::path::Path::new("../shared/fixtures/chainhook").is_dir() {
        println!("cargo::rustc-cfg=shared_fixtures");
    }
}
