//! aarch64 (LP64): the relocation table of the ELF for the Arm 64-bit Architecture ABI, stubs
//! and veneers through x16/x17 (the intra-procedure-call registers the ABI reserves for
//! them), glibc's crti/crtn frame.
//!
//! Instructions reach addresses in two steps: an ADRP gives the 4 KiB page of the target
//! relative to the page of the instruction (±4 GiB), and an ADD or a load/store adds the
//! offset in the page. Both are computed at pack time (see [`Form::Page`]). Branches reach
//! ±128 MiB (B/BL), ±1 MiB (B.cond, CBZ, LDR literal) or ±32 KiB (TBZ).

use object::elf;

use super::{Action, Arch, Field, Form, Insn, Range, STUB_SIZE, SupportFunction, data};

pub(crate) static ARCH: Arch = Arch {
    machine: elf::EM_AARCH64,
    name: "aarch64 ELF",
    platform: smf_format::Platform::Linux,
    binary_format: object::BinaryFormat::Elf,
    type_names,
    format: smf_format::Arch::Aarch64,
    object: object::Architecture::Aarch64,
    action,
    none: elf::R_AARCH64_NONE.0,
    abs64: elf::R_AARCH64_ABS64.0,
    unwind_section_type: None,
    // Linux runs aarch64 with 4, 16 or 64 KiB pages.
    page_size: 64 * 1024,
    // `udf #0`: permanently undefined.
    code_fill: &UDF,
    nop: &NOP,
    trap: &UDF,
    // stp x29, x30, [sp, #-16]!; mov x29, sp ... ldp x29, x30, [sp], #16; ret
    legacy_prologue: &words::<8>(&[0xa9bf_7bfd, 0x9100_03fd]),
    legacy_epilogue: &words::<8>(&[0xa8c1_7bfd, 0xd65f_03c0]),
    write_stub,
    write_veneer: Some(write_veneer),
    library_dirs: &[
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/aarch64-linux-gnu/lib",
    ],
    support: SUPPORT,
    // glibc's generic `TCB_ALIGNMENT` (nptl/descr.h), which aarch64 does not override.
    static_tls_align: 32,
    archives_never_define: &[],
    runtime_tls_callbacks: &[],
    pc_relative_load: None,
};

const UDF: [u8; 4] = 0u32.to_le_bytes();
const NOP: [u8; 4] = 0xd503_201f_u32.to_le_bytes();

/// Little-endian instruction words as bytes.
const fn words<const N: usize>(insns: &[u32]) -> [u8; N] {
    assert!(insns.len() * 4 == N);
    let mut bytes = [0; N];
    let mut i = 0;
    while i < insns.len() {
        let word = insns[i].to_le_bytes();
        bytes[4 * i] = word[0];
        bytes[4 * i + 1] = word[1];
        bytes[4 * i + 2] = word[2];
        bytes[4 * i + 3] = word[3];
        i += 1;
    }
    bytes
}

const ADRP: Field = Field::Insn(Insn::Adr {
    shift: 12,
    checked: true,
});
const ADR: Field = Field::Insn(Insn::Adr {
    shift: 0,
    checked: true,
});
const ADD_LO12: Field = Field::Insn(Insn::Add {
    shift: 0,
    checked: false,
});
const LD64_LO12: Field = ldst(3);
const BRANCH26: Field = Field::Insn(Insn::Branch { bits: 26, lsb: 0 });
const BRANCH19: Field = Field::Insn(Insn::Branch { bits: 19, lsb: 5 });
const BRANCH14: Field = Field::Insn(Insn::Branch { bits: 14, lsb: 5 });

const fn ldst(scale: u8) -> Field {
    Field::Insn(Insn::Ldst { scale, bits: 12 })
}

fn address(field: Field, form: Form) -> Action {
    Action::PcRelative {
        field,
        form,
        call: false,
    }
}

fn got(field: Field, form: Form) -> Action {
    Action::GotPcRelative {
        field,
        form,
        relaxable: false,
    }
}

fn type_names(r_type: u32) -> Option<&'static str> {
    elf::machine_names(elf::EM_AARCH64)
        .r
        .name(elf::RelocationType(r_type))
}

