//! Module code seen from the rest of the process (docs/RUNTIME.md): crash reports, gdb
//! backtraces and breakpoints through the GDB JIT interface, the perf map, the symbolizer,
//! C++ exceptions in many modules loaded and unloaded in any order, and static thread-local
//! blocks for initial-exec code.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// tests/programs/crash, compiled at -O2 and packed, and linked natively.
struct Crash {
    _work: tempfile::TempDir,
    module: PathBuf,
    native: PathBuf,
}

fn crash_program() -> Crash {
    let work = tempfile::tempdir().unwrap();
    let objects = compile(&c_sources(&program_dir("crash")), work.path(), &["-O2"]);
    let module = work.path().join("crash.sme");
    pack(&objects, &module, &["--entry", "main"]);
    let native = work.path().join("native");
    let mut link = cc();
    link.arg("-o").arg(&native).args(&objects);
    check(link);
    Crash {
        _work: work,
        module,
        native,
    }
}

fn run(module: &Path, mode: &str) -> Output {
    smf().arg("run").arg(module).arg(mode).output().unwrap()
}

fn stderr(output: &Output) -> String {
    program_stderr(output)
}

#[test]
fn a_crash_in_module_code_names_the_function_and_dies_of_the_signal() {
    let crash = crash_program();
    let module = crash.module.display().to_string();
    for (mode, signal, line, function) in [
        (
            "segv",
            libc::SIGSEGV,
            String::from("smf: SIGSEGV (invalid memory reference at 0x0) in crash_here+0x"),
            "crash_here",
        ),
        (
            "fpe",
            libc::SIGFPE,
            String::from("smf: SIGFPE (arithmetic exception) in divide_by+0x"),
            "divide_by",
        ),
        (
            "bus",
            libc::SIGBUS,
            String::from("smf: SIGBUS (bus error at 0x"),
            "read_past_end_of_file",
        ),
        (
            "ill",
            libc::SIGILL,
            String::from("smf: SIGILL (illegal instruction) in trap_here+0x"),
            "trap_here",
        ),
    ] {
        if mode == "fpe" && !cfg!(target_arch = "x86_64") {
            note_skipped("fpe: an AArch64 integer division by zero returns 0, no signal");
            continue;
        }
        let native = common::target(&crash.native).arg(mode).output().unwrap();
        assert_eq!(native.status.signal(), Some(signal), "native {mode}");
        let output = run(&crash.module, mode);
        let report = stderr(&output);
        assert_eq!(
            output.status.signal(),
            Some(signal),
            "smf run crash {mode} must die of the signal, as the native build does; stderr:\n{report}"
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("mode {mode}\n")
        );
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {report}");
        assert!(lines[0].starts_with(&line), "{mode}: {report}");
        assert!(
            lines[0].contains(&format!(" in {function}+0x")),
            "{mode}: {report}"
        );
        assert!(
            lines[0].ends_with(&format!(" ({module})")),
            "{mode}: {report}"
        );
    }
}

#[test]
fn a_crash_in_a_library_names_the_module_function_that_called_it() {
    let crash = crash_program();
    // raise(SIGSEGV) kills the thread inside libc; the report walks back to module code.
    let output = run(&crash.module, "raise");
    let report = stderr(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "{report}");
    assert!(
        report.starts_with("smf: SIGSEGV (invalid memory reference) at pc 0x"),
        "{report}"
    );
    assert!(report.contains(", outside any module"), "{report}");
    if !stack_scan_unavailable() {
        assert!(
            report.contains(", outside any module, called from call_chain+0x"),
            "{report}"
        );
    }
}

