//! The C API as a C program uses it: C sources including `smf.h`, compiled by the system
//! compiler with warnings as errors, linked against the `libsmf` this package builds, run
//! on modules compiled from C and packed at test time.
//!
//! Not built for Windows: the C hosts and modules are compiled and linked against `libsmf.so`
//! by the system C compiler (Linux programs under Wine, whose exit status a Windows process
//! cannot get). The library's unit tests run for Windows (README, "Windows").
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The directory holding the `libsmf.so` and `libsmf.a` built for this test run: cargo
/// builds the package's library, with every crate type, beside the test executable.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for dir in [deps, deps.parent().unwrap()] {
        if dir.join("libsmf.so").exists() && dir.join("libsmf.a").exists() {
            return dir.to_owned();
        }
    }
    panic!("libsmf.so and libsmf.a not found beside {}", exe.display());
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn include_dir() -> PathBuf {
    crate_dir().join("include")
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A command running `program`, a C host built for the target the tests run on: directly, or
/// through the runner `SMF_TEST_RUNNER` names (words separated by spaces; `.cargo/config.toml`
/// sets it to the qemu command line for aarch64 builds tested on an x86-64 machine).
fn target(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let runner = std::env::var("SMF_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut command = Command::new(first);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

/// Compiles C `source` (`-fPIC -c`) and packs it, reloadable, into `out`.
fn module(dir: &Path, name: &str, source: &str, out: &Path) {
    module_with(dir, name, source, out, &[]);
}

/// As [`module`], with more compiler flags.
fn module_with(dir: &Path, name: &str, source: &str, out: &Path, flags: &[&str]) {
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, source).unwrap();
    run(Command::new(tool("CC", "cc"))
        .args(flags)
        .args(["-O1", "-fPIC", "-c", "-o"])
        .arg(&o)
        .arg(&c));
    let mut inputs = vec![smf_pack::Input {
        name: o.display().to_string(),
        data: std::fs::read(&o).unwrap(),
    }];
    // gcc's aarch64 atomics call outline functions (`__aarch64_ldadd8_acq_rel`) that only
    // libgcc.a has, as a native link would take them from it (README, "aarch64").
    if cfg!(target_arch = "aarch64") {
        let libgcc = run(Command::new(tool("CC", "cc")).arg("-print-libgcc-file-name"));
        let libgcc = String::from_utf8(libgcc.stdout).unwrap();
        let libgcc = libgcc.trim();
        inputs.push(smf_pack::Input {
            name: libgcc.to_owned(),
            data: std::fs::read(libgcc).unwrap(),
        });
    }
    let options = smf_pack::Options {
        reloadable: true,
        ..Default::default()
    };
    let packed = smf_pack::pack(&inputs, &options).unwrap();
    std::fs::write(out, packed).unwrap();
}

const LIB_V1: &str = r#"
long counter;
long version(void) { return 1; }
long bump(void) { return __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST); }
"#;

const LIB_V2: &str = r#"
long counter;
long version(void) { return 2; }
long bump(void) { return __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST); }
long extra(void) { return 42; }
"#;

/// Builds `lib.smf` (version 1) and `v2.smf` in `dir`.
fn modules(dir: &Path) -> (PathBuf, PathBuf) {
    let lib = dir.join("lib.smf");
    let v2 = dir.join("v2.smf");
    module(dir, "v1", LIB_V1, &lib);
    module(dir, "v2", LIB_V2, &v2);
    (lib, v2)
}

/// Compiles and links the C test program `name`.c against libsmf (shared, or static).
fn host(dir: &Path, name: &str, shared: bool) -> PathBuf {
    let exe = dir.join(if shared {
        name.to_owned()
    } else {
        format!("{name}-static")
    });
    let libs = library_dir();
    let mut cc = Command::new(tool("CC", "cc"));
    cc.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-O1",
    ])
    .arg("-I")
    .arg(include_dir())
    .arg(crate_dir().join("tests/c").join(format!("{name}.c")))
    .arg("-o")
    .arg(&exe);
    if shared {
        cc.arg(format!("-L{}", libs.display()))
            .arg("-lsmf")
            .arg(format!("-Wl,-rpath,{}", libs.display()));
    } else {
        cc.arg(libs.join("libsmf.a"));
    }
    cc.args(["-lpthread", "-ldl", "-lm"]);
    run(&mut cc);
    exe
}

#[test]
fn load_call_reload_and_errors_from_c() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, v2) = modules(dir.path());
    let bad = dir.path().join("bad.smf");
    std::fs::write(&bad, b"SMF? not a module at all").unwrap();
    let exe = host(dir.path(), "host", true);
    let output = run(target(&exe).arg(&lib).arg(&v2).arg(&bad));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    // The reload report as the C host printed it.
    assert!(stdout.contains("now version 2"), "{stdout}");
    assert!(stdout.contains("kept: counter"), "{stdout}");
}

#[test]
fn static_library_links_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, v2) = modules(dir.path());
    let bad = dir.path().join("bad.smf");
    std::fs::write(&bad, b"").unwrap();
    let exe = host(dir.path(), "host", false);
    // Linked statically: the program does not need libsmf.so at run time. (binutils'
    // `readelf` reads the dynamic section of a program of any architecture; `ldd` would run
    // it.)
    let dynamic = run(Command::new("readelf").arg("-d").arg(&exe));
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(dynamic.contains("(NEEDED)"), "{dynamic}");
    assert!(!dynamic.contains("libsmf"), "{dynamic}");
    let output = run(target(&exe).arg(&lib).arg(&v2).arg(&bad));
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("ok\n"));
}

