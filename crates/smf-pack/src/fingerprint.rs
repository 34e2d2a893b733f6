//! Fingerprints of exported functions (`docs/FORMAT.md`, *Function fingerprints*): a hash of a
//! function as the compiler left it — its bytes before relocation and its relocations, each
//! naming its target by name rather than by address — so that two versions of a module say
//! whether a function may behave differently without a loader reading either's code. A
//! function that only moved, or whose callees or data moved, keeps its fingerprint.

use smf_format::{Symbol, SymbolKind};

use crate::input::{Object, SymbolDefinition, SymbolType};
use crate::resolve::{self, Definition, Globals, SymbolRef};

/// The key BLAKE3 derives the fingerprint hash from: a new meaning gets a new context.
const CONTEXT: &str = "SMF v1 function fingerprint";

/// (symbol index, fingerprint) of every exported function of `symbols` (the module's symbol
/// table, in order, each with the object and the object's symbol it is) whose code is one
/// range of one input section. Indirect functions are left out: their symbol is a stub the
/// packer makes.
pub(crate) fn exported(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    symbols: &[(Symbol<'_>, Option<(usize, usize)>)],
) -> Vec<(u32, u64)> {
    symbols
        .iter()
        .enumerate()
        .filter(|(_, (symbol, _))| symbol.kind == SymbolKind::Function && symbol.is_exported())
        .filter_map(|(index, (_, source))| {
            let (object, symbol) = (*source)?;
            let fingerprint = function(objects, globals, object, symbol)?;
            Some((u32::try_from(index).ok()?, fingerprint))
        })
        .collect()
}

/// The fingerprint of function symbol `symbol` of object `object`.
fn function(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    object: usize,
    symbol: usize,
) -> Option<u64> {
    let o = objects.get(object)?;
    let s = o.symbols.get(symbol)?;
    if s.kind == SymbolType::Ifunc {
        return None;
    }
    let SymbolDefinition::Section(index) = s.definition else {
        return None;
    };
    let section = o.sections.get(index)?;
    let start = usize::try_from(s.value).ok()?;
    let end = start.checked_add(usize::try_from(s.size).ok()?)?;
    let code = section.data.get(start..end)?;
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hash_str(&mut hasher, o.arch.name);
    hasher.update(&(code.len() as u64).to_le_bytes());
    hasher.update(code);
    for reloc in section
        .relocs
        .iter()
        .filter(|r| (s.value..s.value + s.size).contains(&r.offset))
    {
        hasher.update(&(reloc.offset - s.value).to_le_bytes());
        hasher.update(&reloc.r_type.to_le_bytes());
        hasher.update(&reloc.addend.to_le_bytes());
        let (tag, name, value) = target(objects, globals, object, reloc.symbol);
        hasher.update(&[tag]);
        hash_str(&mut hasher, name);
        hasher.update(&value.to_le_bytes());
    }
    let hash = hasher.finalize();
    let first: [u8; 8] = hash.as_bytes()[..8].try_into().ok()?;
    Some(u64::from_le_bytes(first))
}

fn hash_str(hasher: &mut blake3::Hasher, s: &str) {
    hasher.update(&(s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

/// What a relocation of `object` naming its symbol `symbol` refers to, by name: a tag, a
/// name and a value (`docs/FORMAT.md`, *Function fingerprints*).
fn target<'data>(
    objects: &[Object<'data>],
    globals: &Globals<'data>,
    object: usize,
    symbol: usize,
) -> (u8, &'data str, u64) {
    match resolve::symbol_ref(globals, objects, object, symbol) {
        SymbolRef::Global(id) => {
            let Some(global) = globals.symbols.get(id) else {
                return (b'?', "", 0);
            };
            match global.definition {
                Definition::None if global.import.is_some() => (b'i', global.name, 0),
                Definition::None => (b'u', global.name, 0),
                // A constant: its value is what the code uses.
                Definition::Defined { object, symbol, .. } => {
                    match objects.get(object).and_then(|o| o.symbols.get(symbol)) {
                        Some(s) if s.definition == SymbolDefinition::Absolute => {
                            (b'a', global.name, s.value)
                        }
                        _ => (b'g', global.name, 0),
                    }
                }
                _ => (b'g', global.name, 0),
            }
        }
        SymbolRef::Local { object, symbol } => {
            let Some(o) = objects.get(object) else {
                return (b'?', "", 0);
            };
            let Some(s) = o.symbols.get(symbol) else {
                return (b'?', "", 0);
            };
            match (s.kind, s.definition) {
                (SymbolType::Section, _) => (b's', o.symbol_display_name(symbol), 0),
                (_, SymbolDefinition::Absolute) => (b'a', s.name, s.value),
                _ => (b'l', s.name, 0),
            }
        }
    }
}
