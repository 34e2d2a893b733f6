//! The loader's runtime on Windows, on modules packed from C compiled by mingw-w64's gcc at
//! test time: hot reload (kept state, `Current` handles, old code alive while pinned, the
//! function tables of both versions registered and removed), stack walks and a Rust panic
//! crossing module frames, native imports from `--needed` DLLs in Linux's order, the crash
//! reporter of `smf.exe run`, and `atexit` handlers run when their module is unloaded. Built
//! for `x86_64-pc-windows-gnu` and run under Wine (README, "Windows"); on other systems this
//! file is empty.
#![cfg(windows)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::windows::{FRAMES, Mingw, Outer, function_entry, image_of, mingw, panics, walk};
use smf_test_support::check_host;
use smf_test_support::wine::unix_path;

use simple_loader::Registry;

/// Compiles the C `source` (written to `dir/name.c`) to `dir/name.o` with mingw-w64's gcc
/// and `flags` (split at spaces), through `smf_test_support::host_command`.
fn compile(mingw: &Mingw, dir: &Path, name: &str, source: &str, flags: &str) -> PathBuf {
    let source_path = dir.join(format!("{name}.c"));
    std::fs::write(&source_path, source).unwrap();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    mingw
        .compile(&[source_path], dir, &flags)
        .pop()
        .expect("one object")
}

/// Packs `objects` with `options` and writes the module to `path` the way a build does:
/// to a new file renamed over the old one.
fn pack(objects: &[PathBuf], options: &smf_pack::Options, path: &Path) {
    let inputs: Vec<smf_pack::Input> = objects
        .iter()
        .map(|o| smf_pack::Input {
            name: o.display().to_string(),
            data: std::fs::read(o).unwrap(),
        })
        .collect();
    let module = smf_pack::pack(&inputs, options).unwrap();
    let new = path.with_extension("new");
    std::fs::write(&new, module).unwrap();
    std::fs::rename(&new, path).unwrap();
}

fn reloadable() -> smf_pack::Options {
    smf_pack::Options {
        reloadable: true,
        ..Default::default()
    }
}

const COUNTER_V1: &str = r#"
static int counter = 100;
struct totals { int calls; int last; } totals;
static int step(void) { return 1; }
int bump(void) { totals.calls++; totals.last = counter + step(); return counter = totals.last; }
int version(void) { return 1; }
"#;

const COUNTER_V2: &str = r#"
static int counter = 100;
struct totals { int calls; int last; } totals;
static int step(void) { return 10; }
int bump(void) { totals.calls++; totals.last = counter + step(); return counter = totals.last; }
int version(void) { return 2; }
int added(void) { return 3; }
"#;

type IntFn = extern "C" fn() -> i32;

