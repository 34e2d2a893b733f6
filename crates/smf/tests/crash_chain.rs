//! The crash handler and the handlers a host installed before it (docs/RUNTIME.md, *Crash
//! reports*): the report line comes first, then the previous handler runs as the kernel would
//! have run it; installing twice never makes the handler its own predecessor; and the handler
//! allocates nothing, even for a crash outside module code.
//!
//! Each host is this test binary run again as a child (`crash_host`, ignored when run
//! directly): it installs a handler of its own, then the crash handler, loads a module built
//! from C and calls into it.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Where the child host finds its scenario and module.
const HOST_ENV: &str = "SMF_CRASH_CHAIN_HOST";

const MODULE_SOURCE: &str = r#"
#include <signal.h>
__attribute__((noinline)) long crash_here(volatile long *p) { *p = 42; return *p; }
long crash(void) { return crash_here(0) + 1; }
long store(long *p) { *(volatile long *)p = 7; return *(volatile long *)p + 1; }
long raise_segv(void) { raise(SIGSEGV); return 5; }
"#;

/// The module of `MODULE_SOURCE`, packed in `dir`.
fn module(dir: &Path) -> PathBuf {
    let source = dir.join("crashes.c");
    std::fs::write(&source, MODULE_SOURCE).unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let module = dir.join("crashes.smf");
    pack(&objects, &module, &[]);
    module
}

/// Runs `command`, killing it if it takes longer than a minute (a handler that chains to
/// itself could loop).
fn output_within_a_minute(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} did not finish within a minute; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs the host scenario `mode` on `module` in a child process.
fn host(mode: &str, module: &Path) -> (Output, String) {
    let mut command = common::target(std::env::current_exe().unwrap());
    command
        .args([
            "crash_host",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOST_ENV, format!("{mode}:{}", module.display()));
    let output = output_within_a_minute(command);
    let stderr = program_stderr(&output);
    (output, stderr)
}

fn report_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("smf: ")).collect()
}

fn assert_one_report(stderr: &str, start: &str, module: &Path) {
    let lines = report_lines(stderr);
    assert_eq!(lines.len(), 1, "one report line:\n{stderr}");
    assert!(lines[0].starts_with(start), "{stderr}");
    assert!(
        lines[0].ends_with(&format!(" ({})", module.display())),
        "{stderr}"
    );
}

#[test]
fn a_previous_siginfo_handler_runs_after_the_report() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("siginfo", &module);
    assert_eq!(
        output.status.code(),
        Some(42),
        "{:?}\n{stderr}",
        output.status
    );
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x0) in crash_here+0x",
        &module,
    );
    let report = stderr.find("smf: SIGSEGV").unwrap();
    let previous = stderr
        .find("previous handler: signal 11, address 0x0, context given")
        .unwrap_or_else(|| {
            panic!(
                "the previous handler did not run, with the signal's siginfo and context:\n{stderr}"
            )
        });
    assert!(report < previous, "the report comes first:\n{stderr}");
}

#[test]
fn a_previous_plain_handler_runs_after_the_report() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("plain", &module);
    assert_eq!(
        output.status.code(),
        Some(43),
        "{:?}\n{stderr}",
        output.status
    );
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x0) in crash_here+0x",
        &module,
    );
    assert!(
        stderr.contains("previous plain handler: signal 11"),
        "{stderr}"
    );
}

#[test]
fn installing_twice_chains_once_to_the_previous_handler() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("twice", &module);
    assert_eq!(
        output.status.code(),
        Some(42),
        "{:?}\n{stderr}",
        output.status
    );
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x0)",
        &module,
    );
    assert_eq!(
        stderr.matches("previous handler: signal 11").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_host_handler_installed_between_two_installs_runs_once_and_the_process_dies() {
    // crash handler ← host handler (which chains to what it replaced: the crash handler) ←
    // crash handler again: a cycle the crash handler must break.
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("cycle", &module);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{stderr}",
        output.status
    );
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x0)",
        &module,
    );
    assert_eq!(
        stderr.matches("host handler, chaining").count(),
        1,
        "the host handler runs once:\n{stderr}"
    );
}

#[test]
fn a_previous_handler_that_repairs_the_fault_lets_the_module_go_on() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("repair", &module);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{:?}\n{stderr}",
        output.status
    );
    assert!(stderr.contains("repaired"), "{stderr}");
    assert!(stderr.contains("store returned 8"), "{stderr}");
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x",
        &module,
    );
}

