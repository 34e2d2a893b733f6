//! Source lines of module code (the `srcmap` table, docs/FORMAT.md *Source map*), end to end
//! on a real C program compiled with `-g` by the system compiler (tests/srcmap/): the packer
//! makes the table from the objects' DWARF line programs, and the crash report of `smf run`,
//! `symbolize`, `smf inspect --lines` and gdb (through the GDB JIT interface) name the lines.
//! The expected lines are the ones marked `LINE:name` in the sources.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;

fn sources() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/srcmap");
    vec![dir.join("lines_main.c"), dir.join("lines_util.c")]
}

/// The line of `file` (a name under tests/srcmap) marked `LINE:marker`.
fn line_of(file: &str, marker: &str) -> u32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/srcmap")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let tag = format!("LINE:{marker} ");
    text.lines()
        .position(|line| line.contains(&tag))
        .unwrap_or_else(|| panic!("no {tag} in {}", path.display())) as u32
        + 1
}

/// The program compiled with `flags`, packed with `main` as entry.
struct Program {
    _work: tempfile::TempDir,
    module: PathBuf,
}

fn build(flags: &[&str]) -> Program {
    let work = tempfile::tempdir().unwrap();
    let objects = compile(&sources(), work.path(), flags);
    let module = work.path().join("lines.sme");
    pack(&objects, &module, &["--entry", "main"]);
    Program {
        _work: work,
        module,
    }
}

const BUILDS: [&[&str]; 3] = [
    &["-g", "-O0"],
    &["-g", "-O2"],
    // Every function in a section of its own: each line sequence is relocated against a
    // different input section, placed apart by the packer.
    &["-g", "-O2", "-ffunction-sections"],
];

#[test]
fn a_crash_report_names_the_source_file_and_line() {
    let crash_line = line_of("lines_util.c", "crash");
    for flags in BUILDS {
        let program = build(flags);
        let output = smf()
            .arg("run")
            .arg(&program.module)
            .arg("segv")
            .output()
            .unwrap();
        let report = program_stderr(&output);
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGSEGV),
            "{flags:?}: {report}"
        );
        let expected = format!("lines_util.c:{crash_line}\n");
        assert!(
            report.starts_with("smf: SIGSEGV (invalid memory reference at 0x0) in deref+0x")
                && report.contains(" at /")
                && report.ends_with(&expected),
            "{flags:?}: the report names the crashing line ({expected:?}):\n{report}"
        );
    }
    // Without -g there is no source map, and the report names the function alone.
    let program = build(&["-O2"]);
    let output = smf()
        .arg("run")
        .arg(&program.module)
        .arg("segv")
        .output()
        .unwrap();
    let report = program_stderr(&output);
    assert!(
        report.starts_with("smf: SIGSEGV") && !report.contains(".c:"),
        "{report}"
    );
}

#[test]
fn inspect_lines_lists_the_source_map() {
    let loop_line = line_of("lines_util.c", "loop");
    let sum_call = line_of("lines_main.c", "sum-call");
    let program = build(&["-g", "-O0"]);
    let output = check({
        let mut command = smf();
        command.arg("inspect").arg("--lines").arg(&program.module);
        command
    });
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("Source lines ("),
        "only the lines:\n{text}"
    );
    assert!(!text.contains("SMF header"), "only the lines:\n{text}");
    for expected in [
        format!("/lines_util.c:{loop_line}:"),
        format!("/lines_main.c:{sum_call}:"),
    ] {
        assert!(text.contains(&expected), "{expected} in:\n{text}");
    }
    // Every row's address is in order, and end rows are listed as `-`.
    let addresses: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| {
            u64::from_str_radix(
                l.trim()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_start_matches("0x"),
                16,
            )
            .unwrap()
        })
        .collect();
    assert!(addresses.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.trim_end().ends_with('-'), "{text}");

    let json = check({
        let mut command = smf();
        command
            .args(["inspect", "--json", "--lines"])
            .arg(&program.module);
        command
    });
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = value["lines"].as_array().unwrap();
    assert_eq!(rows.len(), addresses.len());
    assert!(
        rows.iter()
            .any(|r| r["line"] == loop_line
                && r["file"].as_str().unwrap().ends_with("/lines_util.c"))
    );

    let plain = build(&["-O0"]);
    let output = check({
        let mut command = smf();
        command.arg("inspect").arg("--lines").arg(&plain.module);
        command
    });
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Source lines: none (no srcmap table)\n"
    );
}

#[test]
fn symbolize_returns_the_source_line() {
    let open_line = line_of("lines_util.c", "sum-open");
    for flags in BUILDS {
        let program = build(flags);
        // SAFETY: a module this test built from its own sources; nothing of it is run.
        let module = unsafe {
            simple_loader::load(
                &program.module,
                &simple_loader::LoadOptions::default(),
                None,
            )
        }
        .unwrap();
        // SAFETY: `int helper_sum(int)` in lines_util.c; it is not called.
        let sum = unsafe { module.get::<extern "C" fn(i32) -> i32>("helper_sum") }.unwrap();
        let location = simple_loader::symbolize(*sum as usize).expect("in the module");
        assert_eq!(location.symbol.as_deref(), Some("helper_sum"));
        let source = location.source.clone().expect("a source line");
        assert!(
            source.file.ends_with("/tests/srcmap/lines_util.c"),
            "{source}"
        );
        // The function's first instruction belongs to its opening line (gcc) or, once
        // optimised, possibly to the first line of its body.
        assert!(
            (open_line..open_line + 4).contains(&source.line),
            "{flags:?}: helper_sum starts at {source}, line {open_line} opens it"
        );
        assert!(
            location.to_string().ends_with(&format!(" at {source}")),
            "{location}"
        );
    }
}