#[test]
fn a_reloaded_mingw_module_keeps_its_state_switches_handles_and_tracks_both_function_tables() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.smf");
    pack(
        &[compile(&mingw, dir.path(), "counter", COUNTER_V1, "-O2 -g")],
        &reloadable(),
        &path,
    );
    let registry = Registry::new();
    // SAFETY: the module's constructors are the test's own C code.
    let first = unsafe { registry.load(&path) }.unwrap();
    // SAFETY: both functions are `int (void)` in every version.
    let version = unsafe { registry.current::<IntFn>(&path, "version") }.unwrap();
    let bump = unsafe { registry.current::<IntFn>(&path, "bump") }.unwrap();
    // SAFETY: as above; the handle keeps this version mapped.
    let old_version = unsafe { registry.pinned::<IntFn>(&path, "version") }.unwrap();
    let (_, old_bump) = first.export("bump").unwrap();
    drop(first);
    assert_eq!((*version.pin())(), 1);
    assert_eq!([(*bump.pin())(), (*bump.pin())()], [101, 102]);

    // The system unwinder finds the first version's functions (registered at load).
    let (begin, base) = function_entry(old_bump + 1).expect("no function entry for bump");
    assert_eq!(base + begin, old_bump);

    pack(
        &[compile(&mingw, dir.path(), "counter", COUNTER_V2, "-O2 -g")],
        &reloadable(),
        &path,
    );
    // SAFETY: as for the load.
    let report = unsafe { registry.reload(&path) }.unwrap();
    assert_eq!(report.version, 2);
    assert_eq!(report.added, ["added"], "{report}");
    for kept in ["counter", "totals"] {
        assert!(report.kept.iter().any(|k| k == kept), "{kept}: {report}");
    }
    // The same handles call the new code, which continues from the kept state.
    assert_eq!((*version.pin())(), 2);
    let second = registry.get(&path).unwrap();
    let totals = second.data("totals").unwrap();
    let read = || {
        // SAFETY: `totals` is two ints, written by the module only when called.
        unsafe { std::ptr::read(totals.as_ptr::<[i32; 2]>().unwrap()) }
    };
    assert_eq!(read(), [2, 102]);
    assert_eq!((*bump.pin())(), 112);
    assert_eq!(read(), [3, 112]);
    // The old version is still mapped for its pinned handle, and both versions' tables
    // are registered.
    assert_eq!((*old_version)(), 1);
    let (_, new_bump) = second.export("bump").unwrap();
    assert_ne!(new_bump, old_bump);
    let (begin, base) = function_entry(new_bump + 1).expect("no function entry for new bump");
    assert_eq!(base + begin, new_bump);
    let (begin, base) = function_entry(old_bump + 1).expect("old bump's entry was removed");
    assert_eq!(base + begin, old_bump);

    // Once nothing holds the old version, it is freed and its table removed.
    drop(old_version);
    registry.collect();
    assert_eq!(
        function_entry(old_bump + 1),
        None,
        "the old version's function table is still registered"
    );
    assert_eq!((*version.pin())(), 2);
}

/// Module code that calls back into the host through two frames of its own.
const CALLER: &str = r#"
typedef int (*callback)(int);
__attribute__((noinline)) int inner(callback f, int x) { int r = f(x + 1); return r * 2; }
__attribute__((noinline)) int outer(callback f, int x) { int r = inner(f, x); return r + 1; }
"#;

#[test]
fn stack_walks_and_rust_panics_cross_module_frames() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.smf");
    for (flags, reload) in [("-O2", false), ("-O0", true)] {
        pack(
            &[compile(&mingw, dir.path(), "caller", CALLER, flags)],
            &reloadable(),
            &path,
        );
        let registry = Registry::new();
        // SAFETY: no constructors.
        let module = unsafe { registry.load(&path) }.unwrap();
        if reload {
            // The walk must also work through a reloaded version's code, reached through
            // a slot's trampoline.
            pack(
                &[compile(
                    &mingw,
                    dir.path(),
                    "caller",
                    &format!("{CALLER}int extra(void) {{ return 0; }}\n"),
                    "-O0",
                )],
                &reloadable(),
                &path,
            );
            // SAFETY: as for the load.
            assert_eq!(unsafe { registry.reload(&path) }.unwrap().version, 2);
        }
        let module = if reload {
            registry.get(&path).unwrap()
        } else {
            module
        };
        // SAFETY: `outer` has this signature.
        let outer = unsafe { registry.current::<Outer>(&path, "outer") }.unwrap();
        // COFF symbols have no sizes: the function a return address lies in is the one
        // whose function-table entry the system unwinder finds for it.
        let within = |name: &str, address: usize| {
            let (_, start) = module.export(name).unwrap();
            function_entry(address).is_some_and(|(begin, base)| base + begin == start)
        };

        assert_eq!((*outer.pin())(walk, 4), 101, "{flags}");
        let frames = FRAMES.with(|f| f.borrow().clone());
        let at = |name: &str| frames.iter().position(|&a| within(name, a));
        let (inner_at, outer_at) = (at("inner"), at("outer"));
        assert!(
            matches!((inner_at, outer_at), (Some(i), Some(o)) if o == i + 1),
            "{flags}: no inner and outer frames, in order, among {frames:x?}"
        );
        // Past the module's frames the walk reaches this test again.
        let here = image_of(stack_walks_and_rust_panics_cross_module_frames as *const () as usize);
        let after = frames[outer_at.unwrap() + 1..]
            .iter()
            .position(|&a| image_of(a) == here);
        assert!(
            after.is_some(),
            "{flags}: the walk stops in module code: {frames:x?}"
        );

        // A panic unwinds through both module frames to the host's catch_unwind.
        let pinned = outer.pin();
        let call = *pinned;
        let caught = std::panic::catch_unwind(|| call(panics, 1)).unwrap_err();
        assert_eq!(
            caught.downcast_ref::<String>().map(String::as_str),
            Some("panic from the callback, x = 2")
        );
        assert_eq!((*outer.pin())(walk, 0), 21);
    }
}