/// gdb's batch output for `smf run MODULE MODE` with `args` as its commands (`run` starts
/// the program). Under a qemu runner (the aarch64 tests), qemu runs `smf` with its gdb stub
/// waiting on a port and `gdb-multiarch` attaches to it, reading the C library's symbols
/// from the cross toolchain's sysroot; `run` becomes `continue`, as the program is already
/// started and stopped at its first instruction.
fn gdb(args: &[&str], module: &Path, mode: &str) -> String {
    let Some((qemu, qemu_args)) = runner() else {
        let mut command = std::process::Command::new("gdb");
        command.args(["-batch", "-nx", "-ex", "set debuginfod enabled off"]);
        for arg in args {
            command.args(["-ex", arg]);
        }
        command
            .arg("--args")
            .arg(env!("CARGO_BIN_EXE_smf"))
            .arg("run")
            .arg(module)
            .arg(mode);
        return gdb_output(command);
    };
    assert!(
        qemu.contains("qemu-"),
        "gdb under the runner {qemu:?}: only qemu's gdb stub is known"
    );
    // A port no one listens on now; qemu takes it a moment later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut program = std::process::Command::new(&qemu);
    program
        .arg("-g")
        .arg(port.to_string())
        .args(&qemu_args)
        .arg(env!("CARGO_BIN_EXE_smf"))
        .arg("run")
        .arg(module)
        .arg(mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut program = program.spawn().unwrap();
    // The runner's `-L DIR`: where gdb finds the target's dynamic linker and C library.
    let sysroot = qemu_args
        .iter()
        .position(|a| a == "-L")
        .and_then(|i| qemu_args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "/".into());
    let mut output = String::new();
    for _attempt in 0..50 {
        let mut command = std::process::Command::new("gdb-multiarch");
        command.args(["-batch", "-nx", "-ex", "set debuginfod enabled off"]);
        command.args(["-ex", &format!("set sysroot {sysroot}")]);
        command.args(["-ex", &format!("file {}", env!("CARGO_BIN_EXE_smf"))]);
        command.args(["-ex", &format!("target remote 127.0.0.1:{port}")]);
        for arg in args {
            command.args(["-ex", if *arg == "run" { "continue" } else { arg }]);
        }
        output = gdb_output(command);
        if !output.contains("Connection refused") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = program.kill();
    let _ = program.wait();
    output
}

fn gdb_output(mut command: std::process::Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} ({e}); .ci/run installs it"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn gdb_backtrace_names_module_functions_and_walks_into_the_host() {
    let crash = crash_program();
    let output = gdb(&["run", "bt"], &crash.module, "segv");
    let backtrace: Vec<&str> = output.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        backtrace
            .first()
            .is_some_and(|l| l.contains(" in crash_here ()")),
        "frame 0 is the module function that crashed:\n{output}"
    );
    // The module's unwind tables, given to gdb with the symbols, take the walk through the
    // module's frames back into the host that called its main.
    let position = |name: &str| backtrace.iter().position(|l| l.contains(name));
    let chain = position(" in call_chain (");
    let main = position(" in main (");
    let host = position("run_main");
    assert!(
        chain.is_some() && main > chain && host > main,
        "crash_here ← call_chain ← main ← Module::run_main:\n{output}"
    );
}

#[test]
fn gdb_breaks_on_a_module_function_before_it_is_loaded() {
    let crash = crash_program();
    let output = gdb(
        &[
            "set breakpoint pending on",
            "break reached_breakpoint",
            "run",
            "bt 3",
            "continue",
        ],
        &crash.module,
        "none",
    );
    assert!(
        output.contains("Breakpoint 1, ") && output.contains(" in reached_breakpoint ()"),
        "the pending breakpoint resolves when the module is registered:\n{output}"
    );
    assert!(
        output.contains("#1 ") && output.contains(" in call_chain ("),
        "{output}"
    );
    assert!(
        output.contains("exited with code 055"),
        "the program continues after the breakpoint:\n{output}"
    );
}

#[test]
fn perf_map_lists_module_functions_when_asked() {
    let crash = crash_program();
    let child = smf()
        .env("SMF_PERF_MAP", "1")
        .arg("run")
        .arg(&crash.module)
        .arg("none")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(45));
    let text = std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    std::fs::remove_file(&map).ok();
    let mut names = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(3, ' ').collect();
        assert_eq!(fields.len(), 3, "START SIZE name: {line:?}");
        let start = u64::from_str_radix(fields[0], 16).unwrap();
        let size = u64::from_str_radix(fields[1], 16).unwrap();
        assert!(start > 0 && size > 0, "{line:?}");
        names.push(fields[2].to_owned());
    }
    for name in ["crash_here", "divide_by", "trap_here", "call_chain", "main"] {
        assert!(names.iter().any(|n| n == name), "{name} in {text}");
    }

    // Off by default.
    let child = smf()
        .env_remove("SMF_PERF_MAP")
        .arg("run")
        .arg(&crash.module)
        .arg("none")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    child.wait_with_output().unwrap();
    assert!(
        !map.exists(),
        "{} written without SMF_PERF_MAP",
        map.display()
    );
}

