//! `smf run` end to end on a module the format crate's writer builds, with no packer in
//! between: its `main` and its destructor call the C library's `puts` through a slot an
//! import fills. The same test runs on Linux and, built for Windows, under Wine (README,
//! "Windows"), where it checks what differs there: the import found among the process's
//! DLLs (msvcrt's `puts`), the Windows calling convention, and destructors and C stdio run
//! by the C runtime's `exit`.
#![cfg(target_arch = "x86_64")]

mod common;

use smf_format::*;

/// `puts(message)` through the pointer at `slot`, for code at `at`, then `mov eax, status`
/// if given, then `ret`.
fn call_puts(at: u64, message: u64, slot: u64, status: Option<u32>) -> Vec<u8> {
    let rel = |end: u64, target: u64| {
        i32::try_from(target as i64 - end as i64)
            .unwrap()
            .to_le_bytes()
    };
    let mut code = Vec::new();
    let windows = cfg!(windows);
    // Stack aligned for the call; on Windows with the callee's 32 bytes of shadow space.
    code.extend_from_slice(if windows {
        &[0x48, 0x83, 0xec, 0x28]
    } else {
        &[0x53]
    });
    // lea rcx (Windows) or rdi (System V), [rip + message]
    code.extend_from_slice(&[0x48, 0x8d, if windows { 0x0d } else { 0x3d }]);
    code.extend_from_slice(&rel(at + code.len() as u64 + 4, message));
    // call qword ptr [rip + slot]
    code.extend_from_slice(&[0xff, 0x15]);
    code.extend_from_slice(&rel(at + code.len() as u64 + 4, slot));
    if let Some(status) = status {
        code.push(0xb8);
        code.extend_from_slice(&status.to_le_bytes());
    }
    code.extend_from_slice(if windows {
        &[0x48, 0x83, 0xc4, 0x28]
    } else {
        &[0x5b]
    });
    code.push(0xc3);
    code
}

fn program() -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.arch = simple_loader::HOST_ARCH.unwrap();
    b.platform = simple_loader::HOST_PLATFORM;
    let mut layout = ImageLayout::new();
    let text_va = layout.place(64).unwrap();
    let ro_va = layout.place(64).unwrap();
    let relro_va = layout.place(8).unwrap();
    let (hello, bye) = (ro_va, ro_va + 32);
    let mut code = call_puts(text_va, hello, relro_va, Some(42));
    code.resize(32, 0xcc);
    code.extend(call_puts(text_va + 32, bye, relro_va, None));
    code.resize(64, 0xcc);
    let mut rodata = b"hello from a module\0".to_vec();
    rodata.resize(32, 0);
    rodata.extend_from_slice(b"its destructor ran\0");
    rodata.resize(64, 0);
    let mut section = |kind, name, vaddr, data: Vec<u8>| {
        let mem_size = data.len() as u64;
        b.add_section(LoadedSection {
            kind,
            name,
            vaddr,
            mem_size,
            align: 16,
            data,
        })
    };
    let text = section(SectionKind::Code, ".text", text_va, code);
    section(SectionKind::RoData, ".rodata", ro_va, rodata);
    section(SectionKind::RelRo, ".data.rel.ro", relro_va, vec![0; 8]);
    for (name, value) in [("main", text_va), ("goodbye", text_va + 32)] {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(text),
            value,
            size: 32,
            type_id: 0,
            version: 0,
        });
    }
    b.entry_point = Some(text_va);
    b.add_fini(text_va + 32);
    let puts = b.add_import(Import {
        name: "puts",
        kind: ImportKind::Function,
        binding: Binding::Global,
        type_id: 0,
        version: 0,
    });
    b.add_reloc(Reloc {
        offset: relro_va,
        kind: RelocKind::Abs64,
        import: Some(puts),
        addend: 0,
    });
    b.write().unwrap()
}

#[test]
fn a_written_program_prints_through_the_c_library_and_exits_with_main_s_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.smf");
    std::fs::write(&path, program()).unwrap();
    let output = common::smf().arg("run").arg(&path).output().unwrap();
    // msvcrt's stdout is in text mode: each newline is written as CR LF, as for any
    // native Windows program.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
        "hello from a module\nits destructor ran\n",
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(42));
}