/// A DLL exporting four functions, three of them also defined by the host, a registry
/// module and the C library, to tell where each import came from.
const NEEDED_DLL: &str = r#"
__declspec(dllexport) int only_in_dll(void) { return 7; }
__declspec(dllexport) int host_or_dll(void) { return 2; }
__declspec(dllexport) int module_or_dll(void) { return 2; }
__declspec(dllexport) int _getpid(void) { return 4242; }
"#;

const PROVIDER: &str = "int module_or_dll(void) { return 1; }\n";

const IMPORTER: &str = r#"
int only_in_dll(void);
int host_or_dll(void);
int module_or_dll(void);
int _getpid(void);
int probe(void) {
    return only_in_dll() * 1000 + host_or_dll() * 100 + module_or_dll() * 10
        + (_getpid() == 4242);
}
"#;

extern "C" fn host_or_dll() -> i32 {
    1
}

#[test]
fn imports_come_from_the_host_then_modules_then_needed_dlls_then_the_process() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("needed.c"), NEEDED_DLL).unwrap();
    let dll = dir.path().join("needed.dll");
    check_host(
        &mingw.gcc,
        &[
            "-shared".into(),
            "-O2".into(),
            unix_path(&dir.path().join("needed.c")),
            "-o".into(),
            unix_path(&dll),
        ],
    );
    let provider = dir.path().join("provider.smf");
    pack(
        &[compile(&mingw, dir.path(), "provider", PROVIDER, "-O2")],
        &Default::default(),
        &provider,
    );
    let importer = dir.path().join("importer.smf");
    let needed = smf_pack::Options {
        needed: vec![dll.display().to_string()],
        ..Default::default()
    };
    pack(
        &[compile(&mingw, dir.path(), "importer", IMPORTER, "-O2")],
        &needed,
        &importer,
    );

    let registry = Registry::new();
    // SAFETY: `host_or_dll` is an `int (void)` function that lives for the whole test.
    unsafe { registry.define("host_or_dll", host_or_dll as *const () as usize) };
    // SAFETY: no constructors, in the modules or the DLL.
    unsafe { registry.load(&provider) }.unwrap();
    let module = unsafe { registry.load(&importer) }.unwrap();
    // SAFETY: `probe` is `int (void)`.
    let probe = unsafe { module.get::<IntFn>("probe") }.unwrap();
    assert_eq!((*probe)(), 7111);
    assert_ne!(exported(&dll.display().to_string(), c"only_in_dll"), 0);
}

/// The address `GetProcAddress` gives for `name` in the loaded DLL `dll`.
fn exported(dll: &str, name: &std::ffi::CStr) -> usize {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let wide: Vec<u16> = dll.encode_utf16().chain([0]).collect();
    // SAFETY: looking up a loaded DLL and one of its exports by NUL-terminated names.
    unsafe {
        let dll = GetModuleHandleW(wide.as_ptr());
        assert!(!dll.is_null(), "{dll:?} is not loaded");
        GetProcAddress(dll, name.as_ptr().cast()).map_or(0, |f| f as usize)
    }
}

const CRASH: &str = r#"#include <stdio.h>
int *volatile nowhere;
__attribute__((noinline)) int poke(int x) {
    return *nowhere + x;
}
int start(void) { puts("before the fault"); fflush(NULL); return poke(1); }
"#;

