//! Constructors receive `(argc, argv, envp)` as glibc passes them: through `smf run` (the
//! program's arguments, the same `argv` as `main`'s), compared with the native build, and
//! through the library (the process's own arguments, or those of `with_arguments`).
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use simple_loader::{LoadOptions, load};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>

static int seen_argc = -1;
static char **seen_argv;
static char **seen_envp;

__attribute__((constructor)) static void init(int argc, char **argv, char **envp) {
    seen_argc = argc;
    seen_argv = argv;
    seen_envp = envp;
}

int ctor_argc(void) { return seen_argc; }
const char *ctor_arg(int i) { return i >= 0 && i < seen_argc ? seen_argv[i] : NULL; }
/* The value of `name` in the environment the constructor received. */
const char *ctor_getenv(const char *name) {
    size_t len = strlen(name);
    for (char **e = seen_envp; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

static void show(const char *when) {
    const char *env = ctor_getenv("SMF_CTOR_TEST");
    printf("%s: argc=%d argv1=%s argv2=%s env=%s\n", when, seen_argc,
           seen_argc > 1 ? seen_argv[1] : "-", seen_argc > 2 ? seen_argv[2] : "-",
           env ? env : "-");
}

__attribute__((destructor)) static void fini(void) { show("destructor"); }

int main(int argc, char **argv) {
    show("main");
    printf("main: same argv=%d argc=%d\n", argv == seen_argv, argc == seen_argc);
    return 0;
}
"#;

/// The program compiled in `dir`: its object and its native executable.
fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let source = dir.join("ctor_args.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let object = compile(&[source.clone()], dir, &[]).remove(0);
    let native = dir.join("ctor_args");
    let mut command = cc();
    command.arg(&source).arg("-o").arg(&native);
    check(command);
    (object, native)
}

#[test]
fn smf_run_passes_the_program_arguments_to_constructors_as_natively() {
    let dir = tempfile::tempdir().unwrap();
    let (object, native) = build(dir.path());
    let module = dir.path().join("ctor_args.sme");
    pack(&[object], &module, &["--entry", "main"]);

    let run = |mut command: Command| {
        command.args(["a", "b"]).env("SMF_CTOR_TEST", "from-env");
        String::from_utf8(check(command).stdout).unwrap()
    };
    let expected = run(common::target(&native));
    assert_eq!(
        expected,
        "main: argc=3 argv1=a argv2=b env=from-env\nmain: same argv=1 argc=1\n\
         destructor: argc=3 argv1=a argv2=b env=from-env\n"
    );
    let mut smf_run = smf();
    smf_run.arg("run").arg(&module);
    assert_eq!(run(smf_run), expected);
}

type ArgcFn = extern "C" fn() -> c_int;
type ArgFn = extern "C" fn(c_int) -> *const c_char;
type GetenvFn = extern "C" fn(*const c_char) -> *const c_char;

/// What the module's constructor recorded: its argv (up to argc) and `PATH` in its envp.
fn recorded(module: &simple_loader::Module) -> (Vec<String>, Option<String>) {
    // SAFETY: the types match the C definitions above.
    let (argc, arg, getenv) = unsafe {
        (
            *module.get::<ArgcFn>("ctor_argc").unwrap(),
            *module.get::<ArgFn>("ctor_arg").unwrap(),
            *module.get::<GetenvFn>("ctor_getenv").unwrap(),
        )
    };
    let string = |p: *const c_char| {
        // SAFETY: a non-null result points at a C string the module can read.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let args = (0..argc()).map(|i| string(arg(i)).unwrap()).collect();
    let path = CString::new("PATH").unwrap();
    (args, string(getenv(path.as_ptr())))
}

#[test]
fn library_loads_pass_the_process_arguments_or_the_chosen_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (object, _) = build(dir.path());
    let module = dir.path().join("ctor_args.smf");
    pack(&[object], &module, &[]);
    let env_path = std::env::var("PATH").ok();

    // SAFETY: the module is the program above, built for this test.
    let loaded = unsafe { load(&module, &LoadOptions::default(), None) }.unwrap();
    let process: Vec<String> = std::env::args().collect();
    assert_eq!(recorded(&loaded), (process, env_path.clone()));

    let options = LoadOptions::default().with_arguments(["prog", "x", "y z"]);
    // SAFETY: as above.
    let chosen = unsafe { load(&module, &options, None) }.unwrap();
    drop(options);
    // The module keeps the arguments: still readable after the options are gone.
    assert_eq!(
        recorded(&chosen),
        (vec!["prog".into(), "x".into(), "y z".into()], env_path)
    );
}

/// The failure issue 14 reports: Rust's standard library takes `std::env::args` from its
/// constructor's arguments, so a Rust staticlib in a module read garbage there.
#[test]
fn rust_std_in_a_module_reads_the_program_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("args.rs");
    std::fs::write(
        &lib,
        r#"
#[unsafe(no_mangle)]
pub extern "C" fn rust_args() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("rust sees {args:?}");
}
"#,
    )
    .unwrap();
    let archive = dir.path().join("libargs.a");
    let mut rustc = rustc();
    rustc
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "staticlib",
            "-C",
            "panic=abort",
        ])
        .arg(&lib)
        .arg("-o")
        .arg(&archive);
    check(rustc);
    let main = dir.path().join("main.c");
    std::fs::write(
        &main,
        "void rust_args(void);\nint main(void) { rust_args(); return 0; }\n",
    )
    .unwrap();
    let mut objects = compile(&[main], dir.path(), &[]);
    objects.push(archive);
    let module = dir.path().join("args.sme");
    pack(
        &objects,
        &module,
        &["--entry", "main", "--needed", "libgcc_s.so.1"],
    );
    let mut run = smf();
    run.arg("run").arg(&module).args(["x", "y z"]);
    assert_eq!(
        String::from_utf8(check(run).stdout).unwrap(),
        "rust sees [\"x\", \"y z\"]\n"
    );
}
