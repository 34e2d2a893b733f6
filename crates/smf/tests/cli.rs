//! The command line: `call`, `inspect`, `verify`, and a one-line error naming the file and
//! the problem for each kind of bad input, never a panic.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use smf_format::raw::{Header, SectionHeader};
use smf_format::{Module, compute_module_hash};

/// A small library module packed from real C, in `dir`.
fn library(dir: &Path) -> PathBuf {
    let source = dir.join("lib.c");
    std::fs::write(
        &source,
        "#include <string.h>\n#include <unistd.h>\n\
         long add3(long a, long b, long c) { return a + b + c; }\n\
         int negate(int x) { return -x; }\n\
         long six(long a, long b, long c, long d, long e, long f) { return a*100000 + b*10000 + c*1000 + d*100 + e*10 + f; }\n\
         long len(void) { return (long)strlen(\"four\"); }\n\
         long pid_positive(void) { return getpid() > 0; }\n\
         int counter = 5;\n",
    )
    .unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let module = dir.join("lib.smf");
    pack(&objects, &module, &[]);
    module
}

/// The architecture the tests (and the `smf` they run) are built for.
fn host_arch() -> smf_format::Arch {
    simple_loader::HOST_ARCH.expect("the tests run on an architecture the format knows")
}

/// The other architecture the format knows.
fn other_arch() -> smf_format::Arch {
    match host_arch() {
        smf_format::Arch::X86_64 => smf_format::Arch::Aarch64,
        smf_format::Arch::Aarch64 => smf_format::Arch::X86_64,
    }
}

fn run_smf(args: &[&std::ffi::OsStr]) -> std::process::Output {
    smf().args(args).output().unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn call_passes_integers_and_prints_the_result() {
    let work = tempfile::tempdir().unwrap();
    let lib = library(work.path());
    let call = |args: &[&str]| {
        let mut c = smf();
        c.arg("call").arg(&lib).args(args);
        stdout(&check(c))
    };
    assert_eq!(call(&["add3", "1", "2", "-10"]), "-7\n");
    assert_eq!(call(&["six", "1", "2", "3", "4", "5", "6"]), "123456\n");
    assert_eq!(call(&["len"]), "4\n");
    assert_eq!(call(&["pid_positive"]), "1\n", "an import from libc");
    assert_eq!(call(&["negate", "5", "--ret", "int"]), "-5\n");

    let output = smf()
        .arg("call")
        .arg(&lib)
        .args(["add3", "1", "2", "3", "4", "5", "6", "7"])
        .output()
        .unwrap();
    let (code, stderr) = failure(&output);
    assert_ne!(code, 0);
    assert!(stderr.contains("at most six integer arguments"), "{stderr}");

    let output = smf().arg("call").arg(&lib).arg("counter").output().unwrap();
    let (_, stderr) = failure(&output);
    assert!(
        stderr.contains("`counter` is a data symbol, not a function"),
        "{stderr}"
    );
    let output = smf().arg("call").arg(&lib).arg("nope").output().unwrap();
    let (_, stderr) = failure(&output);
    assert!(
        stderr.contains("lib.smf") && stderr.contains("no exported symbol `nope`"),
        "{stderr}"
    );
}

#[test]
fn inspect_and_verify_describe_a_module() {
    let work = tempfile::tempdir().unwrap();
    let lib = library(work.path());
    let report = stdout(&check({
        let mut c = smf();
        c.arg("inspect").arg(&lib);
        c
    }));
    for needle in [
        "SMF header:",
        &format!("Architecture:  {}", host_arch()),
        "Sections (",
        ".text",
        "code",
        "R-X",
        "Symbols (",
        "add3",
        "counter",
        "Imports (",
        "getpid",
    ] {
        assert!(
            report.contains(needle),
            "inspect output lacks {needle:?}:\n{report}"
        );
    }
    let verified = stdout(&check({
        let mut c = smf();
        c.arg("verify").arg(&lib);
        c
    }));
    assert!(verified.contains("OK"), "{verified}");
}

/// Writes `bytes` with the module hash recomputed, so that the structural check is what fails.
fn rehashed(mut bytes: Vec<u8>) -> Vec<u8> {
    let hash = compute_module_hash(&bytes).unwrap();
    bytes[smf_format::raw::MODULE_HASH_RANGE].copy_from_slice(&hash);
    bytes
}

fn expect_error(args: &[&std::ffi::OsStr], needles: &[&str]) {
    let output = run_smf(args);
    let (code, stderr) = failure(&output);
    assert_ne!(code, 0, "{args:?} must fail");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line of error expected:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: stderr lacks {needle:?}:\n{stderr}"
        );
    }
}

