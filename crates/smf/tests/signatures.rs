//! Signatures end to end: `smf keygen`, `smf sign`, `smf verify --key`, and `smf run` /
//! `smf call` with `--require-signature`, on a real C program whose constructor prints a
//! marker first thing, so that a refusal is seen to happen before any module code runs.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use smf_format::compute_module_hash;
use smf_format::raw::MODULE_HASH_RANGE;

const MARKER: &str = "SIGNED-MARKER: constructor ran";

fn program(dir: &Path, name: &str, answer: i32) -> PathBuf {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(
        &source,
        format!(
            "#include <unistd.h>\n#include <stdio.h>\n\
             __attribute__((constructor)) static void marker(void) {{\n\
                 static const char m[] = \"{MARKER}\\n\";\n\
                 (void)!write(1, m, sizeof m - 1);\n}}\n\
             long answer(void) {{ return {answer}; }}\n\
             int main(void) {{ printf(\"main ran\\n\"); return {answer}; }}\n"
        ),
    )
    .unwrap();
    let objects = compile(&[source], &dir.join(format!("obj-{name}")), &["-O2"]);
    let module = dir.join(format!("{name}.sme"));
    pack(&objects, &module, &["--entry", "main"]);
    module
}

fn smf_output(args: &[&OsStr]) -> Output {
    smf().args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts a refusal: exit 1, one line on stderr with every needle, and nothing on stdout
/// (the module's constructor prints first thing when it runs).
fn refused(args: &[&OsStr], needles: &[&str]) {
    let output = smf_output(args);
    let (code, stderr) = failure(&output);
    assert_eq!(code, 1, "{args:?}: {stderr}");
    assert_eq!(stdout(&output), "", "{args:?}: module code ran");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
    }
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let secret = dir.join(name);
    let output = check({
        let mut c = smf();
        c.arg("keygen").arg(&secret);
        c
    });
    let public = dir.join(format!("{name}.pub"));
    assert!(stdout(&output).contains(&public.display().to_string()));
    (secret, public)
}

fn sign(secret: &Path, module: &Path) {
    check({
        let mut c = smf();
        c.arg("sign").arg("--key").arg(secret).arg(module);
        c
    });
}

fn sig_path(module: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", module.display()))
}

