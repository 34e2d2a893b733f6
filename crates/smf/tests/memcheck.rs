//! The `smf` binary under valgrind memcheck: real C programs run through the loader, and
//! corrupted modules through `inspect` and `verify`, must show no invalid read or write, no
//! use of uninitialised memory, no bad free and no definite leak.
//!
//! `cargo test -p smf --test memcheck` is the command (docs/SECURITY.md). It needs valgrind;
//! `.ci/run` installs it. Without valgrind the test says so and passes, except under CI
//! (`CI` set), where a missing valgrind fails it rather than skipping silently.
//! `tests/memcheck/smf.supp` suppresses the one deliberate leak (the crash handler's
//! alternate signal stack).
//!
//! Not built for Windows: valgrind runs Linux programs only, and the modules are packed from
//! objects of the system C compiler (ELF).
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use smf_format::raw::MODULE_HASH_RANGE;
use smf_format::{Module, SectionKind, compute_module_hash};

/// Exit status valgrind uses when it found an error; no program here exits with it.
const VALGRIND_ERROR: i32 = 99;

fn valgrind_available() -> bool {
    if skip_under_runner("valgrind cannot run programs of another architecture") {
        return false;
    }
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "valgrind is not installed; .ci/run installs it"
        );
        eprintln!("memcheck: valgrind not found, skipped (apt-get install valgrind)");
    }
    found
}

/// Runs `smf args` under memcheck; fails on any memcheck error, returns the output.
fn memcheck(args: &[&std::ffi::OsStr]) -> Output {
    let suppressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/memcheck/smf.supp");
    let output = Command::new("valgrind")
        .args([
            "--tool=memcheck",
            "-q",
            &format!("--error-exitcode={VALGRIND_ERROR}"),
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(format!("--suppressions={}", suppressions.display()))
        .arg(env!("CARGO_BIN_EXE_smf"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(VALGRIND_ERROR),
        "memcheck found errors in `smf {args:?}`:\n{stderr}"
    );
    assert!(
        !stderr.contains("== Invalid") && !stderr.contains("uninitialised"),
        "`smf {args:?}`:\n{stderr}"
    );
    assert!(
        output.status.code().is_some(),
        "`smf {args:?}` died: {stderr}"
    );
    output
}

fn build(name: &str, work: &Path) -> (PathBuf, i32) {
    let dir = program_dir(name);
    let spec = build_spec(&dir);
    let mut flags = vec!["-O2"];
    flags.extend(spec.cflags.iter().map(String::as_str));
    let objects = compile(&c_sources(&dir), &work.join(name), &flags);
    let module = work.join(format!("{name}.sme"));
    let mut pack_args = vec!["--entry", "main"];
    for lib in &spec.needed {
        pack_args.extend(["--needed", lib.as_str()]);
    }
    pack(&objects, &module, &pack_args);
    (module, spec.exit)
}

#[test]
#[cfg_attr(
    cross_target,
    ignore = "valgrind cannot run programs of another architecture"
)]
fn programs_run_clean_under_memcheck() {
    if !valgrind_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let programs = ["tables", "multi", "control", "libc", "mathlib"];
    std::thread::scope(|scope| {
        for half in [0, 1] {
            let work = work.path();
            scope.spawn(move || {
                for name in programs.iter().skip(half).step_by(2) {
                    let (module, exit) = build(name, work);
                    let output = memcheck(&["run".as_ref(), module.as_os_str()]);
                    assert_eq!(
                        output.status.code(),
                        Some(exit),
                        "{name}: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
            });
        }
    });
}

/// Corrupted copies of a real module: truncated, bit-flipped, and structural fields
/// overwritten with the hash recomputed, each reaching a different check.
fn corrupted(good: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let module = Module::parse(good).unwrap();
    let table = |kind| module.table_section(kind).unwrap().file_offset as usize;
    let (symtab, reloc, hash) = (
        table(SectionKind::SymTab),
        table(SectionKind::Reloc),
        table(SectionKind::Hash),
    );
    let code = module.loaded_sections().next().unwrap().vaddr;
    let rehashed = |at: usize, value: &[u8]| {
        let mut bytes = good.to_vec();
        bytes[at..at + value.len()].copy_from_slice(value);
        let hash = compute_module_hash(&bytes).unwrap();
        bytes[MODULE_HASH_RANGE].copy_from_slice(&hash);
        bytes
    };
    let mut flipped = good.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    vec![
        ("truncated in the section table", good[..0xa0].to_vec()),
        ("truncated in half", good[..good.len() / 2].to_vec()),
        ("payload bit flipped", flipped),
        (
            "section 0 file_offset past the end",
            rehashed(0x80 + 8, &(1u64 << 40).to_le_bytes()),
        ),
        (
            "image_size huge",
            rehashed(0x18, &(u64::MAX - 0xfff).to_le_bytes()),
        ),
        (
            "symbol name offset outside strtab",
            rehashed(symtab, &u32::MAX.to_le_bytes()),
        ),
        (
            "symbol section index out of range",
            rehashed(symtab + 12, &77u32.to_le_bytes()),
        ),
        (
            "relocation into code",
            rehashed(reloc, &(code + 8).to_le_bytes()),
        ),
        (
            "relocation offset overflowing",
            rehashed(reloc, &(u64::MAX - 3).to_le_bytes()),
        ),
        (
            "hash bucket count zero",
            rehashed(hash, &0u32.to_le_bytes()),
        ),
    ]
}

#[test]
#[cfg_attr(
    cross_target,
    ignore = "valgrind cannot run programs of another architecture"
)]
fn inspect_and_verify_of_corrupted_modules_run_clean_under_memcheck() {
    if !valgrind_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (module, _) = build("tables", work.path());
    let good = std::fs::read(&module).unwrap();
    let mutants = corrupted(&good);
    std::thread::scope(|scope| {
        for half in [0, 1] {
            let (mutants, dir) = (&mutants, work.path());
            scope.spawn(move || {
                for (index, (what, bytes)) in mutants.iter().enumerate().skip(half).step_by(2) {
                    let path = dir.join(format!("bad{index}.sme"));
                    std::fs::write(&path, bytes).unwrap();
                    let verify = memcheck(&["verify".as_ref(), path.as_os_str()]);
                    assert_eq!(verify.status.code(), Some(1), "{what}: verify accepted it");
                    let inspect = memcheck(&["inspect".as_ref(), path.as_os_str()]);
                    assert!(
                        matches!(inspect.status.code(), Some(0 | 1)),
                        "{what}: inspect"
                    );
                }
            });
        }
    });
    // And the signature path: keygen, sign, verify --key, a refused run.
    let key = work.path().join("key");
    memcheck(&["keygen".as_ref(), key.as_os_str()]);
    memcheck(&[
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        module.as_os_str(),
    ]);
    let public = work.path().join("key.pub");
    let verified = memcheck(&[
        "verify".as_ref(),
        "--key".as_ref(),
        public.as_os_str(),
        module.as_os_str(),
    ]);
    assert_eq!(verified.status.code(), Some(0));
    let unsigned = work.path().join("unsigned.sme");
    std::fs::copy(&module, &unsigned).unwrap();
    let refused = memcheck(&[
        "run".as_ref(),
        "--require-signature".as_ref(),
        public.as_os_str(),
        unsigned.as_os_str(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
}
