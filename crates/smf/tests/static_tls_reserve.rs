//! How modules with a static thread-local block (initial-exec code) use glibc's static TLS
//! reserve (docs/RUNTIME.md, "Thread-local storage"). Its own test binary: the second test
//! uses the reserve up, which would make other static-block tests of the process fail.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use simple_loader::{LoadOptions, Module, load};

/// A module with a 64-byte initial-exec block.
fn module(work: &Path) -> PathBuf {
    let source = work.join("ie.c");
    std::fs::write(
        &source,
        "__thread long cells[8] = {1}; long first(void) { return cells[0]; }\n",
    )
    .unwrap();
    let objects = compile(&[source], work, &["-O2", "-ftls-model=initial-exec"]);
    let path = work.join("ie.smf");
    pack(&objects, &path, &[]);
    path
}

fn first(module: &Module) -> i64 {
    // SAFETY: `long first(void)`.
    let f = unsafe { module.get::<extern "C" fn() -> i64>("first") }.unwrap();
    f()
}

#[test]
fn the_reserve_is_reused_in_stack_order_and_leaks_otherwise() {
    let work = tempfile::tempdir().unwrap();
    let path = module(work.path());
    let options = LoadOptions::default();

    // Unloaded in the reverse order of loading: glibc takes the space back every time.
    for _ in 0..1000 {
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        let a = unsafe { load(&path, &options, None) }.unwrap();
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        let b = unsafe { load(&path, &options, None) }.unwrap();
        assert_eq!((first(&a), first(&b)), (1, 1));
        drop(b);
        drop(a);
    }

    // The first one unloaded while the second is loaded, as a reload does: each round leaves
    // a hole glibc never fills, until the reserve is gone.
    let mut failure = None;
    for round in 1..=10_000 {
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        let a = unsafe { load(&path, &options, None) }.unwrap();
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        match unsafe { load(&path, &options, None) } {
            Ok(b) => {
                drop(a);
                drop(b);
            }
            Err(error) => {
                failure = Some((round, error.to_string()));
                break;
            }
        }
    }
    let (round, error) = failure.expect("holes in the static TLS reserve are not reused");
    eprintln!("the reserve ran out in round {round}: {error}");
    assert!(
        error.contains("ie.smf") && error.contains("cannot allocate memory in static TLS block"),
        "{error}"
    );
}
