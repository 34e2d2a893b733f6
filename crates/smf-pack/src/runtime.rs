//! The C runtime's static part: functions that a native link takes from `libc_nonshared.a`
//! because the C library does not export them (`atexit` among them), and for COFF objects
//! mingw-w64's `__main`, which a module needs as a function that does nothing.
//!
//! When the inputs call one of them and define none, the packer adds a small ELF object of
//! its own making, built with `object::write`, that defines the functions called, exactly as
//! glibc's static archive does: each passes the module's `__dso_handle` on to the exported
//! function, so that handlers a module registers are tied to that module (the loader runs
//! them with `__cxa_finalize` when it unloads the module).

use object::read::{Object as _, ObjectSymbol as _};
use object::write::{Object, Relocation, StandardSection, Symbol, SymbolSection};
use object::{BinaryFormat, Endianness, RelocationFlags, SymbolFlags, SymbolKind, SymbolScope};

use crate::Input;
use crate::arch::{Arch, SupportFunction};

/// The name given to the generated object in error messages.
pub(crate) const NAME: &str = "<smf runtime support>";

/// The support object for `inputs`, if they call a function of the arch's support functions
/// that none defines.
pub(crate) fn support_object(inputs: &[Input], arch: &Arch) -> Option<Input> {
    let stubs = arch.support;
    let mut undefined = vec![false; stubs.len()];
    let mut defined = vec![false; stubs.len()];
    for input in inputs {
        // Unreadable inputs are reported by the packer's own reader; here they add nothing.
        let Ok(file) = object::File::parse(&*input.data) else {
            continue;
        };
        for symbol in file.symbols() {
            let Some(index) = symbol
                .name()
                .ok()
                .and_then(|n| stubs.iter().position(|s| s.name == n))
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
    let wanted: Vec<&SupportFunction> = stubs
        .iter()
        .enumerate()
        .filter(|(i, _)| undefined[*i] && !defined[*i])
        .map(|(_, s)| s)
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let mut object = Object::new(arch.binary_format, arch.object, Endianness::Little);
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
        for &(at, target, r_type, addend) in stub.relocs {
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
                addend,
                flags: match arch.binary_format {
                    BinaryFormat::Coff => RelocationFlags::Coff {
                        typ: object::pe::RelocationType(u16::try_from(r_type.0).ok()?),
                    },
                    _ => RelocationFlags::Elf { r_type },
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coff_objects_get_a_coff_support_object() {
        // An object that calls `__main`, as mingw-w64's `main` does.
        let mut caller = Object::new(
            BinaryFormat::Coff,
            object::Architecture::X86_64,
            Endianness::Little,
        );
        let text = caller.section_id(StandardSection::Text);
        caller.append_section_data(text, &[0xe8, 0, 0, 0, 0, 0xc3], 16);
        let main = caller.add_symbol(Symbol {
            name: b"__main".to_vec(),
            value: 0,
            size: 0,
            kind: SymbolKind::Text,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Undefined,
            flags: SymbolFlags::None,
        });
        caller
            .add_relocation(
                text,
                Relocation {
                    offset: 1,
                    symbol: main,
                    addend: 0,
                    flags: RelocationFlags::Coff {
                        typ: object::pe::IMAGE_REL_AMD64_REL32,
                    },
                },
            )
            .unwrap();
        let input = Input {
            name: "caller.obj".into(),
            data: caller.write().unwrap(),
        };
        let support = support_object(&[input], &crate::arch::x86_64_coff::ARCH).unwrap();
        let file = object::File::parse(&*support.data).unwrap();
        assert_eq!(file.format(), BinaryFormat::Coff);
        let defined: Vec<_> = file
            .symbols()
            .filter(|s| !s.is_undefined())
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .collect();
        assert!(defined.iter().any(|n| n == "__main"), "{defined:?}");
    }
}
