//! The module's symbol table, built from the resolved symbols once addresses are known.

use smf_format::{Binding, Symbol, SymbolKind, Visibility};

use crate::error::Error;
use crate::input::{
    Object, SectionClass, SymbolBinding, SymbolDefinition, SymbolType, SymbolVisibility,
};
use crate::layout::{Layout, OutputKind};
use crate::resolve::{DSO_HANDLE, Definition, GOT_SYMBOL, Globals, Strength};

/// Lists every symbol of the module, by address: the winning definition of each global
/// (exported unless hidden), the named functions and objects local to one object, and the
/// symbols the packer provides. `indices` maps [`OutputKind::index`] to the SMF section index
/// of each output (`None` if empty). Section symbols, file symbols and untyped locals (`.L`
/// labels) are left out. Each symbol comes with the object and the object's symbol it is,
/// `None` for the packer's own.
pub(crate) fn build<'data>(
    objects: &[Object<'data>],
    globals: &Globals<'data>,
    layout: &Layout,
    indices: &[Option<u32>],
) -> Result<Vec<(Symbol<'data>, Option<(usize, usize)>)>, Error> {
    let mut symbols = Vec::new();
    for (o, object) in objects.iter().enumerate() {
        for (s, symbol) in object.symbols.iter().enumerate().skip(1) {
            let (binding, visibility, size) = if symbol.binding == SymbolBinding::Local {
                if !matches!(
                    symbol.kind,
                    SymbolType::Function | SymbolType::Object | SymbolType::Tls | SymbolType::Ifunc
                ) || symbol.name.is_empty()
                    || is_mapping_symbol(symbol.name)
                {
                    continue;
                }
                (Binding::Local, Visibility::Default, symbol.size)
            } else {
                let Some(global) = globals
                    .get(symbol.name)
                    .and_then(|id| globals.symbols.get(id))
                else {
                    continue;
                };
                let (strength, size) = match global.definition {
                    Definition::Defined {
                        object,
                        symbol: index,
                        strength,
                    } if (object, index) == (o, s) => (strength, symbol.size),
                    Definition::Common {
                        object,
                        symbol: index,
                        size,
                        ..
                    } if (object, index) == (o, s) => (Strength::Common, size),
                    _ => continue,
                };
                let (binding, visibility) =
                    exported_binding(strength, symbol.binding, global.visibility);
                (binding, visibility, size)
            };
            let mut size = size;
            let location = match symbol.definition {
                // An indirect function is its stub, which reaches the implementation its
                // resolver chose (`crate::ifunc`); one nothing refers to has none and is left out.
                _ if symbol.kind == SymbolType::Ifunc => match layout.ifunc_stub(o, s) {
                    Some(stub) => {
                        size = crate::arch::STUB_SIZE;
                        Some((OutputKind::Code, Some(stub)))
                    }
                    None => continue,
                },
                SymbolDefinition::Section(index) => {
                    let Some(section) = object.sections.get(index) else {
                        continue;
                    };
                    let (SectionClass::Loaded(_), false) = (section.class, section.discarded)
                    else {
                        continue;
                    };
                    let Some((output, base)) = layout.section_placement(o, index) else {
                        continue;
                    };
                    let address = base.checked_add(symbol.value);
                    Some((output, address))
                }
                SymbolDefinition::Common { .. } => {
                    let address = globals.get(symbol.name).and_then(|id| layout.common(id));
                    Some((OutputKind::Bss, address))
                }
                SymbolDefinition::Absolute => None,
                SymbolDefinition::Undefined => continue,
            };
            let in_code = matches!(location, Some((OutputKind::Code, _)));
            let kind = if matches!(symbol.kind, SymbolType::Function | SymbolType::Ifunc)
                || (in_code && symbol.is_function_in_code())
            {
                SymbolKind::Function
            } else {
                SymbolKind::Data
            };
            let symbol_error = |problem: String| Error::Symbol {
                file: object.name.to_owned(),
                symbol: symbol.name.to_owned(),
                problem,
            };
            let entry = match location {
                Some((output, address)) => {
                    let Some(index) = section_index(indices, output) else {
                        continue;
                    };
                    let section = layout.output(output);
                    let end = address.and_then(|a| a.checked_add(size));
                    let (Some(address), Some(end)) = (address, end) else {
                        return Err(symbol_error(format!(
                            "value {:#x} + size {size:#x} overflows",
                            symbol.value
                        )));
                    };
                    if end > section.vaddr + section.size {
                        return Err(symbol_error(format!(
                            "value {:#x} + size {size:#x} runs past the end of its section",
                            symbol.value
                        )));
                    }
                    // A function symbol must lie in code in the module format.
                    let kind = if output == OutputKind::Code {
                        kind
                    } else {
                        SymbolKind::Data
                    };
                    // A thread-local's address is only its template's: it is listed, for
                    // tools, but not exported, since no other module could use it.
                    let (binding, visibility) = if output == OutputKind::Tls {
                        (Binding::Local, visibility)
                    } else {
                        (binding, visibility)
                    };
                    symbol_entry(
                        symbol.name,
                        kind,
                        binding,
                        visibility,
                        Some(index),
                        address,
                        size,
                    )
                }
                // Absolute globals are constants; absolute locals say nothing useful.
                None if binding == Binding::Local => continue,
                None => symbol_entry(
                    symbol.name,
                    SymbolKind::Constant,
                    binding,
                    visibility,
                    None,
                    symbol.value,
                    size,
                ),
            };
            symbols.push((entry, Some((o, s))));
        }
    }
    // The packer's own definitions, hidden like the linker-provided ones of ELF.
    for global in &globals.symbols {
        let (address, size) = match (global.definition, global.name) {
            (Definition::DsoHandle, DSO_HANDLE) => match layout.dso_handle() {
                Some(address) => (address, 8),
                None => continue,
            },
            (Definition::GotBase, GOT_SYMBOL) => (layout.got_address(), 0),
            _ => continue,
        };
        // An empty GOT has no bytes of its own; the base is then not worth listing.
        let expected = if global.definition == Definition::GotBase {
            OutputKind::RelRo
        } else {
            OutputKind::Data
        };
        let Some(index) = layout
            .output_at(address)
            .filter(|o| o.kind == expected)
            .and_then(|o| section_index(indices, o.kind))
        else {
            continue;
        };
        symbols.push((
            symbol_entry(
                global.name,
                SymbolKind::Data,
                Binding::Local,
                Visibility::Hidden,
                Some(index),
                address,
                size,
            ),
            None,
        ));
    }
    // In address order, exported names first at one address and values outside the image
    // last, the rest in input order: the order a loader's symbolizer wants, which it then
    // gets in one pass instead of merging each object's runs at every load.
    symbols.sort_by_key(|(s, _)| (s.section.is_none(), s.value, s.binding == Binding::Local));
    Ok(symbols)
}

