//! `smf pack` with static archives and a linker's command line (`-l`, `-L`,
//! `--whole-archive`, `@FILE`): archives made at test time with `ar rcs` and a Rust std
//! `staticlib` made with `rustc`, each program linked natively with `cc` and packed with
//! `smf pack`, both run, their output and exit status compared.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Compiles C `sources` (name, text) into `dir` with -fPIC -O2 and returns the objects.
fn objects(dir: &Path, sources: &[(&str, &str)]) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = sources
        .iter()
        .map(|(name, text)| write(dir, name, text))
        .collect();
    compile(&paths, dir, &["-O2"])
}

fn ar(archive: &Path, members: &[PathBuf]) {
    let mut ar = Command::new("ar");
    ar.arg("rcs").arg(archive).args(members);
    check(ar);
}

/// Runs `command` (built in place) and checks that it succeeds.
fn ok(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the native build and the packed module with the same arguments; returns the
/// native run's output after checking the module's matches it.
fn run_both(native: &Path, module: &Path) -> Output {
    let native_run = common::target(native).output().unwrap();
    let module_run = smf().arg("run").arg(module).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&module_run.stdout),
        String::from_utf8_lossy(&native_run.stdout),
        "stdout differs; module stderr:\n{}",
        String::from_utf8_lossy(&module_run.stderr)
    );
    assert_eq!(module_run.status.code(), native_run.status.code());
    native_run
}

const MAIN: &str = "#include <stdio.h>\n\
    int chain_a(int);\n\
    int main(void) { printf(\"chain %d\\n\", chain_a(1)); return chain_a(0) - 80; }\n";

/// libchain.a: a -> b -> c over three members; unused.o defines a function nothing calls,
/// which calls a function nothing defines; reg.o registers itself from a constructor but
/// nothing refers to it (taken only with --whole-archive).
fn chain_library(dir: &Path) -> PathBuf {
    let members = objects(
        dir,
        &[
            (
                "a.c",
                "int chain_b(int); int chain_a(int x) { return chain_b(x) + 1; }",
            ),
            (
                "b.c",
                "int chain_c(int); int chain_b(int x) { return chain_c(x) * 2; }",
            ),
            ("c.c", "int chain_c(int x) { return x + 40; }"),
            (
                "unused.c",
                "int nowhere_defined(void); int unused_fn(void) { return nowhere_defined(); }",
            ),
        ],
    );
    let lib_dir = dir.join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    let archive = lib_dir.join("libchain.a");
    ar(&archive, &members);
    archive
}

fn registry_library(dir: &Path) -> PathBuf {
    let members = objects(
        dir,
        &[(
            "reg.c",
            "#include <stdio.h>\n\
             __attribute__((constructor)) static void announce(void) { puts(\"registered\"); fflush(stdout); }",
        )],
    );
    let archive = dir.join("lib").join("libreg.a");
    ar(&archive, &members);
    archive
}

#[test]
fn needed_members_are_linked_as_natively() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chain_library(dir.path());
    registry_library(dir.path());
    let main = objects(dir.path(), &[("main.c", MAIN)]);
    let lib_dir = archive.parent().unwrap();

    let native = dir.path().join("native");
    let mut cc = cc();
    cc.args(&main)
        .arg("-L")
        .arg(lib_dir)
        .args(["-lchain", "-lreg", "-o"])
        .arg(&native);
    check(cc);
    let module = dir.path().join("prog.sme");
    ok(smf()
        .args(["pack", "-o"])
        .arg(&module)
        .args(["--entry", "main"])
        .args(&main)
        .arg("-L")
        .arg(lib_dir)
        .args(["--start-group", "-lchain", "-l:libreg.a", "--end-group"]));
    let output = run_both(&native, &module);
    // unused.o is not linked (its call of nowhere_defined would fail the load), nor reg.o.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "chain 83\n");
    assert_eq!(output.status.code(), Some(1)); // chain_a(0) - 80
}