#[test]
fn symbolize_names_module_function_and_offset_until_unload() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("lib.c");
    std::fs::write(
        &source,
        "int first(int x) { return x + 1; }\nstatic int hidden(int x) { return x * 7; }\n\
         int (*second(void))(int) { return hidden; }\n",
    )
    .unwrap();
    let objects = compile(&[source], work.path(), &["-O2"]);
    let path = work.path().join("lib.smf");
    pack(&objects, &path, &[]);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let module =
        unsafe { simple_loader::load(&path, &simple_loader::LoadOptions::default(), None) }
            .unwrap();
    // SAFETY: the C signatures above.
    let first = unsafe { module.get::<extern "C" fn(i32) -> i32>("first") }.unwrap();
    // SAFETY: as above.
    let second =
        unsafe { module.get::<extern "C" fn() -> extern "C" fn(i32) -> i32>("second") }.unwrap();
    let first_address = *first as usize;
    let location = simple_loader::symbolize(first_address + 2).expect("inside the module");
    assert_eq!(location.module, path.display().to_string());
    assert_eq!(location.module_base, module.base());
    assert_eq!(location.symbol.as_deref(), Some("first"));
    assert_eq!(
        (location.symbol_address, location.offset),
        (first_address, 2)
    );
    assert_eq!(
        location.to_string(),
        format!("first+0x2 in {}", path.display())
    );
    // Local functions are named too.
    let hidden = second();
    assert_eq!(
        simple_loader::symbolize(hidden as usize).and_then(|l| l.symbol),
        Some("hidden".to_owned())
    );
    assert_eq!(hidden(6), 42);
    // Addresses in the image but in no function name the module alone.
    let data = simple_loader::symbolize(module.base() + module.image_len() - 1).unwrap();
    assert_eq!(data.symbol, None);
    assert!(simple_loader::symbolize(first_address).is_some());
    drop(module);
    assert_eq!(
        simple_loader::symbolize(first_address),
        None,
        "forgotten at unload"
    );
    assert_eq!(simple_loader::symbolize(0x1000), None);
}

#[test]
fn cxx_exceptions_work_in_many_modules_loaded_and_unloaded_in_any_order() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("thrower.cpp");
    std::fs::write(
        &source,
        r#"
        #include <stdexcept>
        #include <string>
        static int depth(int n) {
            if (n == 0) throw std::runtime_error("bottom " + std::to_string(n));
            return depth(n - 1) + 1;
        }
        extern "C" int throw_and_catch(int n) {
            try { return depth(n); }
            catch (const std::runtime_error &e) { return 1000 + n + (int)std::string(e.what()).size(); }
        }
        "#,
    )
    .unwrap();
    let objects = compile_cxx(&[source], work.path(), &["-O2"]);
    let path = work.path().join("thrower.smf");
    pack(&objects, &path, &["--needed", "libstdc++.so.6"]);
    let options = simple_loader::LoadOptions::default();
    let mut modules: Vec<Option<simple_loader::Module>> = (0..64)
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        .map(|_| Some(unsafe { simple_loader::load(&path, &options, None) }.unwrap()))
        .collect();
    let call = |module: &simple_loader::Module, n: i32| {
        // SAFETY: `int throw_and_catch(int)`.
        let f = unsafe { module.get::<extern "C" fn(i32) -> i32>("throw_and_catch") }.unwrap();
        f(n)
    };
    for (i, module) in modules.iter().enumerate() {
        assert_eq!(
            call(module.as_ref().unwrap(), i as i32 % 5),
            1008 + i as i32 % 5
        );
    }
    // Unload every third module, from the middle of the unwinder's list, and throw in the rest.
    for (i, module) in modules.iter_mut().enumerate() {
        if i % 3 == 1 {
            *module = None;
        }
    }
    for module in modules.iter().flatten() {
        assert_eq!(call(module, 7), 1015);
    }
    modules.reverse();
    modules.truncate(10);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let fresh = unsafe { simple_loader::load(&path, &options, None) }.unwrap();
    assert_eq!(call(&fresh, 3), 1011);
    for module in modules.iter().flatten() {
        assert_eq!(call(module, 2), 1010);
    }
}