fn action(r_type: u32) -> Action {
    use Form::*;
    match elf::RelocationType(r_type) {
        elf::R_AARCH64_NONE => Action::Nothing,
        elf::R_AARCH64_ABS64 => Action::Address64,
        elf::R_AARCH64_ABS32 => Action::AbsoluteNarrow(data(4, Range::Any)),
        elf::R_AARCH64_ABS16 => Action::AbsoluteNarrow(data(2, Range::Any)),
        elf::R_AARCH64_PREL64 => address(data(8, Range::Any), Relative),
        elf::R_AARCH64_PREL32 => address(data(4, Range::Any), Relative),
        elf::R_AARCH64_PREL16 => address(data(2, Range::Any), Relative),
        elf::R_AARCH64_PLT32 => Action::PcRelative {
            field: data(4, Range::Signed),
            form: Relative,
            call: true,
        },
        elf::R_AARCH64_ADR_PREL_LO21 => address(ADR, Relative),
        elf::R_AARCH64_ADR_PREL_PG_HI21 => address(ADRP, Page),
        elf::R_AARCH64_ADR_PREL_PG_HI21_NC => address(
            Field::Insn(Insn::Adr {
                shift: 12,
                checked: false,
            }),
            Page,
        ),
        elf::R_AARCH64_ADD_ABS_LO12_NC => address(ADD_LO12, PageOffset),
        elf::R_AARCH64_LDST8_ABS_LO12_NC => address(ldst(0), PageOffset),
        elf::R_AARCH64_LDST16_ABS_LO12_NC => address(ldst(1), PageOffset),
        elf::R_AARCH64_LDST32_ABS_LO12_NC => address(ldst(2), PageOffset),
        elf::R_AARCH64_LDST64_ABS_LO12_NC => address(ldst(3), PageOffset),
        elf::R_AARCH64_LDST128_ABS_LO12_NC => address(ldst(4), PageOffset),
        elf::R_AARCH64_CALL26 | elf::R_AARCH64_JUMP26 => Action::PcRelative {
            field: BRANCH26,
            form: Relative,
            call: true,
        },
        elf::R_AARCH64_CONDBR19 | elf::R_AARCH64_LD_PREL_LO19 => address(BRANCH19, Relative),
        elf::R_AARCH64_TSTBR14 => address(BRANCH14, Relative),
        elf::R_AARCH64_ADR_GOT_PAGE => got(ADRP, Page),
        elf::R_AARCH64_LD64_GOT_LO12_NC => got(LD64_LO12, PageOffset),
        elf::R_AARCH64_LD64_GOTPAGE_LO15 => {
            got(Field::Insn(Insn::Ldst { scale: 3, bits: 15 }), FromGotPage)
        }
        elf::R_AARCH64_GOT_LD_PREL19 => got(BRANCH19, Relative),
        elf::R_AARCH64_GOTPCREL32 => got(data(4, Range::Signed), Relative),
        elf::R_AARCH64_GOTREL64 => Action::OffsetFromGot,
        // TLS descriptors, the default for -fPIC: adrp, ldr, add, blr (TLSDESC_CALL marks the
        // call for linker relaxations; nothing to write).
        elf::R_AARCH64_TLSDESC_ADR_PAGE21 => Action::TlsDescriptor {
            field: ADRP,
            form: Page,
        },
        elf::R_AARCH64_TLSDESC_LD64_LO12 => Action::TlsDescriptor {
            field: LD64_LO12,
            form: PageOffset,
        },
        elf::R_AARCH64_TLSDESC_ADD_LO12 => Action::TlsDescriptor {
            field: ADD_LO12,
            form: PageOffset,
        },
        elf::R_AARCH64_TLSDESC_ADR_PREL21 => Action::TlsDescriptor {
            field: ADR,
            form: Relative,
        },
        elf::R_AARCH64_TLSDESC_LD_PREL19 => Action::TlsDescriptor {
            field: BRANCH19,
            form: Relative,
        },
        elf::R_AARCH64_TLSDESC_CALL => Action::Nothing,
        elf::R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21 => Action::TlsInitialExec {
            field: ADRP,
            form: Page,
        },
        elf::R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC => Action::TlsInitialExec {
            field: LD64_LO12,
            form: PageOffset,
        },
        elf::R_AARCH64_TLSIE_LD_GOTTPREL_PREL19 => Action::TlsInitialExec {
            field: BRANCH19,
            form: Relative,
        },
        // The traditional dialect (-mtls-dialect=trad): __tls_get_addr.
        elf::R_AARCH64_TLSGD_ADR_PAGE21 => Action::TlsGeneralDynamic {
            field: ADRP,
            form: Page,
        },
        elf::R_AARCH64_TLSGD_ADD_LO12_NC => Action::TlsGeneralDynamic {
            field: ADD_LO12,
            form: PageOffset,
        },
        elf::R_AARCH64_TLSGD_ADR_PREL21 => Action::TlsGeneralDynamic {
            field: ADR,
            form: Relative,
        },
        elf::R_AARCH64_TLSLD_ADR_PAGE21 => Action::TlsLocalDynamic {
            field: ADRP,
            form: Page,
        },
        elf::R_AARCH64_TLSLD_ADD_LO12_NC => Action::TlsLocalDynamic {
            field: ADD_LO12,
            form: PageOffset,
        },
        elf::R_AARCH64_TLSLD_ADR_PREL21 => Action::TlsLocalDynamic {
            field: ADR,
            form: Relative,
        },
        elf::R_AARCH64_TLSLD_ADD_DTPREL_HI12 => Action::DtpOffset(Field::Insn(Insn::Add {
            shift: 12,
            checked: true,
        })),
        elf::R_AARCH64_TLSLD_ADD_DTPREL_LO12 => Action::DtpOffset(Field::Insn(Insn::Add {
            shift: 0,
            checked: true,
        })),
        elf::R_AARCH64_TLSLD_ADD_DTPREL_LO12_NC => Action::DtpOffset(ADD_LO12),
        // Local-exec code has the offset from the thread pointer built into its instructions,
        // which would then be written at load time; as for a shared library, it is refused.
        elf::R_AARCH64_TLSLE_MOVW_TPREL_G2
        | elf::R_AARCH64_TLSLE_MOVW_TPREL_G1
        | elf::R_AARCH64_TLSLE_MOVW_TPREL_G1_NC
        | elf::R_AARCH64_TLSLE_MOVW_TPREL_G0
        | elf::R_AARCH64_TLSLE_MOVW_TPREL_G0_NC
        | elf::R_AARCH64_TLSLE_ADD_TPREL_HI12
        | elf::R_AARCH64_TLSLE_ADD_TPREL_LO12
        | elf::R_AARCH64_TLSLE_ADD_TPREL_LO12_NC
        | elf::R_AARCH64_TLSLE_LDST8_TPREL_LO12
        | elf::R_AARCH64_TLSLE_LDST8_TPREL_LO12_NC
        | elf::R_AARCH64_TLSLE_LDST16_TPREL_LO12
        | elf::R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC
        | elf::R_AARCH64_TLSLE_LDST32_TPREL_LO12
        | elf::R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC
        | elf::R_AARCH64_TLSLE_LDST64_TPREL_LO12
        | elf::R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC
        | elf::R_AARCH64_TLSLE_LDST128_TPREL_LO12
        | elf::R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC => Action::ThreadLocalModel("local-exec"),
        elf::R_AARCH64_TLS_DTPMOD
        | elf::R_AARCH64_TLS_DTPREL
        | elf::R_AARCH64_TLS_TPREL
        | elf::R_AARCH64_TLSDESC => Action::ThreadLocal,
        // MOVW_* (the large code model, not position-independent), the other TLS forms,
        // COPY, GLOB_DAT, JUMP_SLOT, RELATIVE, IRELATIVE (linked files only), ILP32 types.
        _ => Action::Unsupported,
    }
}