#[test]
fn signed_modules_run_and_everything_else_is_refused_before_its_code_runs() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let app = program(dir, "app", 42);
    let other = program(dir, "other", 7);
    let (secret, public) = keygen(dir, "release");
    let (stranger_secret, stranger) = keygen(dir, "stranger");
    let os = |p: &Path| p.as_os_str().to_owned();
    let run = |key: &Path, module: &Path| {
        vec![
            OsStr::new("run").to_owned(),
            "--require-signature".into(),
            os(key),
            os(module),
        ]
    };

    // The control: without a policy the marker prints first; signed, it runs too.
    let output = smf_output(&["run".as_ref(), app.as_os_str()]);
    assert_eq!(output.status.code(), Some(42));
    assert!(stdout(&output).starts_with(MARKER), "{}", stdout(&output));

    // Unsigned: refused.
    refused(
        &refs(&run(&public, &app)),
        &["app.sme", "unsigned module", "app.sme.sig"],
    );

    sign(&secret, &app);
    let signature = std::fs::read(sig_path(&app)).unwrap();
    assert_eq!(signature.len(), 144);
    assert_eq!(&signature[..8], b"SMFSIG\0\0");
    let output = smf_output(&refs(&run(&public, &app)));
    assert_eq!(output.status.code(), Some(42), "{}", failure(&output).1);
    assert_eq!(stdout(&output), format!("{MARKER}\nmain ran\n"));
    let verified = stdout(&check({
        let mut c = smf();
        c.arg("verify").arg("--key").arg(&public).arg(&app);
        c
    }));
    let key_hex = std::fs::read_to_string(&public).unwrap();
    let key_hex = key_hex.split_whitespace().nth(1).unwrap();
    assert!(
        verified.contains(&format!("signed by trusted key {key_hex}")),
        "{verified}"
    );
    // `smf call` honours the policy too.
    let called = stdout(&check({
        let mut c = smf();
        c.args(["call", "--require-signature"])
            .arg(&public)
            .arg(&app)
            .arg("answer");
        c
    }));
    assert_eq!(called, format!("{MARKER}\n42\n"));

    // Signed by a key that is not trusted.
    sign(&stranger_secret, &other);
    refused(
        &refs(&run(&public, &other)),
        &["other.sme", "other.sme.sig", "not a trusted key"],
    );
    refused(
        &[
            "verify".as_ref(),
            "--key".as_ref(),
            public.as_os_str(),
            other.as_os_str(),
        ],
        &["not a trusted key"],
    );
    // Trusting both keys (repeated option) accepts it.
    let output = smf_output(&[
        "run".as_ref(),
        "--require-signature".as_ref(),
        public.as_os_str(),
        "--require-signature".as_ref(),
        stranger.as_os_str(),
        other.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(7));

    // A valid signature of another module.
    std::fs::copy(sig_path(&app), sig_path(&other)).unwrap();
    refused(
        &refs(&run(&public, &other)),
        &[
            "the signature is for module hash",
            "but the module hashes to",
        ],
    );

    // The module changed after signing, with its module hash updated so that it is a
    // well-formed module: only the signature can tell.
    let mut changed = std::fs::read(&app).unwrap();
    let last = changed.len() - 1;
    changed[last] ^= 0x40;
    let hash = compute_module_hash(&changed).unwrap();
    changed[MODULE_HASH_RANGE].copy_from_slice(&hash);
    let tampered = dir.join("tampered.sme");
    std::fs::write(&tampered, &changed).unwrap();
    std::fs::copy(sig_path(&app), sig_path(&tampered)).unwrap();
    refused(
        &refs(&run(&public, &tampered)),
        &["tampered.sme", "the signature is for module hash"],
    );

    // A forged signature: right module hash and trusted key, wrong signature bytes.
    let mut forged = signature.clone();
    forged[0x60] ^= 1;
    std::fs::write(sig_path(&app), &forged).unwrap();
    refused(&refs(&run(&public, &app)), &["does not verify"]);
    // Damaged files: truncated, wrong magic, unknown version.
    for (what, bytes, needle) in [
        ("truncated", signature[..100].to_vec(), "0x90 bytes"),
        ("magic", b"not a signature".to_vec(), "expected magic"),
        (
            "version",
            [&signature[..8], &[9], &signature[9..]].concat(),
            "version 9",
        ),
    ] {
        std::fs::write(sig_path(&app), &bytes).unwrap();
        refused(
            &refs(&run(&public, &app)),
            &["malformed signature file", needle],
        );
        let _ = what;
    }
    std::fs::write(sig_path(&app), &signature).unwrap();
    assert_eq!(
        smf_output(&refs(&run(&public, &app))).status.code(),
        Some(42)
    );
}

#[test]
fn key_and_sign_errors_are_one_line() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let app = program(dir, "app", 1);
    let (secret, public) = keygen(dir, "k");
    // keygen never overwrites.
    refused(&["keygen".as_ref(), secret.as_os_str()], &["File exists"]);
    // A public key is not a secret key, and the reverse.
    refused(
        &[
            "sign".as_ref(),
            "--key".as_ref(),
            public.as_os_str(),
            app.as_os_str(),
        ],
        &["invalid key", "smf-ed25519-secret"],
    );
    refused(
        &[
            "run".as_ref(),
            "--require-signature".as_ref(),
            secret.as_os_str(),
            app.as_os_str(),
        ],
        &["invalid key", "smf-ed25519-public"],
    );
    // A corrupted module is not signed.
    let mut bytes = std::fs::read(&app).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let corrupted = dir.join("corrupted.sme");
    std::fs::write(&corrupted, bytes).unwrap();
    refused(
        &[
            "sign".as_ref(),
            "--key".as_ref(),
            secret.as_os_str(),
            corrupted.as_os_str(),
        ],
        &["cannot sign", "module hash mismatch"],
    );
    assert!(!sig_path(&corrupted).exists());
    // verify --key of an unsigned module.
    refused(
        &[
            "verify".as_ref(),
            "--key".as_ref(),
            public.as_os_str(),
            app.as_os_str(),
        ],
        &["app.sme.sig", "No such file"],
    );
}
