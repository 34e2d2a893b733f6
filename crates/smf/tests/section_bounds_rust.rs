//! `__start_`/`__stop_` with Rust's pattern (linkme's): statics put in a named section with
//! `#[link_section]` and `#[used]` (rustc marks those sections SHF_GNU_RETAIN), walked from
//! Rust between the bounds, with an entry added from C as well. Built with `rustc` and the
//! C compiler, linked natively and packed; both runs must print and exit alike.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use common::*;

#[test]
fn rust_statics_in_a_named_section_are_walked_between_start_and_stop() {
    let dir = program_dir("sections_rust");
    let work = tempfile::tempdir().unwrap();
    let rust_object = work.path().join("items.o");
    let mut rustc = rustc();
    rustc
        .args(["--edition", "2024", "--crate-type=lib", "--emit=obj", "-O"])
        .args(["-C", "relocation-model=pic", "-C", "panic=abort"])
        .arg(dir.join("items.rs"))
        .arg("-o")
        .arg(&rust_object);
    check(rustc);
    let mut objects = compile(&[dir.join("main.c")], work.path(), &["-O2"]);
    objects.push(rust_object);

    let native = work.path().join("native");
    let mut link = cc();
    link.arg("-o").arg(&native).args(&objects);
    check(link);
    let module = work.path().join("items.sme");
    pack(&objects, &module, &["--entry", "main", "--no-undefined"]);

    let expected = common::target(&native).output().unwrap();
    let actual = smf().arg("run").arg(&module).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&expected.stdout), "total 374\n");
    assert_eq!(
        String::from_utf8_lossy(&actual.stdout),
        String::from_utf8_lossy(&expected.stdout),
        "smf stderr: {}",
        String::from_utf8_lossy(&actual.stderr)
    );
    assert_eq!(actual.status.code(), expected.status.code());
}
