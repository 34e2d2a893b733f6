//! x86-64: the relocation table of the psABI, `jmp *slot(%rip)` stubs, glibc's crti/crtn frame.
//!
//! Formulas follow the x86-64 psABI: S is the target's image offset, A the addend, P the
//! image offset of the relocated field, GOT the GOT base, G a slot's offset from that base and
//! L a call stub's image offset.

use object::elf;

use super::{Action, Arch, Form, PcRelativeLoad, Range, STUB_SIZE, SupportFunction, data};

pub(crate) static ARCH: Arch = Arch {
    machine: elf::EM_X86_64,
    name: "x86-64 ELF",
    platform: smf_format::Platform::Linux,
    binary_format: object::BinaryFormat::Elf,
    type_names,
    format: smf_format::Arch::X86_64,
    object: object::Architecture::X86_64,
    action,
    none: elf::R_X86_64_NONE.0,
    abs64: elf::R_X86_64_64.0,
    // clang gives .eh_frame this type, gcc SHT_PROGBITS.
    unwind_section_type: Some(elf::SHT_X86_64_UNWIND),
    page_size: 4096,
    code_fill: &[0xcc],
    nop: &[0x90],
    trap: &[0xcc],
    // `sub $8, %rsp` aligns the stack for the calls the fragments make; `add $8, %rsp; ret`.
    // (crti.o also calls `__gmon_start__` for gprof, which modules do not support.)
    legacy_prologue: &[0x48, 0x83, 0xec, 0x08],
    legacy_epilogue: &[0x48, 0x83, 0xc4, 0x08, 0xc3],
    write_stub,
    write_veneer: None,
    library_dirs: &[
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/x86_64-linux-gnu/lib",
    ],
    support: SUPPORT,
    // glibc's x86 `TCB_ALIGNMENT` (sysdeps/x86/nptl/pthreaddef.h).
    static_tls_align: 64,
    archives_never_define: &[],
    runtime_tls_callbacks: &[],
    // Non-PIC ELF objects are refused with the advice to recompile them with -fPIC.
    pc_relative_load: None,
};

/// `movabs $imm64, %reg` (REX.W with REX.B for r8-r15, then `0xb8 + reg`), its immediate the
/// field at `offset`, becomes a 3-byte `nop` then `mov disp32(%rip), %reg` (`through_slot`)
/// or `lea disp32(%rip), %reg`: the same 10 bytes, the displacement counting from their end.
pub(crate) fn pc_relative_load(
    section: &[u8],
    offset: u64,
    through_slot: bool,
) -> Option<PcRelativeLoad> {
    let start = offset.checked_sub(2)?;
    let at = usize::try_from(start).ok()?;
    let &[rex, opcode] = section.get(at..at.checked_add(2)?)? else {
        return None;
    };
    // REX.W, no REX.R or REX.X (which `movabs` does not use), REX.B any.
    if rex & 0xfe != 0x48 || !(0xb8..=0xbf).contains(&opcode) {
        return None;
    }
    let register = opcode - 0xb8;
    // REX.B of the register's fourth bit becomes REX.R: the register is ModRM's `reg`.
    let rex = 0x48 | ((rex & 1) << 2);
    let opcode = if through_slot { 0x8b } else { 0x8d };
    // ModRM: mod 00, reg, r/m 101 (RIP-relative with a 32-bit displacement).
    let modrm = (register << 3) | 0b101;
    Some(PcRelativeLoad {
        start,
        bytes: [0x0f, 0x1f, 0x00, rex, opcode, modrm, 0, 0, 0, 0],
        displacement: 6,
    })
}

fn pc(bytes: u8, range: Range, call: bool) -> Action {
    Action::PcRelative {
        field: data(bytes, range),
        form: Form::Relative,
        call,
    }
}

fn got_pc(bytes: u8, range: Range, relaxable: bool) -> Action {
    Action::GotPcRelative {
        field: data(bytes, range),
        form: Form::Relative,
        relaxable,
    }
}

/// The code's 32-bit PC-relative reference to a thread-local GOT entry.
const TLS_FIELD: super::Field = data(4, Range::Signed);

fn type_names(r_type: u32) -> Option<&'static str> {
    elf::machine_names(elf::EM_X86_64)
        .r
        .name(elf::RelocationType(r_type))
}