#[test]
fn a_module_that_faults_under_smf_run_is_reported_by_function_and_line() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.smf");
    let options = smf_pack::Options {
        entry: Some("start".into()),
        ..Default::default()
    };
    pack(
        &[compile(&mingw, dir.path(), "crash", CRASH, "-O1 -g")],
        &options,
        &path,
    );
    let output = common::smf().arg("run").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // (Wine's debugger may add its own report to stdout.)
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .replace("\r\n", "\n")
            .starts_with("before the fault\n"),
        "{stderr}"
    );
    let report = stderr
        .lines()
        .find(|l| l.starts_with("smf: EXCEPTION_ACCESS_VIOLATION"))
        .unwrap_or_else(|| panic!("no crash report in:\n{stderr}"));
    assert!(
        report.starts_with(
            "smf: EXCEPTION_ACCESS_VIOLATION (invalid memory reference at 0x0) in poke+0x"
        ) && report.contains("crash.smf) at ")
            && report.ends_with("crash.c:4"),
        "{report}"
    );
    // The process ends with the exception's code, as without the reporter.
    assert_eq!(
        output.status.code(),
        Some(0xC000_0005_u32 as i32),
        "{stderr}"
    );
}

/// `smf dev`'s loop through the library, with a build command (run by `cmd /C` on Windows)
/// that copies the object a compile made: the first build loads it, the next rebuilds and
/// reloads it, keeping its state. (The file watcher is not exercised: see README, "Windows".)
#[test]
fn a_dev_session_rebuilds_with_a_cmd_command_and_reloads() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let v1 = compile(&mingw, dir.path(), "v1", COUNTER_V1, "-O1 -g");
    let v2 = compile(&mingw, dir.path(), "v2", COUNTER_V2, "-O1 -g");
    let next = dir.path().join("next.o");
    let lib = dir.path().join("lib.o");
    std::fs::copy(&v1, &next).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut project = smf_dev::Project::sources(vec![lib.clone()]);
    project.build_command = Some(format!(
        "copy /Y \"{}\" \"{}\"",
        next.display(),
        lib.display()
    ));
    let mut session = smf_dev::Session::new(project, work, |_| {});
    assert!(session.build().unwrap().is_none(), "the first build loads");
    // SAFETY: `bump` is `int (void)` in both versions.
    let bump = unsafe {
        session
            .registry()
            .current::<IntFn>(session.module_path(), "bump")
    }
    .unwrap();
    assert_eq!([(*bump.pin())(), (*bump.pin())()], [101, 102]);
    // A rebuild runs the command again, which now copies the second version.
    std::fs::copy(&v2, &next).unwrap();
    let report = session.build().unwrap().expect("a reload report");
    assert_eq!(report.version, 2);
    assert!(report.kept.iter().any(|k| k == "counter"), "{report}");
    assert_eq!((*bump.pin())(), 112);
    // SAFETY: `version` is `int (void)` in both versions.
    let version = unsafe {
        session
            .registry()
            .current::<IntFn>(session.module_path(), "version")
    }
    .unwrap();
    assert_eq!((*version.pin())(), 2);
}

/// `smf dev`'s watch loop through the library (`Session::poll`, the file watcher of
/// `notify`, Windows' `ReadDirectoryChangesW`): a watched C source edited in place, then
/// replaced by a rename as editors save, is seen, and each edit rebuilds and reloads. The
/// build command (run by `cmd /C`) copies the object the test compiled from the source's new
/// text: under Wine a Windows program gets no exit status from a Linux compiler, so the
/// session cannot run mingw-w64's gcc itself (README, "Windows"). Run in the Windows
/// temporary directory (Wine's `C:` drive) and in the target directory (its `Z:` drive, the
/// Unix root).
#[test]
fn a_dev_session_sees_a_source_edited_in_place_and_renamed_over_and_reloads() {
    let Some(mingw) = mingw() else { return };
    let unix_side = smf_test_support::wine::windows_path(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&unix_side).unwrap();
    for dir in [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir_in(unix_side).unwrap(),
    ] {
        watch_rebuild_reload(&mingw, dir.path());
    }
}