#[test]
fn bad_input_gets_a_one_line_error_naming_file_and_problem() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let lib = library(dir);
    let good = std::fs::read(&lib).unwrap();
    let os = |p: &Path| p.as_os_str().to_owned();

    let missing = dir.join("missing.smf");
    for command in ["run", "inspect", "verify"] {
        expect_error(
            &[command.as_ref(), &os(&missing)],
            &["missing.smf", "No such file"],
        );
    }

    let text = dir.join("notes.smf");
    std::fs::write(&text, "just some text, long enough to hold a header? no.").unwrap();
    for command in ["run", "inspect", "verify"] {
        expect_error(
            &[command.as_ref(), &os(&text)],
            &["notes.smf", "not an SMF module"],
        );
    }

    let truncated = dir.join("truncated.smf");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    for command in ["run", "inspect", "verify"] {
        expect_error(
            &[command.as_ref(), &os(&truncated)],
            &["truncated.smf", "runs past end of file"],
        );
    }
    let tiny = dir.join("tiny.smf");
    std::fs::write(&tiny, &good[..40]).unwrap();
    expect_error(
        &["run".as_ref(), &os(&tiny)],
        &["tiny.smf", "truncated file: header"],
    );

    let mut other = good.clone();
    other[core::mem::offset_of!(Header, arch)] = other_arch().as_raw();
    let other_path = dir.join("other-arch.smf");
    std::fs::write(&other_path, rehashed(other)).unwrap();
    expect_error(
        &["run".as_ref(), &os(&other_path)],
        &[
            "other-arch.smf",
            &format!(
                "built for {}, but this loader runs on {}",
                other_arch(),
                host_arch()
            ),
        ],
    );

    let module = Module::parse(&good).unwrap();
    let table = usize::try_from(module.sections().first().map(|_| 128).unwrap()).unwrap();
    let mut unknown = good.clone();
    let kind_at = table + core::mem::offset_of!(SectionHeader, kind);
    unknown[kind_at..kind_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let unknown_path = dir.join("unknown.smf");
    std::fs::write(&unknown_path, rehashed(unknown)).unwrap();
    for command in ["run", "inspect", "verify"] {
        expect_error(
            &[command.as_ref(), &os(&unknown_path)],
            &["unknown.smf", "section 0", "unknown section type 99"],
        );
    }

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let flipped_path = dir.join("flipped.smf");
    std::fs::write(&flipped_path, flipped).unwrap();
    expect_error(
        &["verify".as_ref(), &os(&flipped_path)],
        &["flipped.smf", "module hash mismatch"],
    );
    expect_error(
        &["run".as_ref(), &os(&flipped_path)],
        &["flipped.smf", "module hash mismatch"],
    );

    let object = dir.join("obj").join("lib.o");
    expect_error(
        &["run".as_ref(), &os(&object)],
        &["lib.o", "ELF file", "smf pack"],
    );

    expect_error(
        &["run".as_ref(), &os(&lib)],
        &["lib.smf", "not an executable module"],
    );
}

#[test]
fn pack_errors_name_the_object() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("nopic.c");
    // x86-64's small code model without PIC takes the address as an absolute 32-bit
    // immediate. AArch64's small model is PC-relative (ADRP) even without PIC; its large model
    // loads the address from a 64-bit literal in .text, naming the symbol if it is external.
    let (text, model) = if cfg!(target_arch = "x86_64") {
        ("int counter;", "-mcmodel=small")
    } else {
        ("extern int counter;", "-mcmodel=large")
    };
    std::fs::write(
        &source,
        format!("{text} int *address(void) {{ return &counter; }}\n"),
    )
    .unwrap();
    let object = dir.join("nopic.o");
    let mut c = cc();
    c.args(["-c", "-O2", "-fno-pic", model])
        .arg(&source)
        .arg("-o")
        .arg(&object);
    check(c);
    let out = dir.join("out.smf");
    let output = smf()
        .arg("pack")
        .arg("-o")
        .arg(&out)
        .arg(&object)
        .output()
        .unwrap();
    let (code, stderr) = failure(&output);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("nopic.o") && stderr.contains("-fPIC") && stderr.contains("counter"),
        "{stderr}"
    );
    assert!(!out.exists(), "no output is written when packing fails");
}

