//! Indirect functions (`STT_GNU_IFUNC`: gcc's `ifunc` attribute and `target_clones`).
//!
//! An IFUNC symbol's value is the address of its *resolver*, a function that returns the
//! implementation to use on this machine. As GNU ld does for a shared object (a PLT entry and
//! an `R_X86_64_IRELATIVE` relocation), the packer gives each IFUNC defined in the module one
//! stub, `jmp *slot(%rip)` like an import's, and one GOT slot that an `irelative` relocation
//! fills at load with what the resolver returns. The stub is the function's address
//! everywhere: direct calls and `lea`s land on it, GOT slots and data pointers hold it, and
//! the symbol table exports it. So `&f` is one value in the whole process (in every object of
//! the module, and in modules that import `f`), and every call reaches the chosen
//! implementation through one indirect jump.

use smf_format::{Reloc, RelocKind};

use crate::error::Error;
use crate::input::{Object, SymbolDefinition, SymbolType};
use crate::layout::{Layout, OutputKind};
use crate::relocate::Needs;
use crate::resolve::{Definition, Globals, SymbolRef};

/// The object and symbol index defining `target`, if that definition is an IFUNC.
pub(crate) fn definition(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    target: SymbolRef,
) -> Option<(usize, usize)> {
    let (object, symbol) = match target {
        SymbolRef::Global(id) => match globals.symbols.get(id)?.definition {
            Definition::Defined { object, symbol, .. } => (object, symbol),
            _ => return None,
        },
        SymbolRef::Local { object, symbol } => (object, symbol),
    };
    let input = objects.get(object)?.symbols.get(symbol)?;
    (input.kind == SymbolType::Ifunc && matches!(input.definition, SymbolDefinition::Section(_)))
        .then_some((object, symbol))
}

/// Gives a stub and a slot to every IFUNC that the module exports, referenced or not:
/// another module may import it. (Local ones get theirs when a relocation refers to them.)
pub(crate) fn add_exported(objects: &[Object<'_>], globals: &Globals<'_>, needs: &mut Needs) {
    for id in 0..globals.symbols.len() {
        if let Some(ifunc) = definition(objects, globals, SymbolRef::Global(id)) {
            needs.add_ifunc(ifunc);
        }
    }
}

/// Writes each IFUNC's slot: its resolver's address in the file (for inspection), and an
/// `irelative` relocation that replaces it with the resolver's choice at load.
pub(crate) fn fill_slots(
    objects: &[Object<'_>],
    needs: &Needs,
    layout: &mut Layout,
    load_relocs: &mut Vec<Reloc>,
) -> Result<(), Error> {
    for (index, &(object, symbol)) in needs.ifuncs.iter().enumerate() {
        let input = &objects[object];
        let resolver = match input.symbols[symbol].definition {
            SymbolDefinition::Section(section) => layout
                .section_placement(object, section)
                .filter(|(kind, _)| *kind == OutputKind::Code)
                .and_then(|(_, address)| address.checked_add(input.symbols[symbol].value))
                .filter(|&address| layout.output(OutputKind::Code).contains(address)),
            _ => None,
        };
        let Some(resolver) = resolver else {
            return Err(Error::Symbol {
                file: input.name.to_owned(),
                symbol: input.symbol_display_name(symbol).to_owned(),
                problem: "is an indirect function (STT_GNU_IFUNC) whose resolver is not in a \
                          code section the module keeps"
                    .into(),
            });
        };
        let slot = layout.ifunc_slot(index as u32);
        layout.write(slot, &resolver.to_le_bytes())?;
        load_relocs.push(Reloc {
            offset: slot,
            kind: RelocKind::Irelative,
            import: None,
            addend: i64::try_from(resolver)
                .map_err(|_| Error::Layout(format!("resolver at {resolver:#x} is out of range")))?,
        });
    }
    Ok(())
}