/// Binding and visibility of a global's winning definition: hidden or internal symbols stay
/// inside the module (listed as local), others are exported with their ELF strength.
fn exported_binding(
    strength: Strength,
    binding: SymbolBinding,
    visibility: SymbolVisibility,
) -> (Binding, Visibility) {
    match visibility {
        SymbolVisibility::Hidden => (Binding::Local, Visibility::Hidden),
        SymbolVisibility::Protected | SymbolVisibility::Default => {
            let binding = match (strength, binding) {
                (Strength::Weak, SymbolBinding::Weak) => Binding::Weak,
                _ => Binding::Global,
            };
            let visibility = if visibility == SymbolVisibility::Protected {
                Visibility::Protected
            } else {
                Visibility::Default
            };
            (binding, visibility)
        }
    }
}

fn symbol_entry<'data>(
    name: &'data str,
    kind: SymbolKind,
    binding: Binding,
    visibility: Visibility,
    section: Option<u32>,
    value: u64,
    size: u64,
) -> Symbol<'data> {
    Symbol {
        name,
        kind,
        binding,
        visibility,
        section,
        value,
        size,
        type_id: 0,
        // The module's own version (entry 0 of a version table); `Options::symbol_versions`
        // names others.
        version: 0,
    }
}

fn section_index(indices: &[Option<u32>], kind: OutputKind) -> Option<u32> {
    indices.get(kind.index()).copied().flatten()
}

/// Whether `name` is an Arm mapping symbol (`$x` code, `$d` data, optionally `.suffix`), which
/// marks where instructions and data start for disassemblers; assemblers type those in
/// thread-local sections `STT_TLS`. They name no variable or function.
fn is_mapping_symbol(name: &str) -> bool {
    let base = name.split_once('.').map_or(name, |(base, _)| base);
    matches!(base, "$x" | "$d")
}
