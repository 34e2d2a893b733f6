//! `smf pack` reports the imports that no input, no `--needed` library and not the C library
//! define, as a linker does at link time: a warning by default, an error with
//! `--no-undefined`; names demangled, and the missing `--needed` named for libstdc++.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const CALLS_MISSING: &str = r#"
#include <stdio.h>
void missing_fn(void);
__attribute__((weak)) void maybe_there(void);
int main(void) {
    puts("hello");          /* the C library's: not reported */
    if (maybe_there) maybe_there();   /* weak: not reported */
    missing_fn();
    return 0;
}
"#;

fn pack_command(objects: &[PathBuf], output: &Path, extra: &[&str]) -> std::process::Output {
    smf()
        .arg("pack")
        .arg("-o")
        .arg(output)
        .args(extra)
        .args(objects)
        .output()
        .unwrap()
}

#[test]
fn an_undefined_function_is_a_warning_naming_it_and_its_object() {
    let work = tempfile::tempdir().unwrap();
    let source = write(work.path(), "calls_missing.c", CALLS_MISSING);
    let objects = compile(&[source], work.path(), &["-O2"]);
    let module = work.path().join("calls_missing.sme");
    let output = pack(&objects, &module, &["--entry", "main"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning = format!(
        "smf: warning: undefined symbol missing_fn (referenced by {})",
        objects[0].display()
    );
    assert!(stderr.contains(&warning), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "only missing_fn: {stderr}");
    assert!(module.is_file(), "a warning still writes the module");
}

#[test]
fn no_undefined_makes_it_an_error() {
    let work = tempfile::tempdir().unwrap();
    let source = write(work.path(), "calls_missing.c", CALLS_MISSING);
    let objects = compile(&[source], work.path(), &["-O2"]);
    let module = work.path().join("calls_missing.sme");
    let output = pack_command(&objects, &module, &["--entry", "main", "--no-undefined"]);
    let (code, stderr) = failure(&output);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("undefined symbol missing_fn"), "{stderr}");
    assert!(!module.exists(), "no module is written");

    // Defined by another input, it packs cleanly.
    let provider = write(work.path(), "provider.c", "void missing_fn(void) {}\n");
    let mut objects = objects;
    objects.extend(compile(&[provider], work.path(), &["-O2"]));
    let output = pack(&objects, &module, &["--entry", "main", "--no-undefined"]);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn a_cxx_name_missing_from_the_needed_libraries_is_demangled_and_libstdcxx_named() {
    let work = tempfile::tempdir().unwrap();
    let source = write(
        work.path(),
        "strings.cpp",
        r#"
#include <string>
extern "C" long joined_length(const char *a, const char *b) {
    std::string s(a);
    s += b;
    return (long)s.size();
}
"#,
    );
    let objects = compile_cxx(&[source], work.path(), &["-O2", "-std=c++17"]);
    let module = work.path().join("strings.smf");
    let output = pack(&objects, &module, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("std::__cxx11::basic_string<")
            && stderr.contains("(_ZNSt7__cxx1112basic_string")
            && stderr.contains("add --needed libstdc++.so.6"),
        "{stderr}"
    );

    let output = pack(&objects, &module, &["--needed", "libstdc++.so.6"]);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn names_the_host_defines_are_not_undefined() {
    let work = tempfile::tempdir().unwrap();
    let source = write(work.path(), "calls_missing.c", CALLS_MISSING);
    let objects = compile(&[source], work.path(), &["-O2"]);
    let list = write(
        work.path(),
        "host.syms",
        "# defined by the host with Registry::define\nhost_log\n  missing_fn  # this one\n\n",
    );
    let module = work.path().join("calls_missing.sme");
    let list = list.to_str().unwrap();
    let output = pack(
        &objects,
        &module,
        &["--entry", "main", "--no-undefined", "--host-symbols", list],
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
