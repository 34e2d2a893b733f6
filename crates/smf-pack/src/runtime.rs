//! The C runtime's static part: functions that a native link takes from `libc_nonshared.a`
//! because the C library does not export them (`atexit` among them).
//!
//! When the inputs call one of them and define none, the packer adds a small ELF object of
//! its own making, built with `object::write`, that defines the functions called, exactly as
//! glibc's static archive does: each passes the module's `__dso_handle` on to the exported
//! function, so that handlers a module registers are tied to that module (the loader runs
//! them with `__cxa_finalize` when it unloads the module).

use object::elf;
use object::read::{Object as _, ObjectSymbol as _};
use object::write::{Object, Relocation, StandardSection, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SymbolFlags, SymbolKind, SymbolScope,
};

use crate::Input;

/// The name given to the generated object in error messages.
pub(crate) const NAME: &str = "<smf runtime support>";

/// One function: its name, its code, and the relocations in it as
/// (offset in the code, symbol, ELF relocation type).
struct Stub {
    name: &'static str,
    code: &'static [u8],
    relocs: &'static [(u64, &'static str, elf::RelocationType)],
}

const STUBS: &[Stub] = &[
    // int atexit(void (*f)(void)) { return __cxa_atexit((void (*)(void *))f, NULL, &__dso_handle); }
    Stub {
        name: "atexit",
        // xor esi, esi; lea rdx, [rip + __dso_handle]; jmp __cxa_atexit
        code: &[0x31, 0xf6, 0x48, 0x8d, 0x15, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (5, "__dso_handle", elf::R_X86_64_PC32),
            (10, "__cxa_atexit", elf::R_X86_64_PLT32),
        ],
    },
    // int at_quick_exit(void (*f)(void)) { return __cxa_at_quick_exit(f, &__dso_handle); }
    Stub {
        name: "at_quick_exit",
        // lea rsi, [rip + __dso_handle]; jmp __cxa_at_quick_exit
        code: &[0x48, 0x8d, 0x35, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (3, "__dso_handle", elf::R_X86_64_PC32),
            (8, "__cxa_at_quick_exit", elf::R_X86_64_PLT32),
        ],
    },
    // int pthread_atfork(prepare, parent, child) { return __register_atfork(prepare, parent, child, &__dso_handle); }
    Stub {
        name: "pthread_atfork",
        // lea rcx, [rip + __dso_handle]; jmp __register_atfork
        code: &[0x48, 0x8d, 0x0d, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0],
        relocs: &[
            (3, "__dso_handle", elf::R_X86_64_PC32),
            (8, "__register_atfork", elf::R_X86_64_PLT32),
        ],
    },
    // void __stack_chk_fail_local(void) { __stack_chk_fail(); }
    Stub {
        name: "__stack_chk_fail_local",
        // jmp __stack_chk_fail
        code: &[0xe9, 0, 0, 0, 0],
        relocs: &[(1, "__stack_chk_fail", elf::R_X86_64_PLT32)],
    },
];

/// The support object for `inputs`, if they call a function of [`STUBS`] that none defines.
pub(crate) fn support_object(inputs: &[Input]) -> Option<Input> {
    let mut undefined = [false; STUBS.len()];
    let mut defined = [false; STUBS.len()];
    for input in inputs {
        // Unreadable inputs are reported by the packer's own reader; here they add nothing.
        let Ok(file) = object::File::parse(&*input.data) else {
            continue;
        };
        for symbol in file.symbols() {
            let Some(index) = symbol
                .name()
                .ok()
                .and_then(|n| STUBS.iter().position(|s| s.name == n))
            else {
                continue;
            };
            if symbol.is_undefined() {
                undefined[index] = true;
            } else if symbol.is_global() {
                defined[index] = true;
            }
        }
    }
    let wanted: Vec<&Stub> = STUBS
        .iter()
        .enumerate()
        .filter(|(i, _)| undefined[*i] && !defined[*i])
        .map(|(_, s)| s)
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let mut object = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = object.section_id(StandardSection::Text);
    for stub in wanted {
        let offset = object.append_section_data(text, stub.code, 16);
        object.add_symbol(Symbol {
            name: stub.name.as_bytes().to_vec(),
            value: offset,
            size: stub.code.len() as u64,
            kind: SymbolKind::Text,
            // Hidden, as in libc_nonshared.a: each module has its own, none is exported.
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(text),
            flags: SymbolFlags::None,
        });
        for &(at, target, r_type) in stub.relocs {
            let symbol = object.symbol_id(target.as_bytes()).unwrap_or_else(|| {
                object.add_symbol(Symbol {
                    name: target.as_bytes().to_vec(),
                    value: 0,
                    size: 0,
                    kind: SymbolKind::Unknown,
                    scope: if target == "__dso_handle" {
                        SymbolScope::Linkage
                    } else {
                        SymbolScope::Dynamic
                    },
                    weak: false,
                    section: SymbolSection::Undefined,
                    flags: SymbolFlags::None,
                })
            });
            let relocation = Relocation {
                offset: offset + at,
                symbol,
                addend: -4,
                flags: RelocationFlags::Elf { r_type },
            };
            // The section and symbol were just created in this object, so this cannot fail.
            object.add_relocation(text, relocation).ok()?;
        }
    }
    let data = object.write().ok()?;
    Some(Input {
        name: NAME.into(),
        data,
    })
}
