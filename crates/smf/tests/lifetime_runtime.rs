//! Handlers a module registers with the C runtime go when the module goes (docs/RUNTIME.md,
//! *Fork, quick-exit and exit handlers*): after an unload, neither `fork()` nor
//! `quick_exit()` nor `exit()` calls into the unmapped image.
//!
//! Each scenario loads real modules, compiled from C at test time, into a child process: this
//! test binary again, running only the same test, with the module directory in
//! `SMF_LIFETIME_SCENARIO`. The scenario writes `SCENARIO: ` lines to its stdout with
//! `write(2)` (also from forked children and exit handlers), and the test compares them and
//! the child's exit status. A handler left behind kills the child with SIGSEGV.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::ffi::{CStr, c_char, c_int};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use simple_loader::{Module, Registry};

const SCENARIO: &str = "SMF_LIFETIME_SCENARIO";
const PREFIX: &str = "SCENARIO: ";

/// Fork handlers: two sets from the constructor, a third registered by a prepare handler
/// during the first fork. Each appends its name to the module's log.
const FORKER: &str = r#"
#include <pthread.h>
#include <string.h>

static char log_[512];
static void note(const char *s) {
    size_t n = strlen(log_);
    if (n + strlen(s) < sizeof log_) strcpy(log_ + n, s);
}
static void prepare3(void) { note("prepare3 "); }
static void parent3(void) { note("parent3 "); }
static void child3(void) { note("child3 "); }
static void prepare1(void) { note("prepare1 "); }
static void parent1(void) { note("parent1 "); }
static void child1(void) { note("child1 "); }
static void prepare2(void) {
    static int registered;
    note("prepare2 ");
    if (!registered) {
        registered = 1;
        pthread_atfork(prepare3, parent3, child3);
    }
}
static void parent2(void) { note("parent2 "); }
static void child2(void) { note("child2 "); }

__attribute__((constructor)) static void init(void) {
    pthread_atfork(prepare1, parent1, child1);
    pthread_atfork(prepare2, parent2, child2);
}

const char *fork_log(void) { return log_; }
void clear_fork_log(void) { log_[0] = 0; }
"#;

/// Two quick-exit handlers that print which module instance they belong to.
const QUICK: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char name[32] = "?";
void set_name(const char *n) { strncpy(name, n, sizeof name - 1); }
static void say(const char *which) {
    char line[96];
    int n = snprintf(line, sizeof line, "SCENARIO: %s quick-exit handler of %s\n", which, name);
    (void)!write(1, line, (size_t)n);
}
static void first(void) { say("first"); }
static void second(void) { say("second"); }

__attribute__((constructor)) static void init(void) {
    at_quick_exit(first);
    at_quick_exit(second);
}
"#;

/// A runtime module that registers handlers for other modules: exit handlers with the
/// caller's handle (as libstdc++'s `__cxa_thread_atexit` passes its caller's on to the C
/// library), fork and quick-exit handlers with its own.
const RT: &str = r#"
#include <pthread.h>
#include <stdlib.h>

int __cxa_atexit(void (*f)(void *), void *arg, void *dso);
int rt_on_exit(void (*f)(void *), void *arg, void *dso) { return __cxa_atexit(f, arg, dso); }
int rt_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    return pthread_atfork(prepare, parent, child);
}
int rt_at_quick_exit(void (*f)(void)) { return at_quick_exit(f); }
"#;

/// A module whose fork and quick-exit handlers `rt` registers.
const VIA: &str = r#"
#include <unistd.h>

int rt_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
int rt_at_quick_exit(void (*f)(void));
static void say(void) {
    static const char m[] = "SCENARIO: a handler of the via module\n";
    (void)!write(1, m, sizeof m - 1);
}
__attribute__((constructor)) static void init(void) {
    rt_atfork(say, say, say);
    rt_at_quick_exit(say);
}
"#;