fn action(r_type: u32) -> Action {
    use Range::*;
    match elf::RelocationType(r_type) {
        elf::R_X86_64_NONE => Action::Nothing,
        elf::R_X86_64_64 => Action::Address64,
        elf::R_X86_64_32 => Action::AbsoluteNarrow(data(4, Unsigned)),
        elf::R_X86_64_32S => Action::AbsoluteNarrow(data(4, Signed)),
        elf::R_X86_64_16 => Action::AbsoluteNarrow(data(2, Any)),
        elf::R_X86_64_8 => Action::AbsoluteNarrow(data(1, Any)),
        elf::R_X86_64_PC32 => pc(4, Signed, false),
        elf::R_X86_64_PLT32 => pc(4, Signed, true),
        elf::R_X86_64_PC16 => pc(2, Signed, false),
        elf::R_X86_64_PC8 => pc(1, Signed, false),
        elf::R_X86_64_PC64 => pc(8, Any, false),
        elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_CODE_4_GOTPCRELX
        | elf::R_X86_64_CODE_5_GOTPCRELX
        | elf::R_X86_64_CODE_6_GOTPCRELX => got_pc(4, Signed, false),
        elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => got_pc(4, Signed, true),
        elf::R_X86_64_GOTPCREL64 => got_pc(8, Any, false),
        elf::R_X86_64_GOT32 => Action::GotOffset(data(4, Signed)),
        elf::R_X86_64_GOT64 | elf::R_X86_64_GOTPLT64 => Action::GotOffset(data(8, Any)),
        elf::R_X86_64_GOTOFF64 => Action::OffsetFromGot,
        elf::R_X86_64_GOTPC32 => Action::GotFromPc(data(4, Signed)),
        elf::R_X86_64_GOTPC64 => Action::GotFromPc(data(8, Any)),
        elf::R_X86_64_PLTOFF64 => Action::PltOffset,
        elf::R_X86_64_SIZE32 => Action::Size(data(4, Any)),
        elf::R_X86_64_SIZE64 => Action::Size(data(8, Any)),
        elf::R_X86_64_TLSGD => Action::TlsGeneralDynamic {
            field: TLS_FIELD,
            form: Form::Relative,
        },
        elf::R_X86_64_TLSLD => Action::TlsLocalDynamic {
            field: TLS_FIELD,
            form: Form::Relative,
        },
        elf::R_X86_64_DTPOFF32 => Action::DtpOffset(data(4, Signed)),
        elf::R_X86_64_DTPOFF64 => Action::DtpOffset(data(8, Any)),
        elf::R_X86_64_GOTTPOFF
        | elf::R_X86_64_CODE_4_GOTTPOFF
        | elf::R_X86_64_CODE_5_GOTTPOFF
        | elf::R_X86_64_CODE_6_GOTTPOFF => Action::TlsInitialExec {
            field: TLS_FIELD,
            form: Form::Relative,
        },
        elf::R_X86_64_GOTPC32_TLSDESC
        | elf::R_X86_64_CODE_4_GOTPC32_TLSDESC
        | elf::R_X86_64_CODE_5_GOTPC32_TLSDESC
        | elf::R_X86_64_CODE_6_GOTPC32_TLSDESC => Action::TlsDescriptor {
            field: TLS_FIELD,
            form: Form::Relative,
        },
        // Marks the descriptor call for linker relaxations; nothing to write.
        elf::R_X86_64_TLSDESC_CALL => Action::Nothing,
        // Local-exec code has the offset built into its instructions, which would then be
        // written at load time; as for a shared library, it is refused.
        elf::R_X86_64_TPOFF32 | elf::R_X86_64_TPOFF64 => Action::ThreadLocalModel("local-exec"),
        elf::R_X86_64_DTPMOD64 | elf::R_X86_64_TLSDESC => Action::ThreadLocal,
        // COPY, GLOB_DAT, JUMP_SLOT, RELATIVE, IRELATIVE, RELATIVE64 only appear in linked
        // files; anything else is unknown.
        _ => Action::Unsupported,
    }
}

/// `jmp *slot(%rip)`, padded with `int3`.
fn write_stub(stub: u64, slot: u64) -> Result<[u8; STUB_SIZE as usize], String> {
    let distance = i128::from(slot) - i128::from(stub) - 6;
    let rel = i32::try_from(distance)
        .map_err(|_| format!("a call stub is {distance:#x} bytes from its GOT slot"))?;
    let mut bytes = [0xcc; STUB_SIZE as usize];
    bytes[0] = 0xff;
    bytes[1] = 0x25;
    bytes[2..6].copy_from_slice(&rel.to_le_bytes());
    Ok(bytes)
}

