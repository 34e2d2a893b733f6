//! x86-64 COFF objects (mingw-w64's gcc and g++, Cranelift's COFF backend) for Windows
//! modules: the `IMAGE_REL_AMD64_*` relocation table.
//!
//! COFF relocations keep their addend in the relocated field; the reader
//! (`crate::input::coff`) moves it into the relocation, adds the `-4 - N` of `REL32_N`, and
//! sets two flag bits above the 16-bit type from what the symbol says, so that one type here
//! means one [`Action`]:
//!
//! * [`IMP_SLOT`]: the symbol was `__imp_NAME`, the address of a pointer slot holding `NAME`'s
//!   address (`__declspec(dllimport)`); the reloc now names `NAME` and means its GOT slot.
//! * [`CALL`]: the symbol is typed as a function (`IMAGE_SYM_DTYPE_FUNCTION`), so a 32-bit
//!   PC-relative reference to it may go through a call stub when it is an import.

use object::pe;

use super::{Action, Arch, Form, Range, data};

pub(crate) static ARCH: Arch = Arch {
    // The instruction set's ELF number; `platform` tells the two tables apart.
    machine: object::elf::EM_X86_64,
    name: "x86-64 COFF",
    platform: smf_format::Platform::Windows,
    binary_format: object::BinaryFormat::Coff,
    type_names,
    format: smf_format::Arch::X86_64,
    object: object::Architecture::X86_64,
    action,
    none: pe::IMAGE_REL_AMD64_ABSOLUTE.0 as u32,
    abs64: pe::IMAGE_REL_AMD64_ADDR64.0 as u32,
    unwind_section_type: None,
    page_size: 4096,
    code_fill: &[0xcc],
    nop: &[0x90],
    trap: &[0xcc],
    // COFF objects have no legacy `.init`/`.fini` fragments.
    legacy_prologue: &[],
    legacy_epilogue: &[],
    write_stub: super::x86_64::ARCH.write_stub,
    write_veneer: None,
    // Windows modules import from DLLs, which the packer does not read.
    library_dirs: &[],
    support: SUPPORT,
    // PE thread-local storage is refused (`crate::input::coff`): no static block to align.
    static_tls_align: 64,
    // libgcc.a's `__main` would run the `.ctors` list, which the loader runs itself
    // (`init_array`), from `__CTOR_LIST__`, which only GNU ld's script defines.
    archives_never_define: &["__main"],
    // libmingw32.a's tlsthrd.o keeps the destructors of Win32-threads thread keys (behind
    // libstdc++'s thread_local destructors) and runs them when told of a thread's end;
    // tlssup.o's TLS callbacks tell it (process attach, which readies it, and thread and
    // process detach). tlssup.o, with its `.tls` directory, is no part of a module.
    runtime_tls_callbacks: &["__mingw_TLScallback"],
    // `movabs $import, %reg`: Cranelift's code for COFF without GOT relocations.
    pc_relative_load: Some(super::x86_64::pc_relative_load),
};

/// Flag: the relocation's symbol stands for `__imp_NAME`, `NAME`'s pointer slot.
pub(crate) const IMP_SLOT: u32 = 1 << 16;
/// Flag: the relocation's symbol is typed as a function.
pub(crate) const CALL: u32 = 1 << 17;

fn type_names(r_type: u32) -> Option<&'static str> {
    let plain = r_type & 0xffff;
    let name = match pe::RelocationType(u16::try_from(plain).ok()?) {
        pe::IMAGE_REL_AMD64_ABSOLUTE => "IMAGE_REL_AMD64_ABSOLUTE",
        pe::IMAGE_REL_AMD64_ADDR64 => "IMAGE_REL_AMD64_ADDR64",
        pe::IMAGE_REL_AMD64_ADDR32 => "IMAGE_REL_AMD64_ADDR32",
        pe::IMAGE_REL_AMD64_ADDR32NB => "IMAGE_REL_AMD64_ADDR32NB",
        pe::IMAGE_REL_AMD64_REL32 => "IMAGE_REL_AMD64_REL32",
        pe::IMAGE_REL_AMD64_REL32_1 => "IMAGE_REL_AMD64_REL32_1",
        pe::IMAGE_REL_AMD64_REL32_2 => "IMAGE_REL_AMD64_REL32_2",
        pe::IMAGE_REL_AMD64_REL32_3 => "IMAGE_REL_AMD64_REL32_3",
        pe::IMAGE_REL_AMD64_REL32_4 => "IMAGE_REL_AMD64_REL32_4",
        pe::IMAGE_REL_AMD64_REL32_5 => "IMAGE_REL_AMD64_REL32_5",
        pe::IMAGE_REL_AMD64_SECTION => "IMAGE_REL_AMD64_SECTION",
        pe::IMAGE_REL_AMD64_SECREL => "IMAGE_REL_AMD64_SECREL",
        pe::IMAGE_REL_AMD64_SECREL7 => "IMAGE_REL_AMD64_SECREL7",
        pe::IMAGE_REL_AMD64_TOKEN => "IMAGE_REL_AMD64_TOKEN",
        pe::IMAGE_REL_AMD64_SREL32 => "IMAGE_REL_AMD64_SREL32",
        pe::IMAGE_REL_AMD64_PAIR => "IMAGE_REL_AMD64_PAIR",
        pe::IMAGE_REL_AMD64_SSPAN32 => "IMAGE_REL_AMD64_SSPAN32",
        _ => return None,
    };
    Some(name)
}