#[test]
fn whole_archive_takes_every_member_of_the_archives_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chain_library(dir.path());
    let registry = registry_library(dir.path());
    let main = objects(dir.path(), &[("main.c", MAIN)]);

    let native = dir.path().join("native");
    let mut cc = cc();
    cc.args(&main)
        .arg("-Wl,--whole-archive")
        .arg(&registry)
        .arg("-Wl,--no-whole-archive")
        .arg(&archive)
        .arg("-o")
        .arg(&native);
    check(cc);
    // The same command line in a response file, quoted as GNU ld reads it.
    let module = dir.path().join("prog.sme");
    let quoted = |path: &Path| format!("'{}'", path.display());
    let mut args = vec![
        "-o".to_owned(),
        quoted(&module),
        "--entry".to_owned(),
        "\"main\"".to_owned(),
    ];
    args.extend(main.iter().map(|p| quoted(p)));
    args.extend([
        "--whole-archive".to_owned(),
        quoted(&registry),
        "--no-whole-archive".to_owned(),
        quoted(&archive),
    ]);
    let response = write(dir.path(), "pack args.rsp", &args.join("\n"));
    ok(smf().arg("pack").arg(format!("@{}", response.display())));
    let output = run_both(&native, &module);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "registered\nchain 83\n"
    );

    // --whole-archive over libchain.a too takes unused.o, whose import nothing defines.
    let whole = dir.path().join("whole.sme");
    ok(smf()
        .args(["pack", "-o"])
        .arg(&whole)
        .args(["--entry", "main"])
        .args(&main)
        .arg("--whole-archive")
        .arg(&archive));
    let (_, message) = failure(&smf().arg("run").arg(&whole).output().unwrap());
    assert!(message.contains("nowhere_defined"), "{message}");
}

#[test]
fn a_missing_library_is_named_with_the_directories_searched() {
    let dir = tempfile::tempdir().unwrap();
    let main = objects(dir.path(), &[("main.c", MAIN)]);
    let output = smf()
        .args(["pack", "-o"])
        .arg(dir.path().join("x.sme"))
        .args(&main)
        .arg("-L")
        .arg(dir.path())
        .arg("-lnothere")
        .output()
        .unwrap();
    let (code, message) = failure(&output);
    assert_eq!(code, 1);
    assert_eq!(
        message.trim_end(),
        format!(
            "smf: error: -lnothere: no libnothere.a found (searched {})",
            dir.path().display()
        )
    );
}

/// A Rust `staticlib` with std (formatting, a HashMap, a thread, `std::env::args`), called
/// from C: the link takes the few std members the functions need out of several hundred.
#[test]
fn rust_std_staticlib_runs_as_natively() {
    let dir = tempfile::tempdir().unwrap();
    let lib_rs = write(
        dir.path(),
        "words.rs",
        r#"
use std::collections::HashMap;
use std::ffi::{c_char, CStr};

#[no_mangle]
pub extern "C" fn rs_word_counts(text: *const c_char) -> u64 {
    let text = unsafe { CStr::from_ptr(text) }.to_str().unwrap_or("");
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word).or_insert(0) += 1;
    }
    let mut words: Vec<_> = counts.iter().collect();
    words.sort();
    println!("rust: {words:?}");
    counts.len() as u64
}

#[no_mangle]
pub extern "C" fn rs_thread_sum(n: u64) -> u64 {
    let sum = std::thread::spawn(move || (1..=n).sum::<u64>()).join().unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("rust: args {args:?}, sum {sum}");
    sum
}
"#,
    );
    let archive = dir.path().join("libwords.a");
    ok(rustc()
        .args([
            "--crate-type",
            "staticlib",
            "-C",
            "relocation-model=pic",
            "-O",
        ])
        .arg(&lib_rs)
        .arg("-o")
        .arg(&archive));
    let main = objects(
        dir.path(),
        &[(
            "main.c",
            "#include <stdio.h>\n\
             unsigned long rs_word_counts(const char *);\n\
             unsigned long rs_thread_sum(unsigned long);\n\
             int main(void) {\n\
               unsigned long n = rs_word_counts(\"the cat and the dog and the bird\");\n\
               fflush(stdout);\n\
               printf(\"c: %lu words, sum %lu\\n\", n, rs_thread_sum(10));\n\
               return (int)n;\n\
             }\n",
        )],
    );
    let native = dir.path().join("native");
    let mut cc = cc();
    cc.args(&main)
        .arg(&archive)
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-o",
        ])
        .arg(&native);
    check(cc);
    let module = dir.path().join("words.sme");
    ok(smf()
        .args(["pack", "-o"])
        .arg(&module)
        .args(["--entry", "main"])
        .args(&main)
        .arg(&archive));
    let output = run_both(&native, &module);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "rust: [(\"and\", 2), (\"bird\", 1), (\"cat\", 1), (\"dog\", 1), (\"the\", 3)]\n\
         rust: args [], sum 55\nc: 5 words, sum 55\n"
    );
    assert_eq!(output.status.code(), Some(5));
}

