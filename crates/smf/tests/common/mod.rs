//! Helpers shared by the integration tests: compiling C fixtures with the system compiler,
//! running the `smf` binary, and reading the fixtures' build.txt.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[cfg(windows)]
pub mod windows;

/// The `smf` binary built for these tests.
pub fn smf() -> Command {
    target(env!("CARGO_BIN_EXE_smf"))
}

/// A command running `program`, a program built for the target the tests run on (the `smf`
/// binary, this test binary, a native build of a fixture): directly, or through the runner
/// `SMF_TEST_RUNNER` names (words separated by spaces; `.cargo/config.toml` sets it to the
/// qemu command line for aarch64 builds tested on another machine, where the kernel cannot
/// run aarch64 programs itself).
pub fn target(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match runner() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            command.args(rest).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The runner's program and arguments, if `SMF_TEST_RUNNER` names one.
pub fn runner() -> Option<(String, Vec<String>)> {
    let value = std::env::var("SMF_TEST_RUNNER").ok()?;
    let mut words = value.split_whitespace().map(str::to_owned);
    let first = words.next()?;
    Some((first, words.collect()))
}

/// Whether the tests' programs run under an emulator (`SMF_TEST_RUNNER`). Tests that
/// cannot work there (a debugger attaching to the program, valgrind) call this, print
/// `skipped: <reason>` to stderr where it always shows, and return.
pub fn skip_under_runner(reason: &str) -> bool {
    if runner().is_none() {
        return false;
    }
    note_skipped(reason);
    true
}

pub use smf_test_support::note_skipped;

/// Directory of the C fixture `name`.
pub fn program_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name)
}

/// The system C compiler: `$CC` or `cc`.
pub fn cc() -> Command {
    Command::new(Toolchain::system().c)
}

/// A C compiler and the C++ compiler that goes with it.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub c: String,
    pub cxx: String,
}

impl Toolchain {
    /// The system compilers: `$CC` or `cc`, `$CXX` or `c++`.
    pub fn system() -> Toolchain {
        Toolchain {
            c: std::env::var("CC").unwrap_or_else(|_| "cc".into()),
            cxx: std::env::var("CXX").unwrap_or_else(|_| "c++".into()),
        }
    }

    /// `clang` and `clang++` if both run (they are on PATH). Otherwise prints a note, once,
    /// that the clang tests are skipped; with `SMF_REQUIRE_CLANG` set (as `.ci/run` does) a
    /// missing clang fails the test instead.
    pub fn clang() -> Option<Toolchain> {
        if skip_under_runner(
            "the clang builds of the test programs: clang builds for the host, not the runner's target",
        ) {
            return None;
        }
        static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let found = *FOUND.get_or_init(|| {
            let runs = |compiler: &str| {
                Command::new(compiler)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            let found = runs("clang") && runs("clang++");
            if !found {
                // Straight to stderr: libtest captures print! and eprint!, so a note printed
                // with them would only show if the test failed.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: clang or clang++ is not on PATH; the clang builds of the test programs are skipped"
                );
            }
            found
        });
        assert!(
            found || std::env::var_os("SMF_REQUIRE_CLANG").is_none(),
            "SMF_REQUIRE_CLANG is set but clang or clang++ is not on PATH"
        );
        found.then(|| Toolchain {
            c: "clang".into(),
            cxx: "clang++".into(),
        })
    }
}