/// Whether `r_type` (without flags) is one of the 32-bit PC-relative types.
pub(crate) fn is_rel32(r_type: pe::RelocationType) -> Option<u8> {
    match r_type {
        pe::IMAGE_REL_AMD64_REL32 => Some(0),
        pe::IMAGE_REL_AMD64_REL32_1 => Some(1),
        pe::IMAGE_REL_AMD64_REL32_2 => Some(2),
        pe::IMAGE_REL_AMD64_REL32_3 => Some(3),
        pe::IMAGE_REL_AMD64_REL32_4 => Some(4),
        pe::IMAGE_REL_AMD64_REL32_5 => Some(5),
        _ => None,
    }
}

fn action(r_type: u32) -> Action {
    use Range::*;
    let imp_slot = r_type & IMP_SLOT != 0;
    let call = r_type & CALL != 0;
    let Ok(plain) = u16::try_from(r_type & !(IMP_SLOT | CALL)) else {
        return Action::Unsupported;
    };
    let plain = pe::RelocationType(plain);
    if imp_slot {
        // `mov __imp_NAME(%rip), %rax`, `call *__imp_NAME(%rip)`: the slot's address,
        // PC-relative. Other uses of a slot's address (a pointer to it in data) are not
        // position-independent data the module can hold.
        return match is_rel32(plain) {
            Some(_) => Action::GotPcRelative {
                field: data(4, Signed),
                form: Form::Relative,
                relaxable: false,
            },
            None => Action::Unsupported,
        };
    }
    match plain {
        pe::IMAGE_REL_AMD64_ABSOLUTE => Action::Nothing,
        pe::IMAGE_REL_AMD64_ADDR64 => Action::Address64,
        pe::IMAGE_REL_AMD64_ADDR32 => Action::AbsoluteNarrow(data(4, Unsigned)),
        pe::IMAGE_REL_AMD64_ADDR32NB => Action::ImageRelative(data(4, Unsigned)),
        pe::IMAGE_REL_AMD64_SECREL => Action::SectionRelative(data(4, Unsigned)),
        pe::IMAGE_REL_AMD64_SECTION => Action::SectionIndex(data(2, Unsigned)),
        other if is_rel32(other).is_some() => Action::PcRelative {
            field: data(4, Signed),
            form: Form::Relative,
            call,
        },
        // SECREL7, TOKEN (CLR), SREL32, PAIR, SSPAN32: not emitted for x86-64 user code.
        _ => Action::Unsupported,
    }
}

/// mingw-w64's `main` calls `__main` first, the C runtime's constructor runner; in a module
/// the loader has run the constructors (`init_array`) already, so it does nothing
/// (docs/FORMAT.md, "Constructors of Windows modules").
const SUPPORT: &[super::SupportFunction] = &[super::SupportFunction {
    name: "__main",
    code: &[0xc3],
    relocs: &[],
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Field;

    #[test]
    fn each_type_means_one_action() {
        let rel32 = |flags| action(u32::from(pe::IMAGE_REL_AMD64_REL32_4.0) | flags);
        assert_eq!(
            rel32(0),
            Action::PcRelative {
                field: data(4, Range::Signed),
                form: Form::Relative,
                call: false
            }
        );
        assert!(matches!(rel32(CALL), Action::PcRelative { call: true, .. }));
        assert!(matches!(rel32(IMP_SLOT), Action::GotPcRelative { .. }));
        assert_eq!(
            action(u32::from(pe::IMAGE_REL_AMD64_ADDR64.0) | IMP_SLOT),
            Action::Unsupported
        );
        assert_eq!(
            action(u32::from(pe::IMAGE_REL_AMD64_ADDR32NB.0)),
            Action::ImageRelative(Field::Data {
                bytes: 4,
                range: Range::Unsigned
            })
        );
        assert_eq!(action(u32::from(pe::IMAGE_REL_AMD64_SECTION.0)).width(), 2);
        assert_eq!(action(u32::from(pe::IMAGE_REL_AMD64_ADDR64.0)).width(), 8);
        assert_eq!(
            action(u32::from(pe::IMAGE_REL_AMD64_SREL32.0)),
            Action::Unsupported
        );
        assert_eq!(action(0xffff), Action::Unsupported);
        assert_eq!(
            ARCH.type_name(u32::from(pe::IMAGE_REL_AMD64_REL32_1.0) | CALL),
            "IMAGE_REL_AMD64_REL32_1"
        );
        assert_eq!(ARCH.type_name(0x99), "type 153");
    }
}
