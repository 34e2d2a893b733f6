//! Symbol resolution across objects: COMDAT group selection and the global symbol table.
//!
//! The rules are those of a static ELF linker: a strong definition beats a common symbol,
//! which beats a weak definition; two strong definitions are an error; common symbols merge
//! to the largest size and alignment; the most restrictive visibility of all mentions wins.
//! Whatever no object defines becomes an import (see `relocate::scan`).

use std::collections::{HashMap, HashSet};

use smf_format::ImportKind;

use crate::error::Error;
use crate::input::{
    ComdatSelection, Object, SectionClass, SymbolBinding, SymbolDefinition, SymbolType,
    SymbolVisibility,
};

/// Index into [`Globals::symbols`].
pub(crate) type GlobalId = usize;

/// What a relocation's symbol resolves to: a name in the global table, or a symbol local to
/// one object (a static, a section symbol, a `.L` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SymbolRef {
    Global(GlobalId),
    Local { object: usize, symbol: usize },
}

/// Strength of a definition, in the order in which they override each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Strength {
    Weak,
    Common,
    Strong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Definition {
    None,
    /// A symbol of an object, defined in a section or absolute.
    Defined {
        object: usize,
        symbol: usize,
        strength: Strength,
    },
    /// Merged common symbols; `object`/`symbol` is the first mention, for the symbol table.
    Common {
        object: usize,
        symbol: usize,
        size: u64,
        align: u64,
    },
    /// `_GLOBAL_OFFSET_TABLE_`, provided by the packer.
    GotBase,
    /// `__dso_handle`, provided by the packer for C++ `__cxa_atexit`.
    DsoHandle,
    /// `_TLS_MODULE_BASE_`, the start of the module's thread-local block, which
    /// local-dynamic TLS descriptors name (see `crate::tls`).
    TlsModuleBase,
    /// `__start_NAME`: the first byte of the input sections named `NAME`, which the layout
    /// places back to back (see [`section_bound`]).
    SectionStart,
    /// `__stop_NAME`: the byte after the last of them.
    SectionStop,
}

#[derive(Debug)]
pub(crate) struct Global<'data> {
    pub name: &'data str,
    pub definition: Definition,
    /// The most restrictive visibility over every mention.
    pub visibility: SymbolVisibility,
    /// Whether some undefined mention is not weak (the import must then resolve).
    pub strong_reference: bool,
    /// The import kind, decided by [`Globals::decide_import_kinds`] from the clues below.
    pub import_kind: ImportKind,
    /// The first object that shows the symbol is a function, and how (a call wins over a
    /// declaration, for messages).
    pub function_clue: Option<(usize, FunctionClue)>,
    /// The first object whose undefined mention is typed `STT_OBJECT`.
    pub data_clue: Option<usize>,
    /// The import index, once a relocation needs it as one.
    pub import: Option<u32>,
}

/// How an object shows that a symbol it does not define is a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FunctionClue {
    /// Its undefined mention is typed `STT_FUNC`.
    Declared,
    /// It calls the symbol: a relocation names its PLT entry, which only functions have.
    Called,
}

#[derive(Debug, Default)]
pub(crate) struct Globals<'data> {
    pub symbols: Vec<Global<'data>>,
    by_name: HashMap<&'data str, GlobalId>,
}

pub(crate) const GOT_SYMBOL: &str = "_GLOBAL_OFFSET_TABLE_";
pub(crate) const DSO_HANDLE: &str = "__dso_handle";
pub(crate) const TLS_MODULE_BASE: &str = "_TLS_MODULE_BASE_";

/// The section a `__start_NAME` or `__stop_NAME` symbol bounds, and whether it is the stop.
/// GNU ld defines these for sections whose names are C identifiers (so that C code can
/// name the symbols), and only those.
pub(crate) fn section_bound(symbol: &str) -> Option<(&str, bool)> {
    let (section, stop) = match symbol.strip_prefix("__start_") {
        Some(section) => (section, false),
        None => (symbol.strip_prefix("__stop_")?, true),
    };
    is_c_identifier(section).then_some((section, stop))
}