#[test]
fn a_previous_handler_that_restores_the_default_gets_the_default_action() {
    // As Rust's standard library does for a fault outside a stack guard page: it restores the
    // default and returns. A signal sent with raise() would otherwise be lost.
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("resets", &module);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("previous handler restored the default"),
        "{stderr}"
    );
    let lines = report_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("smf: SIGSEGV (invalid memory reference) at pc 0x")
            && lines[0].contains("outside any module"),
        "{stderr}"
    );
    if !stack_scan_unavailable() {
        assert!(
            lines[0].contains("outside any module, called from raise_segv+0x"),
            "{stderr}"
        );
    }
}

#[test]
fn an_ignored_signal_stays_ignored_when_sent_and_fatal_when_a_fault() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let (output, stderr) = host("ignored-raise", &module);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{:?}\n{stderr}",
        output.status
    );
    assert!(stderr.contains("raise_segv returned 5"), "{stderr}");
    assert_eq!(report_lines(&stderr), Vec::<&str>::new(), "{stderr}");

    let (output, stderr) = host("ignored-fault", &module);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{stderr}",
        output.status
    );
    assert_one_report(
        &stderr,
        "smf: SIGSEGV (invalid memory reference at 0x0) in crash_here+0x",
        &module,
    );
}

/// A library for LD_PRELOAD whose allocation functions end the process with status 77 once
/// `arm_malloc_trap` was called.
const MALLOC_TRAP: &str = r#"
#include <stddef.h>
#include <unistd.h>
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);
static volatile int armed;
void arm_malloc_trap(void) { armed = 1; }
static void trap(void) {
    if (armed) {
        static const char message[] = "malloc-trap: the heap was used after arm_malloc_trap\n";
        write(2, message, sizeof message - 1);
        _exit(77);
    }
}
void *malloc(size_t n) { trap(); return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { trap(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { trap(); return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { trap(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { trap(); return __libc_memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    trap();
    *out = __libc_memalign(align, n);
    return *out ? 0 : 12;
}
void free(void *p) { trap(); __libc_free(p); }
"#;

const OUTSIDE_MODULE_PROGRAM: &str = r#"
#include <string.h>
void arm_malloc_trap(void);
static const char *volatile bad = (const char *)8;
__attribute__((noinline)) long length_of(const char *s) { return (long)strlen(s) + 1; }
int main(void) {
    arm_malloc_trap();
    return (int)length_of(bad);
}
"#;

#[test]
fn the_report_of_a_crash_outside_module_code_allocates_nothing() {
    // The crash is in the C library's strlen, called from module code, with the heap off
    // limits from just before: the handler must name the module caller without allocating
    // (libgcc's unwinder, which the handler once used for this, allocates on a module's first
    // lookup).
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let trap_source = dir.join("malloc_trap.c");
    std::fs::write(&trap_source, MALLOC_TRAP).unwrap();
    let trap = dir.join("malloc_trap.so");
    let mut build = cc();
    build
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&trap)
        .arg(&trap_source);
    check(build);
    let source = dir.join("outside.c");
    std::fs::write(&source, OUTSIDE_MODULE_PROGRAM).unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let program = dir.join("outside.sme");
    pack(&objects, &program, &["--entry", "main"]);

    let mut command = smf_with_env("LD_PRELOAD", trap.as_os_str());
    command.arg("run").arg(&program);
    let output = output_within_a_minute(command);
    let stderr = program_stderr(&output);
    assert!(
        !stderr.contains("malloc-trap"),
        "the handler allocated:\n{stderr}"
    );
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    // AArch64 glibc's strlen reads the aligned 16 bytes around the string's start.
    let fault = if cfg!(target_arch = "x86_64") {
        "0x8"
    } else {
        "0x0"
    };
    assert!(
        lines[0].starts_with(&format!(
            "smf: SIGSEGV (invalid memory reference at {fault}) at pc 0x"
        )),
        "{stderr}"
    );
    assert!(
        lines[0].contains(", outside any module, called from length_of+0x")
            && lines[0].ends_with(&format!(" ({})", program.display())),
        "{stderr}"
    );
}

#[test]
fn a_stack_overflow_in_smf_run_dies_of_sigsegv_as_the_native_program_does() {
    // `smf run` gives the crash handler the default action to chain to, not the Rust
    // runtime's stack-overflow handler (which would abort the process as smf's own overflow).
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("deep.c");
    std::fs::write(
        &source,
        "__attribute__((noinline)) long deep(volatile long n) {\n\
         volatile char pad[256]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }\n\
         int main(void) { return (int)deep(0); }\n",
    )
    .unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O1"]);
    let program = dir.join("deep.sme");
    pack(&objects, &program, &["--entry", "main"]);
    let mut command = smf();
    command.arg("run").arg(&program);
    let output = output_within_a_minute(command);
    let stderr = program_stderr(&output);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("smf: SIGSEGV (invalid memory reference at 0x")
            && lines[0].contains(" in deep+0x"),
        "{stderr}"
    );
}

// ---- The child host ----

/// A page the `repair` scenario makes accessible from its handler.
static REPAIR_PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// The handler the `cycle` scenario's host handler replaced (the crash handler).
static REPLACED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn say(text: &str) {
    // SAFETY: write(2) of a live buffer; async-signal-safe.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

extern "C" fn siginfo_handler(signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel (or the handler chaining here) passes the signal's siginfo.
    let address = unsafe { (*info).si_addr() } as usize;
    let context = if context.is_null() {
        "no context"
    } else {
        "context given"
    };
    // Formatting without allocating: the address is 0 in these scenarios.
    let address = if address == 0 { "0x0" } else { "not 0" };
    say("previous handler: signal ");
    say(if signal == libc::SIGSEGV { "11" } else { "?" });
    say(", address ");
    say(address);
    say(", ");
    say(context);
    say("\n");
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) };
}

extern "C" fn plain_handler(signal: i32) {
    say(if signal == libc::SIGSEGV {
        "previous plain handler: signal 11\n"
    } else {
        "previous plain handler: another signal\n"
    });
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(43) };
}

extern "C" fn chaining_host_handler(
    signal: i32,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    say("host handler, chaining\n");
    let replaced = REPLACED.load(std::sync::atomic::Ordering::SeqCst);
    let previous: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
        // SAFETY: REPLACED, stored before this handler was installed, is the crash handler,
        // an SA_SIGINFO handler.
        unsafe { std::mem::transmute(replaced) };
    previous(signal, info, context);
}

extern "C" fn repairing_handler(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes the fault's siginfo.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = REPAIR_PAGE.load(std::sync::atomic::Ordering::SeqCst);
    if address != page {
        say("fault elsewhere\n");
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(44) };
    }
    // SAFETY: the page is this scenario's own mapping.
    unsafe { libc::mprotect(page as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE) };
    say("repaired\n");
}

extern "C" fn resetting_handler(signal: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: signal(2) is async-signal-safe.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
    say("previous handler restored the default\n");
}

/// Installs `handler` for SIGSEGV, with SA_SIGINFO unless `plain`.
fn install_segv(handler: usize, plain: bool) -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; the handler has the signature its flags say.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = if plain { 0 } else { libc::SA_SIGINFO };
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGSEGV, &action, &mut old), 0);
        old
    }
}