/// A module with one of everything `inspect` prints, built with the format crate's writer so
/// that its bytes (and hashes) do not depend on the machine's C compiler.
fn everything_module() -> Vec<u8> {
    use smf_format::*;
    let mut b = ModuleBuilder::new();
    b.source_hash = 0x0123_4567_89ab_cdef;
    let mut layout = ImageLayout::new();
    let code = vec![0xb8, 0x2a, 0, 0, 0, 0xc3, 0xc3, 0xc3];
    let text_va = layout.place(8).unwrap();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: text_va,
        mem_size: 8,
        align: 16,
        data: code,
    });
    let relro_va = layout.place(16).unwrap();
    let relro = b.add_section(LoadedSection {
        kind: SectionKind::RelRo,
        name: ".data.rel.ro",
        vaddr: relro_va,
        mem_size: 16,
        align: 8,
        data: vec![0; 16],
    });
    let bss_va = layout.place(64).unwrap();
    let bss = b.add_section(LoadedSection {
        kind: SectionKind::Bss,
        name: ".bss",
        vaddr: bss_va,
        mem_size: 64,
        align: 64,
        data: vec![],
    });
    let sym = |name, kind, binding, section, value, size| Symbol {
        name,
        kind,
        binding,
        visibility: Visibility::Default,
        section,
        value,
        size,
        type_id: 0,
        version: 1,
    };
    b.add_symbol(sym(
        "main",
        SymbolKind::Function,
        Binding::Global,
        Some(text),
        text_va,
        6,
    ));
    b.add_symbol(sym(
        "init",
        SymbolKind::Function,
        Binding::Local,
        Some(text),
        text_va + 6,
        1,
    ));
    b.add_symbol(sym(
        "fini",
        SymbolKind::Function,
        Binding::Weak,
        Some(text),
        text_va + 7,
        1,
    ));
    b.add_symbol(sym(
        "table",
        SymbolKind::Data,
        Binding::Global,
        Some(relro),
        relro_va,
        16,
    ));
    b.add_symbol(sym(
        "buffer",
        SymbolKind::Data,
        Binding::Global,
        Some(bss),
        bss_va,
        64,
    ));
    // `Point` names a struct of the type table; `buffer` is a 64-byte array.
    let mut types = smf_format::typeinfo::TypeTableBuilder::new();
    let point = types.declare_record(false, "Point");
    let coordinate = types.int(4, true);
    let field = |name: &str, offset| smf_format::typeinfo::Field {
        name: name.into(),
        ty: coordinate,
        offset,
        bit_offset: 0,
        bit_size: 0,
    };
    types
        .define_record(point, 8, 4, &[field("x", 0), field("y", 4)])
        .unwrap();
    b.set_types(&types);
    b.add_symbol(Symbol {
        type_id: point,
        ..sym("Point", SymbolKind::Type, Binding::Global, None, 7, 0)
    });
    let puts = b.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    b.add_import(Import {
        name: "maybe",
        kind: ImportKind::Any,
        binding: Binding::Weak,
        type_id: 0,
        version: 0,
    });
    b.add_reloc(Reloc {
        offset: relro_va,
        kind: RelocKind::Abs64,
        import: Some(puts),
        addend: 0,
    });
    b.add_reloc(Reloc {
        offset: relro_va + 8,
        kind: RelocKind::Relative64,
        import: None,
        addend: bss_va as i64 + 8,
    });
    b.add_needed("libm.so.6");
    b.add_init(text_va + 6);
    b.add_fini(text_va + 7);
    b.entry_point = Some(text_va);
    b.write().unwrap()
}