fn page_distance(from: u64, to: u64) -> Result<u32, String> {
    let field = Field::Insn(Insn::Adr {
        shift: 12,
        checked: true,
    });
    let value = Form::Page.compute(i128::from(to), i128::from(from), 0);
    super::encode(value, field, true, &0x9000_0000u32.to_le_bytes())
        .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .map_err(|_| format!("{to:#x} is out of ADRP's reach from {from:#x}"))
}

/// `adrp x16, slot; ldr x17, [x16, :lo12:slot]; br x17; udf #0`.
fn write_stub(stub: u64, slot: u64) -> Result<[u8; STUB_SIZE as usize], String> {
    if slot % 8 != 0 {
        return Err(format!("GOT slot {slot:#x} is not 8-byte aligned"));
    }
    let adrp = page_distance(stub, slot)? | 16;
    let ldr = 0xf940_0211 | ((slot & 0xfff) as u32 >> 3) << 10;
    Ok(words::<16>(&[adrp, ldr, 0xd61f_0220, 0]))
}

/// `adrp x16, target; add x16, x16, :lo12:target; br x16; udf #0`: reaches ±4 GiB.
fn write_veneer(at: u64, target: u64) -> Result<[u8; STUB_SIZE as usize], String> {
    let adrp = page_distance(at, target)? | 16;
    let add = 0x9100_0210 | ((target & 0xfff) as u32) << 10;
    Ok(words::<16>(&[adrp, add, 0xd61f_0200, 0]))
}