fn is_c_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The size and bytes of the first member of group `g` of object `o`.
fn first_member<'data>(
    objects: &[Object<'data>],
    (o, g): (usize, usize),
) -> Option<(u64, &'data [u8])> {
    let object = &objects[o];
    let first = object.comdat_groups[g].members.first();
    first
        .and_then(|&s| object.sections.get(s))
        .map(|s| (s.size, s.data))
}

/// Keeps one COMDAT group of each signature and marks the sections of the others as
/// discarded: they are copies (C++ inline functions, vtables, template instances). The copy
/// kept is the first, except for COFF's `Largest` selection; COFF's other selections make a
/// copy that differs from the kept one (or any copy, for `NoDuplicates`) an error.
pub(crate) fn select_comdat_groups(objects: &mut [Object<'_>]) -> Result<(), Error> {
    // The kept copy of each signature: (object, group index).
    let mut kept: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut discard: Vec<(usize, usize)> = Vec::new();
    for o in 0..objects.len() {
        for g in 0..objects[o].comdat_groups.len() {
            let group = &objects[o].comdat_groups[g];
            let Some(&first) = kept.get(group.signature) else {
                kept.insert(group.signature, (o, g));
                continue;
            };
            let duplicate = |problem: &str| Error::Comdat {
                symbol: group.signature.to_owned(),
                first: objects[first.0].name.to_owned(),
                second: objects[o].name.to_owned(),
                problem: problem.to_owned(),
            };
            let (old, new) = (first_member(objects, first), first_member(objects, (o, g)));
            match group.selection {
                ComdatSelection::Any => discard.push((o, g)),
                ComdatSelection::NoDuplicates => {
                    return Err(duplicate(
                        "is defined in both (IMAGE_COMDAT_SELECT_NODUPLICATES)",
                    ));
                }
                ComdatSelection::SameSize if old.map(|s| s.0) != new.map(|s| s.0) => {
                    return Err(duplicate(
                        "has copies of different sizes (IMAGE_COMDAT_SELECT_SAME_SIZE)",
                    ));
                }
                ComdatSelection::ExactMatch if old != new => {
                    return Err(duplicate(
                        "has copies with different contents (IMAGE_COMDAT_SELECT_EXACT_MATCH)",
                    ));
                }
                ComdatSelection::Largest if new.map(|s| s.0) > old.map(|s| s.0) => {
                    kept.insert(group.signature, (o, g));
                    discard.push(first);
                }
                _ => discard.push((o, g)),
            }
        }
    }
    for (o, g) in discard {
        let members = objects[o].comdat_groups[g].members.clone();
        for index in members {
            if let Some(section) = objects[o].sections.get_mut(index) {
                section.discarded = true;
            }
        }
    }
    Ok(())
}

impl<'data> Globals<'data> {
    /// Builds the global symbol table from every non-local symbol of every object.
    pub fn build(objects: &[Object<'data>]) -> Result<Globals<'data>, Error> {
        let mut globals = Globals::default();
        for (object_index, object) in objects.iter().enumerate() {
            for (symbol_index, symbol) in object.symbols.iter().enumerate().skip(1) {
                if symbol.binding == SymbolBinding::Local {
                    continue;
                }
                let id = globals.intern(symbol.name);
                let global = &mut globals.symbols[id];
                global.visibility = global.visibility.max(symbol.visibility);

                // A definition inside a discarded COMDAT member does not count: the kept copy
                // of the group provides the symbol.
                let definition = match symbol.definition {
                    SymbolDefinition::Section(section)
                        if object.sections.get(section).is_some_and(|s| s.discarded) =>
                    {
                        continue;
                    }
                    definition => definition,
                };
                let strength = match symbol.binding {
                    SymbolBinding::Global => Strength::Strong,
                    _ => Strength::Weak,
                };
                match definition {
                    SymbolDefinition::Undefined => {
                        if symbol.binding != SymbolBinding::Weak {
                            global.strong_reference = true;
                        }
                        match symbol.kind {
                            SymbolType::Function => {
                                global
                                    .function_clue
                                    .get_or_insert((object_index, FunctionClue::Declared));
                            }
                            SymbolType::Object => {
                                global.data_clue.get_or_insert(object_index);
                            }
                            // Untyped (what C compilers emit for every undeclared-type
                            // extern) says nothing; a thread-local cannot be imported anyway.
                            _ => {}
                        }
                    }
                    SymbolDefinition::Common { align } => match global.definition {
                        Definition::Common {
                            size: old_size,
                            align: old_align,
                            object,
                            symbol: first,
                        } => {
                            global.definition = Definition::Common {
                                object,
                                symbol: first,
                                size: old_size.max(symbol.size),
                                align: old_align.max(align),
                            };
                        }
                        Definition::Defined {
                            strength: Strength::Strong,
                            ..
                        } => {}
                        _ => {
                            global.definition = Definition::Common {
                                object: object_index,
                                symbol: symbol_index,
                                size: symbol.size,
                                align,
                            };
                        }
                    },
                    SymbolDefinition::Section(_) | SymbolDefinition::Absolute => {
                        let new = Definition::Defined {
                            object: object_index,
                            symbol: symbol_index,
                            strength,
                        };
                        match global.definition {
                            // As GNU ld: an absolute symbol defined again with the same
                            // value is harmless. mingw-w64's gcc gives every weak reference
                            // without a default an absolute `.weak.NAME.SUFFIX` of value 0,
                            // and two objects can get the same SUFFIX (the first global
                            // symbol of each, an inline function both define).
                            Definition::Defined {
                                strength: Strength::Strong,
                                object: first,
                                symbol: first_symbol,
                            } if strength == Strength::Strong
                                && symbol.definition == SymbolDefinition::Absolute
                                && objects[first].symbols.get(first_symbol).is_some_and(|s| {
                                    s.definition == SymbolDefinition::Absolute
                                        && s.value == symbol.value
                                }) => {}
                            Definition::Defined {
                                strength: Strength::Strong,
                                object: first,
                                ..
                            } if strength == Strength::Strong => {
                                return Err(Error::DuplicateSymbol {
                                    symbol: symbol.name.to_owned(),
                                    first: objects[first].name.to_owned(),
                                    second: object.name.to_owned(),
                                });
                            }
                            Definition::None => global.definition = new,
                            Definition::Defined { strength: old, .. } if old < strength => {
                                global.definition = new
                            }
                            Definition::Common { .. } if strength == Strength::Strong => {
                                global.definition = new
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        // Sections some `__start_`/`__stop_` symbol may bound: loaded and kept ones.
        let loaded_names: HashSet<&str> = objects
            .iter()
            .flat_map(|o| &o.sections)
            .filter(|s| !s.discarded && matches!(s.class, SectionClass::Loaded(_)))
            .map(|s| s.name)
            .collect();
        // Names the packer itself provides when the objects ask for them and define none.
        for global in &mut globals.symbols {
            if global.definition == Definition::None {
                if global.name == GOT_SYMBOL {
                    global.definition = Definition::GotBase;
                } else if global.name == DSO_HANDLE {
                    global.definition = Definition::DsoHandle;
                } else if global.name == TLS_MODULE_BASE {
                    global.definition = Definition::TlsModuleBase;
                } else if let Some((_, stop)) =
                    section_bound(global.name).filter(|(section, _)| loaded_names.contains(section))
                {
                    // Like ld, only when a section of that name exists: otherwise the name
                    // stays undefined (an import, reported as undefined).
                    global.definition = if stop {
                        Definition::SectionStop
                    } else {
                        Definition::SectionStart
                    };
                }
            }
        }
        Ok(globals)
    }

    fn intern(&mut self, name: &'data str) -> GlobalId {
        *self.by_name.entry(name).or_insert_with(|| {
            self.symbols.push(Global {
                name,
                definition: Definition::None,
                visibility: SymbolVisibility::Default,
                strong_reference: false,
                import_kind: ImportKind::Any,
                function_clue: None,
                data_clue: None,
                import: None,
            });
            self.symbols.len() - 1
        })
    }

    /// Records that `object` calls global `id`.
    pub fn note_call(&mut self, id: GlobalId, object: usize) {
        if let Some(global) = self.symbols.get_mut(id) {
            if !matches!(global.function_clue, Some((_, FunctionClue::Called))) {
                global.function_clue = Some((object, FunctionClue::Called));
            }
        }
    }

    /// Gives each of `imports` the kind its clues say: `func` if an object calls it or
    /// types it `STT_FUNC` (taking a function's address as well is fine), `data` if one
    /// types it `STT_OBJECT`, `any` if nothing says. A symbol that one object calls or
    /// declares a function and another declares a data object is refused: a loader would
    /// bind it to whichever the process has, and one of the objects would be wrong.
    pub fn decide_import_kinds(
        &mut self,
        objects: &[Object<'_>],
        imports: &[GlobalId],
    ) -> Result<(), Error> {
        let name = |object: usize| objects.get(object).map_or("?", |o| o.name).to_owned();
        for &id in imports {
            let Some(global) = self.symbols.get_mut(id) else {
                continue;
            };
            global.import_kind = match (global.function_clue, global.data_clue) {
                (Some((function, clue)), Some(data)) => {
                    return Err(Error::ImportKindConflict {
                        symbol: global.name.to_owned(),
                        data_object: name(data),
                        function_object: name(function),
                        called: clue == FunctionClue::Called,
                    });
                }
                (Some(_), None) => ImportKind::Function,
                (None, Some(_)) => ImportKind::Data,
                (None, None) => ImportKind::Any,
            };
        }
        Ok(())
    }

    /// The names of the sections some `__start_`/`__stop_` symbol bounds: the layout keeps
    /// each one's input sections together.
    pub fn bounded_sections(&self) -> HashSet<&'data str> {
        self.symbols
            .iter()
            .filter(|g| {
                matches!(
                    g.definition,
                    Definition::SectionStart | Definition::SectionStop
                )
            })
            .filter_map(|g| section_bound(g.name).map(|(section, _)| section))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<GlobalId> {
        self.by_name.get(name).copied()
    }

    /// Whether the global is defined by the module (by an object or by the packer).
    pub fn is_defined(&self, id: GlobalId) -> bool {
        self.symbols
            .get(id)
            .is_some_and(|g| g.definition != Definition::None)
    }
}

/// The symbol a relocation of `object` refers to.
pub(crate) fn symbol_ref(
    globals: &Globals<'_>,
    objects: &[Object<'_>],
    object: usize,
    symbol: usize,
) -> SymbolRef {
    let local = SymbolRef::Local { object, symbol };
    let Some(input) = objects.get(object).and_then(|o| o.symbols.get(symbol)) else {
        return local;
    };
    if input.binding == SymbolBinding::Local {
        return local;
    }
    globals.get(input.name).map_or(local, SymbolRef::Global)
}

/// Whether a symbol reference lands inside the module (as opposed to an import or an
/// absolute value), judged before layout: used to decide relaxations and GOT slots.
pub(crate) fn is_in_module(
    globals: &Globals<'_>,
    objects: &[Object<'_>],
    target: SymbolRef,
) -> bool {
    let (object, symbol) = match target {
        SymbolRef::Global(id) => match globals.symbols.get(id).map(|g| g.definition) {
            Some(Definition::Defined { object, symbol, .. }) => (object, symbol),
            Some(
                Definition::Common { .. }
                | Definition::GotBase
                | Definition::DsoHandle
                | Definition::TlsModuleBase
                | Definition::SectionStart
                | Definition::SectionStop,
            ) => {
                return true;
            }
            _ => return false,
        },
        SymbolRef::Local { object, symbol } => (object, symbol),
    };
    let Some(o) = objects.get(object) else {
        return false;
    };
    match o.symbols.get(symbol).map(|s| s.definition) {
        Some(SymbolDefinition::Section(section)) => o
            .sections
            .get(section)
            .is_some_and(|s| !s.discarded && matches!(s.class, SectionClass::Loaded(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::section_bound;

    #[test]
    fn start_and_stop_symbols_bound_c_identifier_sections_only() {
        assert_eq!(section_bound("__start_my_items"), Some(("my_items", false)));
        assert_eq!(section_bound("__stop_my_items"), Some(("my_items", true)));
        assert_eq!(section_bound("__start__x9"), Some(("_x9", false)));
        // ld defines none for names C code could not spell.
        assert_eq!(section_bound("__start_.data"), None);
        assert_eq!(section_bound("__stop_9lives"), None);
        assert_eq!(section_bound("__start_"), None);
        assert_eq!(section_bound("__begin_items"), None);
    }
}