fn watch_rebuild_reload(mingw: &Mingw, dir: &Path) {
    let v1 = compile(mingw, dir, "v1", COUNTER_V1, "-O1 -g");
    let v2 = compile(mingw, dir, "v2", COUNTER_V2, "-O1 -g");
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let source = src.join("counter.c");
    std::fs::write(&source, COUNTER_V1).unwrap();
    let next = dir.join("next.o");
    let lib = dir.join("lib.o");
    std::fs::copy(&v1, &next).unwrap();
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let mut project = smf_dev::Project::sources(vec![lib.clone()]);
    project.build_command = Some(format!(
        "copy /Y \"{}\" \"{}\"",
        next.display(),
        lib.display()
    ));
    project.watch = vec![source.clone()];
    let mut session = smf_dev::Session::new(project, work, |_| {});
    assert!(session.build().unwrap().is_none(), "the first build loads");
    // SAFETY: `version` is `int (void)` in both versions.
    let version = unsafe {
        session
            .registry()
            .current::<IntFn>(session.module_path(), "version")
    }
    .unwrap();
    assert_eq!((*version.pin())(), 1);
    // The first poll starts the watcher; nothing has changed.
    assert!(session.poll(Duration::from_millis(100)).unwrap().is_none());
    assert!(session.poll(Duration::from_millis(300)).unwrap().is_none());

    // Waits for the rebuild an edit causes; returns its report.
    let mut rebuilt = |what: &str| {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no rebuild within 60 s of the source {what}"
            );
            if let Some(result) = session.poll(Duration::from_millis(200)).unwrap() {
                let report = result.unwrap().expect("a reload report");
                eprintln!(
                    "{}: source {what}: rebuilt after {:?}",
                    dir.display(),
                    start.elapsed()
                );
                return report;
            }
        }
    };
    std::fs::copy(&v2, &next).unwrap();
    std::fs::write(&source, COUNTER_V2).unwrap();
    assert_eq!(rebuilt("written in place").version, 2);
    assert_eq!((*version.pin())(), 2);

    std::fs::copy(&v1, &next).unwrap();
    let partial = src.join("counter.c.tmp");
    std::fs::write(&partial, COUNTER_V1).unwrap();
    std::fs::rename(&partial, &source).unwrap();
    assert_eq!(rebuilt("renamed over").version, 3);
    assert_eq!((*version.pin())(), 1);
}

/// A module that registers an exit handler with `atexit`, as mingw-w64's C++ static
/// destructors do, and counts its runs in the host's `int`.
const AT_EXIT: &str = r#"#include <stdlib.h>
static int *runs;
static void count(void) { *runs += 1; }
int arm(int *where) { runs = where; return atexit(count); }
"#;

static AT_EXIT_RUNS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[test]
fn an_atexit_handler_of_a_module_runs_when_the_module_is_unloaded() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atexit.smf");
    pack(
        &[compile(&mingw, dir.path(), "atexit", AT_EXIT, "-O2")],
        &smf_pack::Options::default(),
        &path,
    );
    let registry = Registry::new();
    // SAFETY: no constructors.
    let module = unsafe { registry.load(&path) }.unwrap();
    {
        // SAFETY: `arm` has this signature; the counter outlives the module.
        let arm = unsafe { module.get::<extern "C" fn(*mut i32) -> i32>("arm") }.unwrap();
        assert_eq!((*arm)(AT_EXIT_RUNS.as_ptr()), 0, "atexit failed");
    }
    assert_eq!(AT_EXIT_RUNS.load(std::sync::atomic::Ordering::SeqCst), 0);
    // msvcrt's `atexit` would keep the handler until the process exits, and then call into
    // the unmapped image; the loader runs it when the module goes.
    drop(module);
    drop(registry);
    assert_eq!(
        AT_EXIT_RUNS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the handler did not run when its module was unloaded"
    );
}