/// A module whose code reaches its thread-locals with the initial-exec model.
fn initial_exec_module(work: &Path, name: &str, declarations: &str) -> PathBuf {
    let source = work.join(format!("{name}.c"));
    std::fs::write(
        &source,
        format!(
            r#"
            {declarations}
            __thread long counter = 5;
            long bump(void) {{ return ++counter; }}
            "#
        ),
    )
    .unwrap();
    let objects = compile(&[source], work, &["-O2", "-ftls-model=initial-exec"]);
    let path = work.join(format!("{name}.smf"));
    pack(&objects, &path, &[]);
    path
}

#[test]
fn initial_exec_thread_locals_are_per_module_and_per_thread_and_given_back() {
    let work = tempfile::tempdir().unwrap();
    let path = initial_exec_module(work.path(), "ie", "");
    let options = simple_loader::LoadOptions::default();
    let bump = |module: &simple_loader::Module| -> extern "C" fn() -> i64 {
        // SAFETY: `long bump(void)`; callers use it only while `module` is loaded.
        *unsafe { module.get::<extern "C" fn() -> i64>("bump") }.unwrap()
    };

    // A thread that runs before the modules are loaded gets initialised copies too.
    let (loaded_tx, loaded_rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let early = std::thread::spawn(move || {
        let (a, b) = loaded_rx.recv().unwrap();
        // SAFETY: the addresses of `bump` in two modules the main thread keeps loaded
        // until this thread is joined.
        type Bump = extern "C" fn() -> i64;
        let (a, b) = unsafe {
            (
                std::mem::transmute::<usize, Bump>(a),
                std::mem::transmute::<usize, Bump>(b),
            )
        };
        (a(), a(), b())
    });
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let first = unsafe { simple_loader::load(&path, &options, None) }.unwrap();
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let second = unsafe { simple_loader::load(&path, &options, None) }.unwrap();
    assert_eq!((bump(&first)(), bump(&first)()), (6, 7));
    assert_eq!(bump(&second)(), 6, "each loaded module has its own block");
    loaded_tx
        .send((bump(&first) as usize, bump(&second) as usize))
        .unwrap();
    assert_eq!(early.join().unwrap(), (6, 7, 6));
    let f = bump(&first) as usize;
    let later = std::thread::spawn(move || {
        // SAFETY: `bump` of `first`, loaded until after the join.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> i64>(f) };
        f()
    });
    assert_eq!(
        later.join().unwrap(),
        6,
        "a new thread starts from the template"
    );
    assert_eq!(bump(&first)(), 8, "this thread's copy is untouched");
    drop((first, second));

    // glibc's static TLS reserve holds a few such blocks at once; unloading gives them back.
    for _ in 0..300 {
        // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
        let module = unsafe { simple_loader::load(&path, &options, None) }.unwrap();
        assert_eq!(bump(&module)(), 6);
    }
}

#[test]
fn a_static_block_too_large_for_the_c_library_is_a_load_error() {
    let work = tempfile::tempdir().unwrap();
    let path = initial_exec_module(
        work.path(),
        "huge",
        "__thread char huge[1 << 20]; char *huge_at(void) { return huge; }",
    );
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let error = unsafe { simple_loader::load(&path, &simple_loader::LoadOptions::default(), None) }
        .expect_err("a 1 MiB initial-exec block does not fit in static TLS")
        .to_string();
    assert!(
        error.contains("huge.smf")
            && error.contains("need a static thread-local block")
            && error.contains("static TLS"),
        "{error}"
    );
}