/// gdb running `smf run MODULE MODE` in batch mode with `commands`.
fn gdb(commands: &[&str], module: &Path, mode: &str) -> String {
    let mut command = std::process::Command::new("gdb");
    command.args(["-batch", "-nx", "-ex", "set debuginfod enabled off"]);
    for arg in commands {
        command.args(["-ex", arg]);
    }
    command
        .arg("--args")
        .arg(env!("CARGO_BIN_EXE_smf"))
        .arg("run")
        .arg(module)
        .arg(mode);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run gdb ({e}); .ci/run installs it"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn gdb_breaks_on_a_source_line_and_shows_lines_in_the_backtrace() {
    if skip_under_runner("gdb runs the program itself and cannot run it under the emulator") {
        return;
    }
    let loop_line = line_of("lines_util.c", "loop");
    let sum_call = line_of("lines_main.c", "sum-call");
    let program = build(&["-g", "-O0"]);
    let breakpoint = format!("break lines_util.c:{loop_line}");
    let output = gdb(
        &[
            "set breakpoint pending on",
            &breakpoint,
            "run",
            "bt",
            "continue",
        ],
        &program.module,
        "none",
    );
    assert!(
        output.contains(&format!("lines_util.c:{loop_line}")) && output.contains("Breakpoint 1, "),
        "the breakpoint on a source line of a module is hit:\n{output}"
    );
    let backtrace: Vec<&str> = output.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        backtrace.first().is_some_and(
            |l| l.contains("helper_sum") && l.contains(&format!("lines_util.c:{loop_line}"))
        ),
        "frame 0 names the function and its line:\n{output}"
    );
    assert!(
        backtrace.get(1).is_some_and(
            |l| l.contains(" main ") && l.contains(&format!("lines_main.c:{sum_call}"))
        ),
        "frame 1 is main at the call:\n{output}"
    );
    assert!(output.contains("Breakpoint 1, "), "{output}");

    // A crash stops at its source line.
    let crash_line = line_of("lines_util.c", "crash");
    let output = gdb(&["run", "bt 2"], &program.module, "segv");
    let deref_call = line_of("lines_main.c", "deref-call");
    let backtrace: Vec<&str> = output.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        backtrace.first().is_some_and(
            |l| l.contains("deref") && l.contains(&format!("lines_util.c:{crash_line}"))
        ) && backtrace
            .get(1)
            .is_some_and(|l| l.contains(&format!("lines_main.c:{deref_call}"))),
        "the crash in deref, called from main:\n{output}"
    );
}

/// Every instruction byte of every function maps to the line binutils' `addr2line` gives for
/// the same byte of the same objects linked natively into a shared library (the function's
/// bytes are at the same offsets from its start in both).
#[test]
fn lines_agree_with_addr2line_on_the_native_link() {
    for flags in BUILDS {
        let work = tempfile::tempdir().unwrap();
        let objects = compile(&sources(), work.path(), flags);
        let module = work.path().join("lines.sme");
        pack(&objects, &module, &["--entry", "main"]);
        let library = work.path().join("liblines.so");
        let mut link = cc();
        link.arg("-shared").arg("-o").arg(&library).args(&objects);
        check(link);
        let bytes = std::fs::read(&module).unwrap();
        let parsed = smf_format::Module::parse(&bytes).unwrap();
        let map = parsed.source_map().unwrap().unwrap();
        let nm = check({
            let mut command = std::process::Command::new("nm");
            command.arg("--defined-only").arg(&library);
            command
        });
        let native: std::collections::HashMap<String, u64> = String::from_utf8_lossy(&nm.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                let _kind = fields.next()?;
                Some((fields.next()?.to_owned(), address))
            })
            .collect();
        let mut queries = Vec::new();
        for name in ["main", "deref", "helper_sum"] {
            let symbol = parsed.lookup(name).unwrap();
            for offset in 0..symbol.size {
                queries.push((name, symbol.value + offset, native[name] + offset));
            }
        }
        let addr2line = check({
            let mut command = std::process::Command::new("addr2line");
            command.arg("-e").arg(&library);
            command.args(queries.iter().map(|q| format!("{:#x}", q.2)));
            command
        });
        let answers = String::from_utf8_lossy(&addr2line.stdout).into_owned();
        assert_eq!(answers.lines().count(), queries.len());
        for ((name, address, _), answer) in queries.iter().zip(answers.lines()) {
            // `FILE:LINE`, or `FILE:LINE (discriminator N)`; `??:0` or `FILE:?` for none.
            let (file, line) = answer.split(' ').next().unwrap().rsplit_once(':').unwrap();
            let expected = line
                .parse::<u32>()
                .ok()
                .filter(|&l| l > 0)
                .map(|l| (file, l));
            let found = map.lookup(*address);
            assert_eq!(
                found.map(|l| (l.file, l.line)),
                expected,
                "{flags:?}: {name} at module offset {address:#x}"
            );
        }
    }
}