#[test]
#[ignore = "the host process the other tests of this file run"]
fn crash_host() {
    let Ok(scenario) = std::env::var(HOST_ENV) else {
        panic!("run by the other tests of this file, with {HOST_ENV} set");
    };
    let (mode, module) = scenario.split_once(':').unwrap();
    let install = || simple_loader::install_crash_handler().unwrap();
    let mut function = "crash";
    let mut argument = 0i64;
    match mode {
        "siginfo" => {
            install_segv(siginfo_handler as *const () as usize, false);
            install();
        }
        "plain" => {
            install_segv(plain_handler as *const () as usize, true);
            install();
        }
        "twice" => {
            install_segv(siginfo_handler as *const () as usize, false);
            install();
            install();
        }
        "cycle" => {
            install();
            let replaced = install_segv(chaining_host_handler as *const () as usize, false);
            REPLACED.store(replaced.sa_sigaction, std::sync::atomic::Ordering::SeqCst);
            install();
        }
        "repair" => {
            // SAFETY: a new private anonymous page, inaccessible until the handler repairs it.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(page, libc::MAP_FAILED);
            REPAIR_PAGE.store(page as usize, std::sync::atomic::Ordering::SeqCst);
            install_segv(repairing_handler as *const () as usize, false);
            install();
            function = "store";
            argument = page as i64;
        }
        "resets" => {
            install_segv(resetting_handler as *const () as usize, false);
            install();
            function = "raise_segv";
        }
        "ignored-raise" | "ignored-fault" => {
            install_segv(libc::SIG_IGN, true);
            install();
            if mode == "ignored-raise" {
                function = "raise_segv";
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    let registry = simple_loader::Registry::new();
    // SAFETY: the module is this file's MODULE_SOURCE; its code is what the scenario runs.
    let module = unsafe { registry.load(Path::new(module)) }.unwrap();
    let result = if function == "store" {
        // SAFETY: `long store(long *)` in MODULE_SOURCE.
        let store = unsafe { module.get::<extern "C" fn(i64) -> i64>("store") }.unwrap();
        (*store)(argument)
    } else {
        // SAFETY: `long crash(void)` and `long raise_segv(void)` in MODULE_SOURCE.
        let f = unsafe { module.get::<extern "C" fn() -> i64>(function) }.unwrap();
        (*f)()
    };
    say(&format!("{function} returned {result}\n"));
    std::process::exit(0);
}