/// The C compiler's libgcc.a.
fn libgcc() -> PathBuf {
    let mut print = cc();
    print.arg("-print-libgcc-file-name");
    PathBuf::from(String::from_utf8(check(print).stdout).unwrap().trim())
}

/// Debian's multiarch name of the architecture the tests run on: its libraries are in
/// /usr/lib/TRIPLET, its architecture-specific headers (ffi.h, openssl/configuration.h) in
/// /usr/include/TRIPLET. For aarch64 they come from the `:arm64` packages `.ci/run`
/// installs; the cross compiler does not search that header directory by itself.
fn multiarch() -> String {
    format!("{}-linux-gnu", std::env::consts::ARCH)
}

/// Links `source` with `-l LIBRARY` from Debian's prebuilt archive `archive` (package
/// `package`, which `.ci/run` installs), natively and with `smf pack`, and compares the runs.
fn debian_archive_program(package: &str, archive: &str, library: &str, source: &str) -> String {
    let libs = Path::new("/usr/lib").join(multiarch());
    let path = libs.join(archive);
    assert!(
        path.exists(),
        "{} is missing: install the Debian package {package} (.ci/run does)",
        path.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let headers = Path::new("/usr/include").join(multiarch());
    let main = compile(
        &[write(dir.path(), "main.c", source)],
        dir.path(),
        &["-O2", "-idirafter", headers.to_str().unwrap()],
    );
    let native = dir.path().join("native");
    let mut cc = cc();
    // The archive natively too (a plain -l would take the shared library).
    cc.args(&main)
        .arg(&path)
        .args(["-lpthread", "-ldl", "-o"])
        .arg(&native);
    check(cc);
    let module = dir.path().join("prog.sme");
    ok(smf()
        .args(["pack", "-o"])
        .arg(&module)
        .args(["--entry", "main"])
        .args(&main)
        .arg("-L")
        .arg(&libs)
        .arg(format!("-l{library}"))
        // What the compiler driver adds to the native link: gcc's helpers, among them
        // AArch64's outline atomics (`__aarch64_ldadd4_relax`), which only libgcc.a has.
        .arg(libgcc()));
    let output = run_both(&native, &module);
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn debian_zlib_archive_links_as_natively() {
    let stdout = debian_archive_program(
        "zlib1g-dev",
        "libz.a",
        ":libz.a",
        r#"#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    const char *text = "hello hello hello hello hello archive world";
    unsigned char packed[256], back[256];
    uLongf packed_len = sizeof packed, back_len = sizeof back;
    if (compress2(packed, &packed_len, (const Bytef *)text, strlen(text), 9) != Z_OK) return 2;
    if (uncompress(back, &back_len, packed, packed_len) != Z_OK) return 3;
    printf("crc %08lx, round trip %s\n", crc32(0, (const Bytef *)text, strlen(text)),
           back_len == strlen(text) && !memcmp(back, text, back_len) ? "ok" : "differs");
    return 0;
}
"#,
    );
    assert!(stdout.ends_with("round trip ok\n"), "{stdout}");
}

#[test]
fn debian_libffi_pic_archive_links_as_natively() {
    let stdout = debian_archive_program(
        "libffi-dev",
        "libffi_pic.a",
        "ffi_pic",
        r#"#include <stdio.h>
#include <ffi.h>
static long add3(long a, long b, long c) { return a * 100 + b * 10 + c; }
int main(void) {
    ffi_cif cif;
    ffi_type *args[3] = { &ffi_type_slong, &ffi_type_slong, &ffi_type_slong };
    long a = 1, b = 2, c = 3;
    void *values[3] = { &a, &b, &c };
    ffi_arg result;
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 3, &ffi_type_slong, args) != FFI_OK) return 2;
    ffi_call(&cif, FFI_FN(add3), &result, values);
    printf("ffi_call: %ld\n", (long)result);
    return 0;
}
"#,
    );
    assert_eq!(stdout, "ffi_call: 123\n");
}

/// libcrypto.a has some 900 members; a SHA-256 takes a few of them, among them the CPU
/// capability object (OPENSSL_cpuid_setup, run from its legacy `.init` fragment).
#[test]
fn debian_libcrypto_archive_links_as_natively() {
    let stdout = debian_archive_program(
        "libssl-dev",
        "libcrypto.a",
        "crypto",
        r#"#include <stdio.h>
#include <openssl/sha.h>
int main(void) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)"abc", 3, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) printf("%02x", d[i]);
    printf("\n");
    return 0;
}
"#,
    );
    assert_eq!(
        stdout,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
}