#[test]
fn inspect_output_matches_the_golden_file() {
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("everything.sme");
    std::fs::write(&module, everything_module()).unwrap();
    let actual = stdout(&check({
        let mut c = smf();
        c.arg("inspect").arg(&module);
        c
    }));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/inspect_everything.txt");
    if std::env::var_os("SMF_BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("golden file missing; run with SMF_BLESS=1 to create it");
    assert_eq!(
        actual, expected,
        "`smf inspect` output changed; if intended, rerun with SMF_BLESS=1"
    );
}

#[test]
fn packing_a_reloadable_module_with_static_thread_locals_says_what_reloads_cost() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("tls.c");
    std::fs::write(
        &source,
        "__thread long n; long bump(void) { return ++n; }\n",
    )
    .unwrap();
    let stderr_of_pack = |model: &str, reloadable: bool| {
        let model_flag = format!("-ftls-model={model}");
        let mut flags = vec!["-O2", &model_flag];
        flags.extend(TLS_TRADITIONAL);
        let objects = compile(std::slice::from_ref(&source), &dir.join(model), &flags);
        let mut command = smf();
        command
            .arg("pack")
            .arg("-o")
            .arg(dir.join(format!("{model}.smf")));
        if reloadable {
            command.arg("--reloadable");
        }
        let output = command.args(&objects).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let note = stderr_of_pack("initial-exec", true);
    assert!(
        note.contains("initial-exec.smf")
            && note.contains("static TLS reserve")
            && note.contains("-ftls-model=initial-exec"),
        "{note}"
    );
    assert_eq!(stderr_of_pack("initial-exec", false), "", "not reloadable");
    assert_eq!(
        stderr_of_pack("global-dynamic", true),
        "",
        "no static block"
    );
}

#[test]
fn inspect_piped_into_a_reader_that_stops_early_ends_quietly() {
    // As `smf inspect big.smf | head` does: the reader closes the pipe long before the
    // report (hundreds of kilobytes here, more than a pipe holds) is written.
    use smf_format::*;
    use std::io::Read;
    let mut b = ModuleBuilder::new();
    let mut layout = ImageLayout::new();
    let vaddr = layout.place(0x4000).unwrap();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr,
        mem_size: 0x4000,
        align: 16,
        data: vec![0xc3; 0x4000],
    });
    let names: Vec<String> = (0..4000).map(|i| format!("function_number_{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        b.add_symbol(smf_format::Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Local,
            visibility: Visibility::Default,
            section: Some(text),
            value: vaddr + i as u64,
            size: 1,
            type_id: 0,
            version: 0,
        });
    }
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("many.smf");
    std::fs::write(&module, b.write().unwrap()).unwrap();
    let mut child = smf()
        .arg("inspect")
        .arg(&module)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"SMF header:"));
    // The pipe's read end is closed here.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Runs `smf args`, killing it and failing the test if it does not finish within ten
/// seconds (a command that opens a FIFO for reading would wait for a writer forever).
fn run_smf_within_ten_seconds(args: &[&std::ffi::OsStr]) -> std::process::Output {
    use std::time::{Duration, Instant};
    let mut child = smf()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("smf {args:?} still running after ten seconds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Like `expect_error`, with a time limit.
fn expect_quick_error(args: &[&std::ffi::OsStr], needles: &[&str]) {
    let output = run_smf_within_ten_seconds(args);
    let (code, stderr) = failure(&output);
    assert_eq!(code, 1, "{args:?} must fail with status 1: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line:\n{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: stderr lacks {needle:?}:\n{stderr}"
        );
    }
}

#[test]
fn a_fifo_given_as_a_module_is_refused_without_waiting() {
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("pipe.smf");
    mkfifo(&fifo);
    let key = work.path().join("key");
    check({
        let mut c = smf();
        c.arg("keygen").arg(&key);
        c
    });
    for command in [
        vec!["inspect".as_ref(), fifo.as_os_str()],
        vec!["verify".as_ref(), fifo.as_os_str()],
        vec![
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            fifo.as_os_str(),
        ],
    ] {
        expect_quick_error(&command, &["pipe.smf", "not a regular file (a FIFO)"]);
    }
    // Directories are not modules either.
    expect_quick_error(
        &["inspect".as_ref(), work.path().as_os_str()],
        &["not a regular file (a directory)"],
    );
}

#[test]
fn a_fifo_given_to_run_or_call_is_refused_without_waiting() {
    // The loader's own open (`load`), not the command line's.
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("pipe.smf");
    mkfifo(&fifo);
    for command in [
        vec!["run".as_ref(), fifo.as_os_str()],
        vec!["call".as_ref(), fifo.as_os_str(), "f".as_ref()],
    ] {
        expect_quick_error(&command, &["pipe.smf", "not a regular file (a FIFO)"]);
    }
}

#[test]
fn a_fifo_given_as_a_signature_file_is_refused_without_waiting() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("main.c");
    std::fs::write(&source, "int main(void) { return 3; }\n").unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let program = dir.join("prog.sme");
    pack(&objects, &program, &["--entry", "main"]);
    let key = dir.join("key");
    check({
        let mut c = smf();
        c.arg("keygen").arg(&key);
        c
    });
    let public = dir.join("key.pub");
    mkfifo(&dir.join("prog.sme.sig"));
    expect_quick_error(
        &[
            "run".as_ref(),
            "--require-signature".as_ref(),
            public.as_os_str(),
            program.as_os_str(),
        ],
        &["prog.sme.sig", "not a regular file (a FIFO)"],
    );
    expect_quick_error(
        &[
            "verify".as_ref(),
            "--key".as_ref(),
            public.as_os_str(),
            program.as_os_str(),
        ],
        &["prog.sme.sig", "not a regular file (a FIFO)"],
    );
}

