//! The TypeScript client's own suite (clients/typescript: type check, build, unit tests and
//! tests against this server's binary), run by `cargo test` so that one command runs every
//! test of the project. Needs Node.js and npm (and the npm registry for `npm ci`); without
//! them it says plainly that it skipped.

use std::process::Command;

#[test]
fn typescript_client_suite_passes() {
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: npm is not installed, so the TypeScript client's suite did not run");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("bash")
        .arg(format!("{root}/.ci/typescript"))
        .env("TIMEBANK_BIN", env!("CARGO_BIN_EXE_timebank-realtime"))
        .status()
        .expect("bash runs .ci/typescript");
    assert!(status.success(), "the TypeScript client's suite failed (its output is above)");
}