/// A module with a `__dso_handle` that imports no `__cxa_atexit`: it registers through `rt`.
const USER: &str = r#"
#include <unistd.h>

extern void *__dso_handle;
int rt_on_exit(void (*f)(void *), void *arg, void *dso);
static void bye(void *arg) {
    static const char m[] = "SCENARIO: the user module's exit handler\n";
    (void)arg;
    (void)!write(1, m, sizeof m - 1);
}
__attribute__((constructor)) static void init(void) { rt_on_exit(bye, 0, &__dso_handle); }
"#;

/// A C++ module with a static object whose destructor the compiler registers with
/// `__cxa_atexit(…, &__dso_handle)` from the module's own code.
const STATICS: &str = r#"
#include <unistd.h>

struct Announcer {
    ~Announcer() {
        static const char m[] = "SCENARIO: the C++ static object's destructor\n";
        (void)!write(1, m, sizeof m - 1);
    }
};
static Announcer announcer;
"#;

/// Builds `source` (C, or C++ for a `name` ending in `++`) into `dir/name.smf`.
fn build(dir: &Path, name: &str, source: &str) -> PathBuf {
    let (name, cxx) = match name.strip_suffix("++") {
        Some(name) => (name, true),
        None => (name, false),
    };
    let work = dir.join(format!("build-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    let c = work.join(format!("{name}.{}", if cxx { "cpp" } else { "c" }));
    std::fs::write(&c, source).unwrap();
    let objects = if cxx {
        compile_cxx(&[c], &work, &["-O1"])
    } else {
        compile(&[c], &work, &["-O1"])
    };
    let out = dir.join(format!("{name}.smf"));
    pack(
        &objects,
        &out,
        if cxx {
            &["--needed", "libstdc++.so.6"]
        } else {
            &[]
        },
    );
    out
}

/// Runs test `test` of this binary in a child process in scenario mode, with `dir` as the
/// module directory: its exit status and its `SCENARIO: ` lines, without the prefix.
fn run_scenario(test: &str, dir: &Path) -> (ExitStatus, Vec<String>, String) {
    let output = common::target(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stdout
        .lines()
        // The harness's "test … " may precede the first line on the same line.
        .filter_map(|l| l.split_once(PREFIX).map(|(_, line)| line.to_owned()))
        .collect();
    let all = format!(
        "status {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, lines, all)
}

/// The module directory, when this process runs a scenario.
fn scenario_dir() -> Option<PathBuf> {
    std::env::var_os(SCENARIO).map(PathBuf::from)
}

/// Writes a `SCENARIO: ` line with `write(2)`: no lock and no buffer, so that forked
/// children and exit handlers can too.
fn say(line: &str) {
    let line = format!("{PREFIX}{line}\n");
    // SAFETY: writing an initialised buffer to fd 1.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
}

fn load(registry: &Registry, path: &Path) -> Arc<Module> {
    // SAFETY: the modules are the C sources of this file, built by the test and never
    // rewritten in place.
    unsafe { registry.load(path) }.unwrap()
}

/// Unloads `module` (loaded from `path`) and checks it is gone: its image unmapped.
fn unload(registry: &Registry, path: &Path, module: Arc<Module>) {
    let weak = Arc::downgrade(&module);
    drop(module);
    assert!(registry.unload(path).unwrap());
    registry.collect();
    assert!(weak.upgrade().is_none(), "{} is unloaded", path.display());
}

type LogFn = extern "C" fn() -> *const c_char;

fn text(log: LogFn) -> String {
    // SAFETY: `fork_log` returns the module's NUL-terminated buffer.
    unsafe { CStr::from_ptr(log()) }
        .to_string_lossy()
        .trim_end()
        .to_owned()
}

/// Forks; the child says `label` and what `log` holds there, and exits 0. The parent waits
/// for it and requires that exit.
fn fork_and_report(label: &str, log: Option<LogFn>) {
    // SAFETY: the child only formats, writes and `_exit`s; glibc's malloc works in the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        say(&format!(
            "child {label}: {}",
            log.map(text).unwrap_or_default()
        ));
        // SAFETY: ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(0) };
    }
    let mut status: c_int = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child of fork {label} ended with status {status:#x}"
    );
}

#[test]
fn fork_handlers_run_in_posix_order_while_loaded_and_not_after_unload() {
    if let Some(dir) = scenario_dir() {
        let registry = Registry::new();
        let forker = dir.join("forker.smf");
        let kept = dir.join("kept.smf");
        let module = load(&registry, &forker);
        let other = load(&registry, &kept);
        // SAFETY: `const char *fork_log(void)`, `void clear_fork_log(void)`.
        let (log, clear, other_log, other_clear) = unsafe {
            (
                *module.get::<LogFn>("fork_log").unwrap(),
                *module.get::<extern "C" fn()>("clear_fork_log").unwrap(),
                *other.get::<LogFn>("fork_log").unwrap(),
                *other.get::<extern "C" fn()>("clear_fork_log").unwrap(),
            )
        };
        fork_and_report("1", Some(log));
        say(&format!("parent 1: {}", text(log)));
        clear();
        fork_and_report("2", Some(log));
        say(&format!("parent 2: {}", text(log)));
        unload(&registry, &forker, module);
        other_clear();
        fork_and_report("3", Some(other_log));
        say(&format!("parent 3: {}", text(other_log)));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let forker = build(dir.path(), "forker", FORKER);
    std::fs::copy(&forker, dir.path().join("kept.smf")).unwrap();
    let (status, lines, all) = run_scenario(
        "fork_handlers_run_in_posix_order_while_loaded_and_not_after_unload",
        dir.path(),
    );
    assert!(status.success(), "{all}");
    assert_eq!(
        lines,
        [
            // Prepare handlers last registered first, parent and child ones in order; the
            // third set, registered by prepare2 during the fork, from the next fork on.
            "child 1: prepare2 prepare1 child1 child2",
            "parent 1: prepare2 prepare1 parent1 parent2",
            "child 2: prepare3 prepare2 prepare1 child1 child2 child3",
            "parent 2: prepare3 prepare2 prepare1 parent1 parent2 parent3",
            // forker.smf is unloaded: only the other instance's handlers run.
            "child 3: prepare3 prepare2 prepare1 child1 child2 child3",
            "parent 3: prepare3 prepare2 prepare1 parent1 parent2 parent3",
        ],
        "{all}"
    );
}

#[test]
fn quick_exit_handlers_of_an_unloaded_module_are_not_called() {
    if let Some(dir) = scenario_dir() {
        let registry = Registry::new();
        let (one, two) = (dir.join("one.smf"), dir.join("two.smf"));
        let first = load(&registry, &one);
        let second = load(&registry, &two);
        for (module, name) in [(&first, c"one"), (&second, c"two")] {
            // SAFETY: `void set_name(const char *)`; the module copies the name.
            unsafe { module.get::<extern "C" fn(*const c_char)>("set_name") }.unwrap()(
                name.as_ptr(),
            );
        }
        unload(&registry, &one, first);
        say("one unloaded");
        unsafe extern "C" {
            fn quick_exit(status: c_int) -> !;
        }
        // SAFETY: ends the process; only quick-exit handlers run.
        unsafe { quick_exit(0) };
    }
    let dir = tempfile::tempdir().unwrap();
    let quick = build(dir.path(), "quick", QUICK);
    std::fs::copy(&quick, dir.path().join("one.smf")).unwrap();
    std::fs::copy(&quick, dir.path().join("two.smf")).unwrap();
    let (status, lines, all) = run_scenario(
        "quick_exit_handlers_of_an_unloaded_module_are_not_called",
        dir.path(),
    );
    assert_eq!(status.code(), Some(0), "{all}");
    assert_eq!(
        lines,
        [
            "one unloaded",
            "second quick-exit handler of two",
            "first quick-exit handler of two",
        ],
        "{all}"
    );
}

#[test]
fn exit_handlers_registered_with_a_modules_handle_run_when_it_is_unloaded() {
    if let Some(dir) = scenario_dir() {
        let registry = Registry::new();
        let rt = load(&registry, &dir.join("rt.smf"));
        let user_path = dir.join("user.smf");
        let user = load(&registry, &user_path);
        assert!(
            !user
                .file()
                .imports()
                .iter()
                .any(|i| i.name == "__cxa_atexit"),
            "the user module reaches __cxa_atexit only through rt"
        );
        unload(&registry, &user_path, user);
        say("user unloaded");
        let statics_path = dir.join("statics.smf");
        let statics = load(&registry, &statics_path);
        unload(&registry, &statics_path, statics);
        say("statics unloaded");
        drop(rt);
        // Returning ends the process with exit(): the C library's exit handlers run.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), "rt", RT);
    build(dir.path(), "user", USER);
    build(dir.path(), "statics++", STATICS);
    let (status, lines, all) = run_scenario(
        "exit_handlers_registered_with_a_modules_handle_run_when_it_is_unloaded",
        dir.path(),
    );
    assert!(status.success(), "{all}");
    assert_eq!(
        lines,
        [
            "the user module's exit handler",
            "user unloaded",
            "the C++ static object's destructor",
            "statics unloaded",
        ],
        "{all}"
    );
}

/// One thread loads and unloads a module with fork handlers while another forks: every
/// fork either runs the module's handlers or none, never ones of an unmapped image.
#[test]
fn forks_racing_with_unloads_never_call_an_unmapped_handler() {
    if let Some(dir) = scenario_dir() {
        let registry = Registry::new();
        let path = dir.join("forker.smf");
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..300 {
                    let module = load(&registry, &path);
                    unload(&registry, &path, module);
                }
                done.store(true, Ordering::Relaxed);
            });
            let mut forks = 0;
            while !done.load(Ordering::Relaxed) || forks < 20 {
                // SAFETY: the child only `_exit`s.
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0);
                if pid == 0 {
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(0) };
                }
                let mut status: c_int = 0;
                // SAFETY: waiting for our own child.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "child status {status:#x}"
                );
                forks += 1;
            }
            say(&format!("forked {} times", forks.min(20)));
        });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), "forker", FORKER);
    let (status, lines, all) = run_scenario(
        "forks_racing_with_unloads_never_call_an_unmapped_handler",
        dir.path(),
    );
    assert!(status.success(), "{all}");
    assert_eq!(status.signal(), None);
    assert_eq!(lines, ["forked 20 times"], "{all}");
}

/// Handlers whose code is in a module go with it, whichever module registered them (here
/// `rt`, which stays loaded).
#[test]
fn handlers_another_module_registered_go_with_the_module_of_their_code() {
    if let Some(dir) = scenario_dir() {
        let registry = Registry::new();
        let _rt = load(&registry, &dir.join("rt.smf"));
        let via_path = dir.join("via.smf");
        let via = load(&registry, &via_path);
        unload(&registry, &via_path, via);
        say("via unloaded");
        fork_and_report("after the unload", None);
        unsafe extern "C" {
            fn quick_exit(status: c_int) -> !;
        }
        // SAFETY: ends the process; only quick-exit handlers run.
        unsafe { quick_exit(0) };
    }
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), "rt", RT);
    build(dir.path(), "via", VIA);
    let (status, lines, all) = run_scenario(
        "handlers_another_module_registered_go_with_the_module_of_their_code",
        dir.path(),
    );
    assert_eq!(status.code(), Some(0), "{all}");
    assert_eq!(lines, ["via unloaded", "child after the unload: "], "{all}");
}