#[test]
fn run_passes_everything_after_the_program_to_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("args.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n\
         int main(int argc, char **argv) {\n\
             for (int i = 1; i < argc; i++) printf(\"[%s]\", argv[i]);\n\
             printf(\"\\n\");\n\
             return argc;\n\
         }\n",
    )
    .unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let program = dir.join("args.sme");
    pack(&objects, &program, &["--entry", "main"]);
    let output = smf()
        .arg("run")
        .arg(&program)
        .args(["--help", "-h", "--require-signature", "key", "--", "-V"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        "[--help][-h][--require-signature][key][--][-V]\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(7), "argc");
    // Before the program, options are smf's.
    let help = check({
        let mut c = smf();
        c.args(["run", "--help"]);
        c
    });
    assert!(
        stdout(&help).contains("Usage: smf run"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn call_refuses_more_than_six_arguments_before_loading_and_says_why_in_its_help() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let source = dir.join("lib.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\n\
         __attribute__((constructor)) static void loaded(void) { write(1, \"loaded\\n\", 7); }\n\
         long add3(long a, long b, long c) { return a + b + c; }\n",
    )
    .unwrap();
    let objects = compile(&[source], &dir.join("obj"), &["-O2"]);
    let lib = dir.join("lib.smf");
    pack(&objects, &lib, &[]);
    let output = smf()
        .arg("call")
        .arg(&lib)
        .args(["add3", "1", "2", "3", "4", "5", "6", "7"])
        .output()
        .unwrap();
    let (code, stderr) = failure(&output);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("at most six integer arguments, 7 given"),
        "{stderr}"
    );
    assert_eq!(stdout(&output), "", "refused before the module was loaded");
    // Six or fewer are passed (and the module loads: its constructor runs).
    let output = check({
        let mut c = smf();
        c.arg("call").arg(&lib).args(["add3", "1", "2", "3"]);
        c
    });
    assert_eq!(stdout(&output), "loaded\n6\n");

    let help = stdout(&check({
        let mut c = smf();
        c.args(["call", "--help"]);
        c
    }));
    assert!(
        help.contains("arguments are not checked against the function")
            && help.contains("at most six"),
        "{help}"
    );
}

#[test]
fn version_and_shell_completions() {
    let version = stdout(&check({
        let mut c = smf();
        c.arg("--version");
        c
    }));
    assert_eq!(version.trim(), format!("smf {}", env!("CARGO_PKG_VERSION")));
    let bash = stdout(&check({
        let mut c = smf();
        c.args(["completions", "bash"]);
        c
    }));
    // The script completes the subcommands and their options.
    assert!(bash.contains("complete -F _smf"), "{bash}");
    for word in ["pack", "inspect", "dev", "--reloadable", "--build"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let zsh = stdout(&check({
        let mut c = smf();
        c.args(["completions", "zsh"]);
        c
    }));
    assert!(zsh.starts_with("#compdef smf"), "{zsh}");
    let output = smf().args(["completions", "tcsh"]).output().unwrap();
    assert!(!output.status.success());
}

/// A broken local symbol entry, which no load reads: the module loads and runs, `inspect`
/// shows the entry with what is wrong (and warns), `verify` refuses the file naming it.
#[test]
fn a_broken_local_symbol_loads_and_is_reported_by_inspect_and_verify() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("local.c");
    std::fs::write(
        &source,
        "__attribute__((noinline)) static long helper(long x) { return x * 3 + 1; }\n\
         long (*volatile keep)(long) = helper;\n\
         long twice_helper(long x) { return 2 * keep(x); }\n",
    )
    .unwrap();
    let objects = compile(&[source], &work.path().join("obj"), &["-O2"]);
    let good = work.path().join("good.smf");
    pack(&objects, &good, &[]);
    let mut bytes = std::fs::read(&good).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let (index, _) = module
        .symbols()
        .valid()
        .find(|(_, s)| s.name == "helper")
        .expect("a local symbol `helper`");
    let table = module
        .table_section(smf_format::SectionKind::SymTab)
        .unwrap()
        .file_offset as usize;
    drop(module);
    // The reserved flags byte of the entry.
    let entry = size_of::<smf_format::raw::Symbol>();
    bytes[table + index * entry + 11] = 1;
    let bytes = rehashed(bytes);
    let broken = work.path().join("broken.smf");
    std::fs::write(&broken, &bytes).unwrap();

    let mut c = smf();
    c.arg("call").arg(&broken).args(["twice_helper", "4"]);
    assert_eq!(stdout(&check(c)), "26\n");

    let output = run_smf(&["inspect".as_ref(), broken.as_os_str()]);
    assert!(output.status.success());
    let report = stdout(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let needle = format!("symbol {index} (helper): reserved flags 0x1 are not zero");
    assert!(
        report.contains("BROKEN") && report.contains(&needle),
        "{report}"
    );
    assert!(stderr.contains(&needle), "{stderr}");

    expect_error(
        &["verify".as_ref(), broken.as_os_str()],
        &["broken.smf", &needle],
    );
    // The intact module verifies.
    assert!(
        run_smf(&["verify".as_ref(), good.as_os_str()])
            .status
            .success()
    );
}

/// The other architecture's gcc (Debian's cross compiler from x86-64, the x86-64 one that
/// Debian's x86-64 gcc also installs under this name, next to a qemu-run aarch64 `smf`), if
/// it runs; panics if it does not and `SMF_REQUIRE_CROSS` is set (as `.ci/run` does).
fn other_arch_gcc() -> Option<&'static str> {
    let gcc = match other_arch() {
        smf_format::Arch::Aarch64 => "aarch64-linux-gnu-gcc",
        smf_format::Arch::X86_64 => "x86_64-linux-gnu-gcc",
    };
    let runs = std::process::Command::new(gcc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if runs {
        return Some(gcc);
    }
    assert!(
        std::env::var_os("SMF_REQUIRE_CROSS").is_none(),
        "SMF_REQUIRE_CROSS is set but {gcc} does not run"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {gcc} not found");
    None
}

#[test]
fn modules_of_the_other_architecture_are_packed_and_inspected_but_not_run() {
    let Some(gcc) = other_arch_gcc() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("hello.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n\
         static __thread int calls;\n\
         long twice(long x) { calls++; return 2 * x; }\n\
         int main(void) { printf(\"hello %ld\\n\", twice(21)); return calls; }\n",
    )
    .unwrap();
    let objects = compile_with(gcc, &[source], &work.path().join("obj"), &["-O2"]);
    let module = work.path().join("hello.sme");
    pack(&objects, &module, &["--entry", "main"]);

    let report = stdout(&check({
        let mut c = smf();
        c.arg("inspect").arg(&module);
        c
    }));
    for needle in [
        format!("Architecture:  {}", other_arch()),
        "twice".into(),
        "main".into(),
        "printf".into(),
    ] {
        assert!(
            report.contains(&needle),
            "inspect output lacks {needle:?}:\n{report}"
        );
    }
    let verified = stdout(&check({
        let mut c = smf();
        c.arg("verify").arg(&module);
        c
    }));
    assert!(verified.contains("OK"), "{verified}");
    expect_error(
        &["run".as_ref(), module.as_os_str()],
        &[
            "hello.sme",
            &format!(
                "built for {}, but this loader runs on {}",
                other_arch(),
                host_arch()
            ),
        ],
    );
}