/// Runs a command, panicking with its output if it fails to start or exits non-zero.
pub fn check(mut command: Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Compiles each C source of `sources` to an object in `out_dir` with `-fPIC` and `flags`.
pub fn compile(sources: &[PathBuf], out_dir: &Path, flags: &[&str]) -> Vec<PathBuf> {
    compile_with(&Toolchain::system().c, sources, out_dir, flags)
}

/// [`compile`] with this C compiler.
pub fn compile_with(
    compiler: &str,
    sources: &[PathBuf],
    out_dir: &Path,
    flags: &[&str],
) -> Vec<PathBuf> {
    compile_each(compiler, &["-std=gnu11"], sources, out_dir, flags)
}

/// Compiles each of `sources` with `compiler`, `-fPIC -c -Wall`, `language` and `flags`.
fn compile_each(
    compiler: &str,
    language: &[&str],
    sources: &[PathBuf],
    out_dir: &Path,
    flags: &[&str],
) -> Vec<PathBuf> {
    std::fs::create_dir_all(out_dir).unwrap();
    sources
        .iter()
        .map(|source| {
            let object = out_dir
                .join(source.file_stem().unwrap())
                .with_extension("o");
            let mut command = Command::new(compiler);
            command
                .args(language)
                .args(["-fPIC", "-c", "-Wall"])
                .args(flags)
                .arg(source)
                .arg("-o")
                .arg(&object);
            check(command);
            object
        })
        .collect()
}

/// The `.c` files of a directory, sorted.
pub fn c_sources(dir: &Path) -> Vec<PathBuf> {
    sources_with(dir, "c")
}

/// The `key: value` lines of a fixture's build.txt.
pub struct BuildSpec {
    pub cflags: Vec<String>,
    pub libs: Vec<String>,
    pub needed: Vec<String>,
    pub args: Vec<String>,
    pub exit: i32,
    pub extra: Vec<(String, String)>,
}

pub fn build_spec(dir: &Path) -> BuildSpec {
    let text = std::fs::read_to_string(dir.join("build.txt")).unwrap();
    let mut spec = BuildSpec {
        cflags: vec![],
        libs: vec![],
        needed: vec![],
        args: vec![],
        exit: 0,
        extra: vec![],
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let words = || {
            value
                .split_whitespace()
                .map(|w| w.replace("@DIR@", &dir.display().to_string()))
                .collect::<Vec<_>>()
        };
        match key.trim() {
            "cflags" => spec.cflags = words(),
            "libs" => spec.libs = words(),
            "needed" => spec.needed = words(),
            "args" => spec.args = words(),
            "exit" => spec.exit = value.trim().parse().unwrap(),
            other => spec.extra.push((other.to_owned(), value.trim().to_owned())),
        }
    }
    spec
}

/// Packs objects into a module with the `smf` binary.
pub fn pack(objects: &[PathBuf], output: &Path, extra: &[&str]) -> Output {
    let mut command = smf();
    command
        .arg("pack")
        .arg("-o")
        .arg(output)
        .args(extra)
        .args(objects);
    check(command)
}

/// A message-only view of a failed `smf` run: its exit code and stderr.
pub fn failure(output: &Output) -> (i32, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The system C++ compiler: `$CXX` or `c++`.
pub fn cxx_compiler() -> Command {
    Command::new(Toolchain::system().cxx)
}

/// Compiles each C++ source with `-fPIC` and `flags` (which give the language standard).
pub fn compile_cxx(sources: &[PathBuf], out_dir: &Path, flags: &[&str]) -> Vec<PathBuf> {
    compile_cxx_with(&Toolchain::system().cxx, sources, out_dir, flags)
}

/// [`compile_cxx`] with this C++ compiler.
pub fn compile_cxx_with(
    compiler: &str,
    sources: &[PathBuf],
    out_dir: &Path,
    flags: &[&str],
) -> Vec<PathBuf> {
    compile_each(compiler, &[], sources, out_dir, flags)
}

/// The files of a directory with this extension, sorted.
pub fn sources_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    sources.sort();
    sources
}

/// `$RUSTC` (else `rustc`) compiling for the architecture the tests run on: the static
/// libraries and objects it makes are linked with the tests' C compiler and packed for the
/// loader under test (for aarch64, Debian's `/usr/bin/rustc`, which has that standard library,
/// as README's aarch64 command sets `RUSTC`).
pub fn rustc() -> Command {
    let mut rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc
        .arg("--target")
        .arg(format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
    rustc
}

/// What a program wrote to stderr, without the line qemu adds when the program it runs dies
/// of a signal (`qemu: uncaught target signal 11 (Segmentation fault) - core dumped`).
pub fn program_stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !(runner().is_some() && l.starts_with("qemu: uncaught target signal")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether the check that a crash report names the module function that called into a
/// library cannot be made: when the call's return address is no longer in the link register,
/// the report finds it by reading the stack with `process_vm_readv`, which qemu's user-mode
/// emulator does not implement (it fails with ENOSYS). Prints `skipped: <reason>` if so.
pub fn stack_scan_unavailable() -> bool {
    skip_under_runner(
        "the `called from` of a crash inside a library: qemu-user has no process_vm_readv, \
         with which the report reads the stack",
    )
}

/// [`smf`] with `key=value` in the environment of the `smf` process only: under a runner,
/// given to it through qemu's `-E` (an `LD_PRELOAD` set on qemu itself would be loaded into
/// the emulator, not into the program).
pub fn smf_with_env(key: &str, value: &std::ffi::OsStr) -> Command {
    let program = env!("CARGO_BIN_EXE_smf");
    match runner() {
        Some((first, rest)) => {
            let mut command = Command::new(first);
            let mut setting = std::ffi::OsString::from(format!("{key}="));
            setting.push(value);
            command.args(rest).arg("-E").arg(setting).arg(program);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.env(key, value);
            command
        }
    }
}

/// gcc's flags for the traditional general- and local-dynamic thread-locals (a call to
/// `__tls_get_addr`): the default under -fPIC on x86-64; on AArch64, where -fPIC thread-locals
/// are TLS descriptors by default, `-mtls-dialect=trad`.
pub const TLS_TRADITIONAL: &[&str] = if cfg!(target_arch = "x86_64") {
    &[]
} else {
    &["-mtls-dialect=trad"]
};

/// gcc's flag for TLS descriptors: `gnu2` on x86-64, `desc` (the default) on AArch64.
pub const TLS_DESCRIPTORS: &str = if cfg!(target_arch = "x86_64") {
    "-mtls-dialect=gnu2"
} else {
    "-mtls-dialect=desc"
};