/// A module with a TLS callback that notes what it is told, with its constructor and
/// destructor: `P` process attach, `T` thread attach, `t` thread detach, `d` process detach,
/// `C` constructor, `W` its own thread's body, `D` destructor. Thread events count for the
/// threads the test watches only (the test harness runs other threads meanwhile). The log
/// moves to a buffer of the host's (`move_log`), which outlives the module.
const TLS_CALLBACK: &str = r#"#include <windows.h>
#include <string.h>
static char own[64];
static char *out = own;
static volatile LONG length;
static volatile DWORD watched[2];
static void *image_seen;
static void note(char c) { LONG i = InterlockedIncrement(&length) - 1; if (i < 63) out[i] = c; }
static int is_watched(void) { DWORD me = GetCurrentThreadId(); return me == watched[0] || me == watched[1]; }
static void NTAPI on_tls(PVOID image, DWORD reason, PVOID reserved) {
    if ((reason == DLL_THREAD_ATTACH || reason == DLL_THREAD_DETACH) && !is_watched()) return;
    if (reason == DLL_PROCESS_ATTACH) image_seen = image;
    note("dPTt"[reason & 3]);
}
__attribute__((section(".CRT$XLB"), used)) static PIMAGE_TLS_CALLBACK entry = on_tls;
__attribute__((constructor)) static void constructor(void) { note('C'); }
__attribute__((destructor)) static void destructor(void) { note('D'); }
static DWORD WINAPI body(LPVOID arg) { note('W'); return 0; }
void run_thread(void) {
    DWORD id;
    HANDLE thread = CreateThread(NULL, 0, body, NULL, CREATE_SUSPENDED, &id);
    watched[0] = id;
    ResumeThread(thread);
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
}
void watch(DWORD id) { watched[1] = id; }
void *image(void) { return image_seen; }
void move_log(char *buffer) { memcpy(buffer, own, sizeof own); out = buffer; }
"#;

/// A module's TLS callback is told as a DLL's is: process attach before its constructor,
/// with the image base; thread attach and detach on its own thread; thread detach on a host
/// thread that began before the load; process detach after its destructor, when it is
/// unloaded.
#[test]
fn a_module_s_tls_callback_hears_of_its_load_threads_and_unload() {
    let Some(mingw) = mingw() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("callback.smf");
    pack(
        &[compile(&mingw, dir.path(), "callback", TLS_CALLBACK, "-O2")],
        &smf_pack::Options::default(),
        &path,
    );
    // A host thread that exists before the load and ends while the module is loaded.
    let (id_sender, id_receiver) = std::sync::mpsc::channel();
    let (end_sender, end_receiver) = std::sync::mpsc::channel::<()>();
    let host_thread = std::thread::spawn(move || {
        // SAFETY: no preconditions.
        id_sender
            .send(unsafe { windows_sys::Win32::System::Threading::GetCurrentThreadId() })
            .unwrap();
        end_receiver.recv().unwrap();
    });
    let host_thread_id = id_receiver.recv().unwrap();
    let registry = Registry::new();
    // SAFETY: the module's constructor and TLS callback only write its own data.
    let module = unsafe { registry.load(&path) }.unwrap();
    let mut log = [0u8; 64];
    {
        // SAFETY: the module's functions have these signatures; `log` outlives the module.
        let run_thread = unsafe { module.get::<extern "C" fn()>("run_thread") }.unwrap();
        let watch = unsafe { module.get::<extern "C" fn(u32)>("watch") }.unwrap();
        let image = unsafe { module.get::<extern "C" fn() -> usize>("image") }.unwrap();
        let move_log = unsafe { module.get::<extern "C" fn(*mut u8)>("move_log") }.unwrap();
        assert_eq!(
            (*image)(),
            module.base(),
            "the image argument of process attach"
        );
        (*run_thread)();
        (*watch)(host_thread_id);
        end_sender.send(()).unwrap();
        host_thread.join().unwrap();
        (*move_log)(log.as_mut_ptr());
    }
    let text = |log: &[u8]| {
        String::from_utf8_lossy(log)
            .trim_end_matches('\0')
            .to_owned()
    };
    assert_eq!(text(&log), "PCTWtt");
    drop(module);
    drop(registry);
    assert_eq!(text(&log), "PCTWttDd");
}
