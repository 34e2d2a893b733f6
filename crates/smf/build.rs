//! Whether clang runs on this machine, for the tests of what clang emits: without it they
//! are marked ignored ("skipped: clang not found"), so `cargo test` reports them as not run
//! instead of passed. With `SMF_REQUIRE_CLANG` set (as `.ci/run` does) they are not ignored,
//! and a missing clang fails them.
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_clang)");
    println!("cargo::rerun-if-env-changed=SMF_REQUIRE_CLANG");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let runs = |compiler: &str| {
        Command::new(compiler)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = runs("clang") && runs("clang++");
    if !found && std::env::var_os("SMF_REQUIRE_CLANG").is_none() {
        println!("cargo::rustc-cfg=no_clang");
    }
}