const SUPPORT: &[SupportFunction] = &[
    // int atexit(void (*f)(void)) { return __cxa_atexit((void (*)(void *))f, NULL, &__dso_handle); }
    SupportFunction {
        name: "atexit",
        // mov x1, #0; adrp x2, __dso_handle; add x2, x2, :lo12:__dso_handle; b __cxa_atexit
        code: &words::<16>(&[0xd280_0001, 0x9000_0002, 0x9100_0042, 0x1400_0000]),
        relocs: &[
            (4, "__dso_handle", elf::R_AARCH64_ADR_PREL_PG_HI21, 0),
            (8, "__dso_handle", elf::R_AARCH64_ADD_ABS_LO12_NC, 0),
            (12, "__cxa_atexit", elf::R_AARCH64_JUMP26, 0),
        ],
    },
    // int at_quick_exit(void (*f)(void)) { return __cxa_at_quick_exit(f, &__dso_handle); }
    SupportFunction {
        name: "at_quick_exit",
        // adrp x1, __dso_handle; add x1, x1, :lo12:__dso_handle; b __cxa_at_quick_exit
        code: &words::<12>(&[0x9000_0001, 0x9100_0021, 0x1400_0000]),
        relocs: &[
            (0, "__dso_handle", elf::R_AARCH64_ADR_PREL_PG_HI21, 0),
            (4, "__dso_handle", elf::R_AARCH64_ADD_ABS_LO12_NC, 0),
            (8, "__cxa_at_quick_exit", elf::R_AARCH64_JUMP26, 0),
        ],
    },
    // int pthread_atfork(prepare, parent, child) { return __register_atfork(prepare, parent, child, &__dso_handle); }
    SupportFunction {
        name: "pthread_atfork",
        // adrp x3, __dso_handle; add x3, x3, :lo12:__dso_handle; b __register_atfork
        code: &words::<12>(&[0x9000_0003, 0x9100_0063, 0x1400_0000]),
        relocs: &[
            (0, "__dso_handle", elf::R_AARCH64_ADR_PREL_PG_HI21, 0),
            (4, "__dso_handle", elf::R_AARCH64_ADD_ABS_LO12_NC, 0),
            (8, "__register_atfork", elf::R_AARCH64_JUMP26, 0),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: &[u8], index: usize) -> u32 {
        u32::from_le_bytes(bytes[4 * index..4 * index + 4].try_into().unwrap())
    }

    #[test]
    fn stubs_and_veneers_decode_to_their_targets() {
        // Stub at 0x10ff0, slot at 0x23008: adrp x16 reaches page 0x23000 (+0x13 pages from
        // 0x10000), the load adds 0x8.
        let stub = write_stub(0x10ff0, 0x23008).unwrap();
        assert_eq!(
            word(&stub, 0),
            0x9000_0010 | (0x13 & 3) << 29 | (0x13 >> 2) << 5
        );
        assert_eq!(word(&stub, 1), 0xf940_0000 | 1 << 10 | 16 << 5 | 17);
        assert_eq!(word(&stub, 2), 0xd61f_0220);
        assert!(write_stub(0, 0x23004).is_err());
        assert!(write_stub(0, 1 << 33).is_err());
        let veneer = write_veneer(0x1000_0000, 0x345).unwrap();
        // -0x10000 pages: immlo 0, immhi 0x7c000 (-0x4000 in 19 bits).
        assert_eq!(word(&veneer, 0), 0x9000_0010 | 0x7_c000 << 5);
        assert_eq!(word(&veneer, 1), 0x9100_0210 | 0x345 << 10);
        assert_eq!(word(&veneer, 2), 0xd61f_0200);
    }

    #[test]
    fn the_table_covers_what_compilers_emit() {
        for r_type in [
            elf::R_AARCH64_ADR_PREL_PG_HI21,
            elf::R_AARCH64_ADD_ABS_LO12_NC,
            elf::R_AARCH64_LDST128_ABS_LO12_NC,
            elf::R_AARCH64_CALL26,
            elf::R_AARCH64_CONDBR19,
            elf::R_AARCH64_TSTBR14,
            elf::R_AARCH64_ADR_GOT_PAGE,
            elf::R_AARCH64_LD64_GOT_LO12_NC,
            elf::R_AARCH64_TLSDESC_ADR_PAGE21,
            elf::R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC,
        ] {
            assert_eq!(action(r_type.0).width(), 4, "{}", ARCH.type_name(r_type.0));
        }
        assert_eq!(action(elf::R_AARCH64_PREL32.0).width(), 4);
        assert_eq!(action(elf::R_AARCH64_ABS64.0), Action::Address64);
        assert_eq!(action(elf::R_AARCH64_TLSDESC_CALL.0), Action::Nothing);
        assert_eq!(
            action(elf::R_AARCH64_TLSLE_ADD_TPREL_HI12.0),
            Action::ThreadLocalModel("local-exec")
        );
        assert_eq!(action(elf::R_AARCH64_MOVW_UABS_G0.0), Action::Unsupported);
        assert_eq!(
            ARCH.type_name(elf::R_AARCH64_LD64_GOT_LO12_NC.0),
            "R_AARCH64_LD64_GOT_LO12_NC"
        );
    }
}
