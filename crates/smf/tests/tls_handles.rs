//! The module word of a `tls_index` is a handle the loader checks, never an address it
//! follows (docs/RUNTIME.md, *Thread-local storage*; docs/SECURITY.md, point 5).
//!
//! A real module with thread-locals is compiled from C and packed; then one of its
//! `tls_module` relocations is changed into another kind, so that the word it writes is no
//! handle (an address in the module's image, or the address of an imported function), and
//! the module hash is recomputed: a well-formed, correctly hashed module, which the loader
//! runs. Its first thread-local access must end the process with the loader's message naming
//! the module, not with a fault or an abort from reading the word as loader state.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::*;
use smf_format::raw::MODULE_HASH_RANGE;
use smf_format::{Module, RelocKind, SectionKind, compute_module_hash};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>

__thread long counter = 40;          /* general-dynamic */
static __thread int calls;           /* local-dynamic */

__attribute__((noinline)) long bump(void) { calls++; return counter += 2; }

int main(void) {
    static const char m[] = "before the first thread-local access\n";
    (void)!write(1, m, sizeof m - 1);
    long value = bump();
    printf("counter %ld calls %d\n", value, calls);
    return 0;
}
"#;

/// Size of one relocation entry in the file (FORMAT.md: offset, kind, import, addend).
const RELOC_SIZE: usize = 24;

/// File offsets of the `tls_module` relocation entries of a module.
fn tls_module_entries(bytes: &[u8]) -> Vec<usize> {
    let module = Module::parse(bytes).unwrap();
    let table = module.table_section(SectionKind::Reloc).unwrap();
    module
        .relocations()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RelocKind::TlsModule)
        .map(|(i, _)| table.file_offset as usize + i * RELOC_SIZE)
        .collect()
}

/// `bytes` with the relocation entry at `entry` given `kind` and `import`, rehashed.
fn corrupted(bytes: &[u8], entry: usize, kind: RelocKind, import: u32) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[entry + 8..entry + 12].copy_from_slice(&kind.as_raw().to_le_bytes());
    bytes[entry + 12..entry + 16].copy_from_slice(&import.to_le_bytes());
    let hash = compute_module_hash(&bytes).unwrap();
    bytes[MODULE_HASH_RANGE].copy_from_slice(&hash);
    bytes
}

fn build(work: &Path) -> Vec<u8> {
    let source = work.join("tls_word.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let mut flags = vec!["-O2"];
    flags.extend(TLS_TRADITIONAL);
    let objects = compile(&[source], work, &flags);
    let module = work.join("tls_word.sme");
    pack(&objects, &module, &["--entry", "main"]);
    std::fs::read(&module).unwrap()
}

#[test]
fn a_module_word_that_is_no_handle_is_a_fatal_error_naming_the_module() {
    let work = tempfile::tempdir().unwrap();
    let good = build(work.path());
    let entries = tls_module_entries(&good);
    assert!(
        !entries.is_empty(),
        "the program's thread-locals are reached through __tls_get_addr"
    );

    let intact = work.path().join("intact.sme");
    std::fs::write(&intact, &good).unwrap();
    let output = smf().arg("run").arg(&intact).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "before the first thread-local access\ncounter 42 calls 1\n"
    );

    for (kind, import, what) in [
        // The word becomes the image's base: module memory, read as loader state before.
        (RelocKind::Relative64, u32::MAX, "relative64"),
        // The word becomes the address of the module's first import (a C library function).
        (RelocKind::Abs64, 0, "abs64"),
    ] {
        for (n, &entry) in entries.iter().enumerate() {
            let path = work.path().join(format!("{what}-{n}.sme"));
            std::fs::write(&path, corrupted(&good, entry, kind, import)).unwrap();
            let verify = smf().arg("verify").arg(&path).output().unwrap();
            assert!(
                verify.status.success(),
                "{what} {n}: a well-formed, correctly hashed module: {verify:?}"
            );

            let output = smf().arg("run").arg(&path).output().unwrap();
            let stderr = program_stderr(&output);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(
                output.status.signal(),
                Some(libc::SIGABRT),
                "{what} {n}: the loader stops the process itself, with no fault first\n\
                 stdout:\n{stdout}\nstderr:\n{stderr}"
            );
            assert_eq!(
                stdout, "before the first thread-local access\n",
                "{what} {n}: the module ran up to its first thread-local access, no further"
            );
            let module = path.display().to_string();
            let expected = format!(
                "simple-loader: fatal: module {module} called __tls_get_addr with tls_index 0x"
            );
            assert!(
                stderr.starts_with(&expected),
                "{what} {n}: the message names the module:\n{stderr}"
            );
            assert!(
                stderr.contains("is not its thread-local handle: no loaded module has that handle"),
                "{what} {n}: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{what} {n}: one line:\n{stderr}");
        }
    }
}
