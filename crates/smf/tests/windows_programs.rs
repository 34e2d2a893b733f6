//! Real programs for Windows, run under Wine: C and C++ fixtures of tests/programs compiled by
//! mingw-w64 at test time, linked natively into an `.exe` and packed into a module for
//! Windows. `smf.exe run MODULE` must print the same bytes to stdout and exit with the same
//! status as the native `.exe`, both run here as Windows programs.
//!
//! The test is built for Windows only (README, "Windows"; `.ci/run` runs it under Wine): a
//! module for Windows runs on Windows alone. Without mingw-w64 it prints `skipped: …` and
//! passes, unless `SMF_REQUIRE_CROSS` is set (as `.ci/run` does), where it fails.
#![cfg(windows)]

mod common;

use std::path::PathBuf;

use common::windows::{Mingw, mingw, program_dir, windows_path, work_dir};

/// One build of a fixture: its objects, the native program and the module.
struct Built {
    _work: tempfile::TempDir,
    native: PathBuf,
    module: PathBuf,
    args: Vec<String>,
}

/// Compiles fixture `name` with `opt` (split at spaces), links the native `.exe` and packs
/// the module. A fixture whose build.txt says `compiler: c++` is C++; `sources:` names
/// sources of other fixtures (relative to its directory) compiled with its own; `threads:
/// posix` builds with the POSIX-threads compilers, winpthreads linked statically.
fn build(mingw: &Mingw, name: &str, opt: &str) -> Built {
    let dir = program_dir(name);
    let spec = common::build_spec(&dir);
    let cxx = spec
        .extra
        .iter()
        .any(|(k, v)| k == "compiler" && v == "c++");
    let posix = spec
        .extra
        .iter()
        .any(|(k, v)| k == "threads" && v == "posix");
    let posix_mingw;
    let mingw = if posix {
        posix_mingw = posix_threads(mingw);
        &posix_mingw
    } else {
        mingw
    };
    let mut sources = common::sources_with(&dir, if cxx { "cpp" } else { "c" });
    for (key, value) in &spec.extra {
        if key == "sources" {
            sources.extend(value.split_whitespace().map(|s| dir.join(s)));
        }
    }
    let work = work_dir();
    let mut flags: Vec<&str> = opt.split_whitespace().collect();
    flags.extend(spec.cflags.iter().map(String::as_str));
    let objects = mingw.compile(&sources, work.path(), &flags);
    let native = work.path().join(format!("{name}.exe"));
    let mut libs: Vec<&str> = spec.libs.iter().map(String::as_str).collect();
    let mut pack_args = vec!["--entry", "main"];
    if posix {
        // The whole link static, as the module packs winpthreads from its static library.
        libs.push("-static");
        pack_args.push("-lwinpthread");
    }
    mingw.link(&objects, &native, cxx, &libs);
    let module = work.path().join(format!("{name}.smf"));
    mingw.pack(&objects, &module, cxx, &pack_args);
    Built {
        _work: work,
        native,
        module,
        args: spec.args,
    }
}

/// The POSIX-threads builds of `mingw`'s compilers (`x86_64-w64-mingw32-gcc-posix`, from the
/// same Debian packages as the Win32-threads ones), whose libstdc++ runs on winpthreads.
fn posix_threads(mingw: &Mingw) -> Mingw {
    let posix = Mingw(smf_test_support::Mingw {
        gcc: mingw.gcc.replace("-win32", "-posix"),
        gxx: mingw.gxx.replace("-win32", "-posix"),
    });
    for compiler in [&posix.gcc, &posix.gxx] {
        assert!(
            windows_path(compiler).exists(),
            "{compiler} not found (package g++-mingw-w64-x86-64-posix)"
        );
    }
    posix
}

/// Runs the native program and `smf run` of the module with `args`, and checks that both
/// print the same stdout and exit with the same status, one the program chose (not a
/// crash's exception code). Returns both runs.
///
/// The fixtures' expected statuses (build.txt's `exit`) are Linux's: their checksums sum
/// `long`s, which have 32 bits on Windows, so their results differ there.
fn same_run(
    built: &Built,
    name: &str,
    args: &[String],
) -> (std::process::Output, std::process::Output) {
    let native = std::process::Command::new(&built.native)
        .args(args)
        .output()
        .unwrap();
    let packed = common::smf()
        .arg("run")
        .arg(&built.module)
        .args(args)
        .output()
        .unwrap();
    assert!(
        native.status.code().is_some_and(|c| (0..256).contains(&c)),
        "the native {name} exits with {:?}; stdout:\n{}\nstderr:\n{}",
        native.status.code(),
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&native.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&packed.stdout),
        String::from_utf8_lossy(&native.stdout),
        "stdout of {name} differs between smf run and the native .exe; smf stderr:\n{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    assert_eq!(
        packed.status.code(),
        native.status.code(),
        "exit status of {name}: smf run against the native .exe; smf stderr:\n{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    (native, packed)
}

