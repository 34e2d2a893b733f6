//! Whether clang runs on this machine, for the tests of what clang emits: without it they
//! are marked ignored ("skipped: clang not found"), so `cargo test` reports them as not run
//! instead of passed. With `SMF_REQUIRE_CLANG` set (as `.ci/run` does) they are not ignored,
//! and a missing clang fails them.
//!
//! Tests built for another architecture than the build machine's (`cross_target`, the aarch64
//! tests run under qemu) mark what an emulator cannot do as ignored with the reason: valgrind,
//! and clang, which builds for the machine it runs on.
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_clang)");
    println!("cargo::rustc-check-cfg=cfg(cross_target)");
    if std::env::var("TARGET").ok() != std::env::var("HOST").ok() {
        println!("cargo::rustc-cfg=cross_target");
    }
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