const SUPPORT: &[SupportFunction] = &[
    // int atexit(void (*f)(void)) { return __cxa_atexit((void (*)(void *))f, NULL, &__dso_handle); }
    SupportFunction {
        name: "atexit",
        // xor esi, esi; lea rdx, [rip + __dso_handle]; jmp __cxa_atexit
        code: &[0x31, 0xf6, 0x48, 0x8d, 0x15, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (5, "__dso_handle", elf::R_X86_64_PC32, -4),
            (10, "__cxa_atexit", elf::R_X86_64_PLT32, -4),
        ],
    },
    // int at_quick_exit(void (*f)(void)) { return __cxa_at_quick_exit(f, &__dso_handle); }
    SupportFunction {
        name: "at_quick_exit",
        // lea rsi, [rip + __dso_handle]; jmp __cxa_at_quick_exit
        code: &[0x48, 0x8d, 0x35, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (3, "__dso_handle", elf::R_X86_64_PC32, -4),
            (8, "__cxa_at_quick_exit", elf::R_X86_64_PLT32, -4),
        ],
    },
    // int pthread_atfork(prepare, parent, child) { return __register_atfork(prepare, parent, child, &__dso_handle); }
    SupportFunction {
        name: "pthread_atfork",
        // lea rcx, [rip + __dso_handle]; jmp __register_atfork
        code: &[0x48, 0x8d, 0x0d, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (3, "__dso_handle", elf::R_X86_64_PC32, -4),
            (8, "__register_atfork", elf::R_X86_64_PLT32, -4),
        ],
    },
    // void __stack_chk_fail_local(void) { __stack_chk_fail(); }
    SupportFunction {
        name: "__stack_chk_fail_local",
        // jmp __stack_chk_fail
        code: &[0xe9, 0, 0, 0, 0],
        relocs: &[(1, "__stack_chk_fail", elf::R_X86_64_PLT32, -4)],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movabs_becomes_a_rip_relative_load_or_lea() {
        // movabs $0, %rax; movabs $0, %r12; mov $0, %eax (no REX.W); a field at offset 1.
        let code = [
            0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x49, 0xbc, 0, 0, 0, 0, 0, 0, 0, 0, 0xb8, 0, 0, 0,
            0,
        ];
        let rax = pc_relative_load(&code, 2, true).unwrap();
        assert_eq!(rax.start, 0);
        // nopl (%rax); mov disp32(%rip), %rax
        assert_eq!(rax.bytes, [0x0f, 0x1f, 0x00, 0x48, 0x8b, 0x05, 0, 0, 0, 0]);
        assert_eq!(rax.displacement, 6);
        // lea disp32(%rip), %r12: REX.R for r12.
        let r12 = pc_relative_load(&code, 12, false).unwrap();
        assert_eq!((r12.start, &r12.bytes[3..6]), (10, &[0x4c, 0x8d, 0x25][..]));
        assert_eq!(pc_relative_load(&code, 21, true), None);
        assert_eq!(pc_relative_load(&code, 1, true), None);
        assert_eq!(pc_relative_load(&code, 0, true), None);
    }
    use crate::arch::Field;

    #[test]
    fn every_known_type_has_a_width_and_a_name() {
        assert_eq!(action(elf::R_X86_64_64.0).width(), 8);
        assert_eq!(action(elf::R_X86_64_PLT32.0).width(), 4);
        assert_eq!(action(elf::R_X86_64_PC8.0).width(), 1);
        assert!(matches!(
            action(elf::R_X86_64_TLSGD.0),
            Action::TlsGeneralDynamic { .. }
        ));
        assert_eq!(action(elf::R_X86_64_TLSGD.0).width(), 4);
        assert_eq!(
            action(elf::R_X86_64_DTPOFF64.0),
            Action::DtpOffset(Field::Data {
                bytes: 8,
                range: Range::Any
            })
        );
        assert!(matches!(
            action(elf::R_X86_64_GOTTPOFF.0),
            Action::TlsInitialExec { .. }
        ));
        assert_eq!(action(elf::R_X86_64_GOTTPOFF.0).width(), 4);
        assert!(matches!(
            action(elf::R_X86_64_GOTPC32_TLSDESC.0),
            Action::TlsDescriptor { .. }
        ));
        assert_eq!(action(elf::R_X86_64_TLSDESC_CALL.0).width(), 0);
        assert_eq!(
            action(elf::R_X86_64_TPOFF32.0),
            Action::ThreadLocalModel("local-exec")
        );
        assert_eq!(action(elf::R_X86_64_COPY.0), Action::Unsupported);
        assert_eq!(action(1000), Action::Unsupported);
        assert_eq!(
            ARCH.type_name(elf::R_X86_64_REX_GOTPCRELX.0),
            "R_X86_64_REX_GOTPCRELX"
        );
        assert_eq!(ARCH.type_name(1000), "type 1000");
    }

    #[test]
    fn stubs_jump_through_their_slot() {
        // jmp *0x1000(%rip) from 0x10: ff 25 <0x1000 - 0x10 - 6>.
        let stub = write_stub(0x10, 0x1010).unwrap();
        assert_eq!(stub[..6], [0xff, 0x25, 0xfa, 0x0f, 0, 0]);
        assert!(write_stub(0, 1 << 40).is_err());
    }
}