/// Builds fixture `name` at each optimisation level and compares the runs.
fn native_vs_smf(name: &str, levels: &[&str]) {
    let Some(mingw) = mingw() else {
        return;
    };
    for opt in levels {
        let built = build(&mingw, name, opt);
        same_run(&built, &format!("{name} at {opt}"), &built.args);
    }
}

/// The 5,000-line interpreter: a lexer, parser, bytecode compiler, VM with closures and a
/// garbage collector, running a script; errors go through `setjmp`/`longjmp`, which
/// msvcrt implements by unwinding through the module's frames.
#[test]
fn interp() {
    native_vs_smf("interp", &["-O0", "-O2"]);
}

/// Function-pointer and string tables in data, pointers between objects, jump tables.
#[test]
fn tables() {
    native_vs_smf("tables", &["-O0", "-O2"]);
}

/// Nested `setjmp`/`longjmp`, variadic functions, deep recursion, a computed goto.
#[test]
fn control() {
    native_vs_smf("control", &["-O0", "-O2"]);
}

/// libm's functions (mingw-w64's own, from libmingwex.a, and msvcrt's), `long double`,
/// numeric integration and solvers.
#[test]
fn mathlib() {
    native_vs_smf("mathlib", &["-O0", "-O2"]);
}

/// C++: exceptions across objects and out of libstdc++, constructors, function-pointer
/// tables, thread-locals, a stack walk, libstdc++ packed from its static library.
#[test]
fn cxx() {
    native_vs_smf("cxx_windows", &["-O0", "-O2"]);
}

/// Code run before and after `main`, in C and C++ objects: C++ globals (with and without
/// `init_priority`), `constructor(N)` and `destructor(N)` functions, pointers placed in the C
/// runtime's `.CRT$XI*`, `.CRT$XC*` and `.CRT$XT*` tables (the last never run by a mingw-w64
/// program), `atexit` handlers and a function-local static. The output is the order.
#[test]
fn constructors_and_destructors() {
    native_vs_smf("ctors_windows", &["-O0", "-O2"]);
}

/// std::thread, a mutex and condition variable and std::async on winpthreads, packed from
/// its static library with its PE TLS callback, which the loader calls as Windows calls an
/// image's: the thread_local objects of threads that CreateThread started are destroyed by
/// that callback when they end.
#[test]
fn std_thread_on_winpthreads() {
    native_vs_smf("threads_windows", &["-O0", "-O2"]);
}

/// A C++ exception that leaves `main` crosses from the module into the host, `smf.exe`. In the
/// native program no frame catches it, `RaiseException` returns to libgcc, and libstdc++'s
/// `std::terminate` prints it and aborts with status 3. Under `smf run` the loader calls
/// `main` through a frame that stops the search there as the native start-up code's filter
/// does (`sys/windows/entry.rs`), rather than let it reach the Rust runtime's frames, which
/// would end the process with a fail-fast (`STATUS_STACK_BUFFER_OVERRUN`). Both print what
/// `main` printed before, the same message and run no destructor.
#[test]
fn cxx_exception_out_of_main_ends_the_process() {
    let Some(mingw) = mingw() else {
        return;
    };
    let built = build(&mingw, "cxx_windows", "-O2");
    let (native, packed) = same_run(&built, "cxx_windows uncaught", &["uncaught".to_owned()]);
    assert_eq!(native.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&packed.stdout).ends_with("throwing out of main\r\n"),
        "{}",
        String::from_utf8_lossy(&packed.stdout)
    );
    let terminate = "terminate called after throwing an instance of 'std::runtime_error'";
    for (who, run) in [("native", &native), ("smf run", &packed)] {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(terminate), "{who}: {stderr}");
        assert!(stderr.contains("escapes main"), "{who}: {stderr}");
    }
}