#[test]
fn threads_call_and_reload_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, v2) = modules(dir.path());
    let v1 = dir.path().join("v1.smf");
    std::fs::copy(&lib, &v1).unwrap();
    let exe = host(dir.path(), "threads", true);
    let output = run(target(&exe).arg(&lib).arg(&v1).arg(&v2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

/// The functions `smf.h` declares, by name.
fn declared() -> std::collections::BTreeSet<String> {
    let header = std::fs::read_to_string(include_dir().join("smf.h")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for line in header.lines() {
        let line = line.trim();
        if line.starts_with("/*") || line.starts_with('*') || line.starts_with('#') {
            continue;
        }
        // A declaration: `TYPE *smf_name(ARGS);`
        if let Some(open) = line.find('(') {
            let before = &line[..open];
            let name = before
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap();
            if name.starts_with("smf_") && line.ends_with(");") {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let nm = run(Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library_dir().join("libsmf.so")));
    let mut exported = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&nm.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, kind, name] = fields[..] else {
            continue;
        };
        if kind == "T" && name.starts_with("smf_") {
            exported.insert(name.to_owned());
        } else if kind == "T" || kind == "D" || kind == "B" {
            // The only other public symbols: the GDB JIT interface, which debuggers find
            // by name (docs/RUNTIME.md), and on aarch64 the `blake3` crate's portable
            // compression function, which it exports (`#[no_mangle]`) for its NEON C code to
            // call, so that every cdylib linking it exports it too.
            assert!(
                name.starts_with("__jit_debug_")
                    || cfg!(target_arch = "aarch64") && name == "blake3_compress_in_place_portable",
                "libsmf.so exports {name} ({kind}), not part of smf.h"
            );
        }
    }
    let declared = declared();
    assert!(declared.len() >= 30, "header parse found only {declared:?}");
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    let missing: Vec<_> = declared.difference(&exported).collect();
    assert!(
        undeclared.is_empty(),
        "exported, not in smf.h: {undeclared:?}"
    );
    assert!(missing.is_empty(), "in smf.h, not exported: {missing:?}");
    // Each function the issue's C host starts with.
    for name in [
        "smf_registry_new",
        "smf_registry_free",
        "smf_load",
        "smf_sym",
        "smf_current",
        "smf_reload",
        "smf_module_release",
        "smf_error",
    ] {
        assert!(declared.contains(name), "{name}");
    }
}

#[test]
fn header_compiles_as_cxx() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("include.cpp");
    std::fs::write(
        &source,
        "#include \"smf.h\"\nint main() { return smf_registry_new() == nullptr; }\n",
    )
    .unwrap();
    let libs = library_dir();
    run(Command::new(tool("CXX", "c++"))
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(include_dir())
        .arg(&source)
        .arg("-o")
        .arg(dir.path().join("include"))
        .arg(format!("-L{}", libs.display()))
        .arg("-lsmf")
        .arg(format!("-Wl,-rpath,{}", libs.display())));
    run(&mut target(dir.path().join("include")));
}

#[test]
fn cpp_host_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, v2) = modules(dir.path());
    let example = crate_dir().join("../../examples/cpp-host/host.cpp");
    let exe = dir.path().join("cpp-host");
    let libs = library_dir();
    run(Command::new(tool("CXX", "c++"))
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(include_dir())
        .arg(&example)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", libs.display()))
        .arg("-lsmf")
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .arg("-lpthread"));
    let output = run(target(&exe).arg(&lib).arg(&v2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("version 1, counter 3"), "{stdout}");
    assert!(stdout.contains("version 2, counter 7"), "{stdout}");
    // Errors arrive as C++ exceptions carrying smf_error's message.
    assert!(
        stdout.contains("no exported symbol `no_such_function`"),
        "{stdout}"
    );
}

#[test]
fn load_options_limits_and_signatures_from_c() {
    use simple_loader::smf_sign;
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = modules(dir.path());
    let signed = dir.path().join("signed.smf");
    std::fs::copy(&lib, &signed).unwrap();
    let key = smf_sign::SecretKey::from_seed([3; 32]);
    let signature = smf_sign::sign_module(&std::fs::read(&signed).unwrap(), &key).unwrap();
    std::fs::write(smf_sign::signature_path(&signed), signature.to_bytes()).unwrap();
    let public = dir.path().join("key.pub");
    std::fs::write(&public, format!("{}\n", key.public_key().to_text())).unwrap();
    let exe = host(dir.path(), "options", true);
    let output = run(target(&exe).arg(&lib).arg(&signed).arg(&public));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

#[test]
fn types_are_checked_from_c() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, v2) = (dir.path().join("lib.smf"), dir.path().join("v2.smf"));
    module_with(
        dir.path(),
        "typed1",
        "long scale(long a, long b) { return a * b; }\n",
        &lib,
        &["-g"],
    );
    module_with(
        dir.path(),
        "typed2",
        "long scale(long a, int b) { return a * b + 1; }\n",
        &v2,
        &["-g"],
    );
    let exe = host(dir.path(), "types", true);
    let output = run(target(&exe).arg(&lib).arg(&v2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    assert!(stdout.contains("scale: fn(i64, i64) -> i64"), "{stdout}");
    assert!(
        stdout.contains(
            "type changed: scale: its type changed from fn(i64, i64) -> i64 to fn(i64, i32) -> i64"
        ),
        "{stdout}"
    );
}
