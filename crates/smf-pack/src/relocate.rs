//! Relocations: what they need (GOT slots, call stubs, veneers, imports) and applying them.
//!
//! Everything whose target is inside the module is resolved at pack time by writing into the
//! output bytes. Only absolute 64-bit addresses survive to load time, as
//! [`RelocKind::Relative64`] (module base + addend) or [`RelocKind::Abs64`] (import + addend),
//! and only in RelRo or data sections: code is never written at load time. Calls to imports go
//! through a stub that jumps through a GOT slot, and data of other modules is reached through
//! GOT slots, which are the only load-time writes code depends on.
//!
//! What each relocation type means comes from the object's architecture table
//! (`crate::arch`): this module only knows the [`Action`]s. S is the target's image offset, A
//! the addend, P the image offset of the relocated field, GOT the GOT base, G a slot's offset
//! from that base and L a call stub's image offset.

use std::collections::HashMap;

use smf_format::{Reloc, RelocKind};

use crate::arch::{Action, PcRelativeLoad, Range, data, encode};
use crate::error::{Error, RelocationError, RelocationProblem};
use crate::input::{InputReloc, Object, SectionClass, SymbolDefinition, TableOrder};
use crate::layout::{Layout, OutputKind};
use crate::resolve::{self, Definition, GlobalId, Globals, SymbolRef};
use crate::tls::Access;

/// What the relocations of the kept sections need beyond the input bytes.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    /// GOT slots, in order; each holds the address of one symbol.
    pub got: Vec<SymbolRef>,
    got_index: HashMap<SymbolRef, u32>,
    /// Globals that are imports called from code, one stub each, in order.
    pub stubs: Vec<GlobalId>,
    stub_index: HashMap<GlobalId, u32>,
    /// Globals that became imports, in import-index order.
    pub imports: Vec<GlobalId>,
    /// Thread-local GOT entries, placed after the GOT slots.
    pub tls: crate::tls::TlsNeeds,
    /// Indirect functions (object, symbol of the definition), one stub and slot each, after
    /// the import stubs and the GOT slots (see `crate::ifunc`).
    pub ifuncs: Vec<(usize, usize)>,
    ifunc_index: HashMap<(usize, usize), u32>,
}

impl Needs {
    pub fn got_slot(&self, target: SymbolRef) -> Option<u32> {
        self.got_index.get(&target).copied()
    }

    fn stub(&self, global: GlobalId) -> Option<u32> {
        self.stub_index.get(&global).copied()
    }

    fn add_slot(&mut self, target: SymbolRef) {
        if !self.got_index.contains_key(&target) {
            self.got_index.insert(target, self.got.len() as u32);
            self.got.push(target);
        }
    }

    pub(crate) fn add_ifunc(&mut self, definition: (usize, usize)) {
        if !self.ifunc_index.contains_key(&definition) {
            self.ifunc_index
                .insert(definition, self.ifuncs.len() as u32);
            self.ifuncs.push(definition);
        }
    }

    fn add_stub(&mut self, global: GlobalId) {
        if !self.stub_index.contains_key(&global) {
            self.stub_index.insert(global, self.stubs.len() as u32);
            self.stubs.push(global);
        }
        self.add_slot(SymbolRef::Global(global));
    }
}

/// The sections whose relocations are processed: kept, and loaded or constructor tables.
fn relocated_sections<'a, 'data>(
    objects: &'a [Object<'data>],
) -> impl Iterator<Item = (usize, usize, &'a crate::input::InputSection<'data>)> {
    objects.iter().enumerate().flat_map(|(o, object)| {
        object
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.discarded && s.class != SectionClass::Ignored)
            .map(move |(s, section)| (o, s, section))
    })
}

/// Whether a GOTPCRELX load of an in-module symbol can become a direct address computation:
/// `mov foo@GOTPCREL(%rip), %reg` (opcode 0x8b at P-2) is rewritten to
/// `lea foo(%rip), %reg` (0x8d), the relaxation the psABI sanctions for these types. Other
/// instruction forms keep going through the GOT.
fn relaxes(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    object: usize,
    section: usize,
    reloc: &InputReloc,
    target: SymbolRef,
) -> bool {
    let opcode = objects
        .get(object)
        .and_then(|o| o.sections.get(section))
        .and_then(|s| {
            s.data
                .get(usize::try_from(reloc.offset.checked_sub(2)?).ok()?)
        });
    opcode == Some(&0x8b) && resolve::is_in_module(globals, objects, target)
}

/// The PC-relative load that stands in for the 64-bit absolute address `reloc` asks for in
/// read-only code, if its instruction has one (`Arch::pc_relative_load`).
fn pc_relative_load(
    objects: &[Object<'_>],
    object: usize,
    section: usize,
    reloc: &InputReloc,
    through_slot: bool,
) -> Option<PcRelativeLoad> {
    let object = objects.get(object)?;
    let section = object.sections.get(section)?;
    if section.class != SectionClass::Loaded(OutputKind::Code) {
        return None;
    }
    (object.arch.pc_relative_load?)(section.data, reloc.offset, through_slot)
}

/// Finds the imports, GOT slots and stubs the relocations need, before layout.
pub(crate) fn scan(objects: &[Object<'_>], globals: &mut Globals<'_>) -> Result<Needs, Error> {
    let mut needs = Needs::default();
    for (o, s, section) in relocated_sections(objects) {
        let arch = objects[o].arch;
        for reloc in &section.relocs {
            let action = (arch.action)(reloc.r_type);
            if matches!(
                action,
                Action::Nothing
                    | Action::ThreadLocal
                    | Action::ThreadLocalModel(_)
                    | Action::Unsupported
            ) {
                continue;
            }
            let target = resolve::symbol_ref(globals, objects, o, reloc.symbol);
            if let Some(ifunc) = crate::ifunc::definition(objects, globals, target) {
                // Resolved to its stub, an address in the module like any other.
                needs.add_ifunc(ifunc);
            }
            if matches!(
                action,
                Action::TlsGeneralDynamic { .. }
                    | Action::TlsLocalDynamic { .. }
                    | Action::TlsInitialExec { .. }
                    | Action::TlsDescriptor { .. }
                    | Action::DtpOffset(_)
            ) {
                // Thread-locals are the module's own: another module's or a native library's
                // live in blocks this loader cannot address.
                if let SymbolRef::Global(id) = target {
                    if !globals.is_defined(id) {
                        let cx = Context {
                            objects,
                            globals,
                            object: o,
                            section: s,
                            reloc,
                            target,
                        };
                        return Err(cx.error(RelocationProblem::ThreadLocalOutsideModule));
                    }
                }
                match action {
                    Action::TlsGeneralDynamic { .. } => {
                        needs.tls.add(Access::Dynamic, Some(target))
                    }
                    Action::TlsLocalDynamic { .. } => needs.tls.add(Access::Dynamic, None),
                    Action::TlsInitialExec { .. } => {
                        needs.tls.add(Access::InitialExec, Some(target))
                    }
                    Action::TlsDescriptor { .. } => needs.tls.add(Access::Descriptor, Some(target)),
                    _ => {}
                }
                continue;
            }
            let mut import = None;
            if let SymbolRef::Global(id) = target {
                if !globals.is_defined(id) {
                    ensure_import(objects, globals, &mut needs, id, o)?;
                    import = Some(id);
                }
            }
            match action {
                Action::GotPcRelative {
                    relaxable: true, ..
                } if relaxes(objects, globals, o, s, reloc, target) => {}
                Action::GotPcRelative { .. } | Action::GotOffset(_) => needs.add_slot(target),
                Action::Address64
                    if import.is_some()
                        && pc_relative_load(objects, o, s, reloc, true).is_some() =>
                {
                    needs.add_slot(target)
                }
                Action::PcRelative { call: true, .. }
                | Action::PltOffset
                | Action::ImageRelative(_) => {
                    if let Some(id) = import {
                        needs.add_stub(id);
                        globals.note_call(id, o);
                    }
                }
                _ => {}
            }
        }
    }
    crate::ifunc::add_exported(objects, globals, &mut needs);
    globals.decide_import_kinds(objects, &needs.imports)?;
    Ok(needs)
}

fn ensure_import(
    objects: &[Object<'_>],
    globals: &mut Globals<'_>,
    needs: &mut Needs,
    id: GlobalId,
    object: usize,
) -> Result<(), Error> {
    let Some(global) = globals.symbols.get_mut(id) else {
        return Ok(());
    };
    if global.import.is_some() {
        return Ok(());
    }
    if global.visibility != crate::input::SymbolVisibility::Default {
        return Err(Error::Symbol {
            file: objects.get(object).map_or("?", |o| o.name).to_owned(),
            symbol: global.name.to_owned(),
            problem: "has hidden or protected visibility but no input defines it".into(),
        });
    }
    global.import = Some(needs.imports.len() as u32);
    needs.imports.push(id);
    Ok(())
}

/// Where a symbol reference lands once the layout is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'data> {
    /// An image offset (i128 so that S + A - P never overflows).
    Address(i128),
    Import(u32),
    /// An `SHN_ABS` value (and the null symbol).
    Absolute(u64),
    /// Inside a discarded COMDAT member.
    Discarded,
    /// Inside a section the module does not load.
    NotLoaded(&'data str),
}

pub(crate) fn resolve_target<'data>(
    objects: &[Object<'data>],
    globals: &Globals<'_>,
    layout: &Layout,
    target: SymbolRef,
) -> Target<'data> {
    let (object, symbol) = match target {
        SymbolRef::Global(id) => match globals.symbols.get(id) {
            Some(global) => match global.definition {
                Definition::Defined { object, symbol, .. } => (object, symbol),
                Definition::Common { .. } => {
                    return layout
                        .common(id)
                        .map_or(Target::NotLoaded("COMMON"), |a| Target::Address(a.into()));
                }
                Definition::GotBase => return Target::Address(layout.got_address().into()),
                Definition::TlsModuleBase => {
                    return Target::Address(layout.output(OutputKind::Tls).vaddr.into());
                }
                Definition::DsoHandle => {
                    return layout
                        .dso_handle()
                        .map_or(Target::NotLoaded(".data"), |a| Target::Address(a.into()));
                }
                Definition::SectionStart | Definition::SectionStop => {
                    let stop = global.definition == Definition::SectionStop;
                    return resolve::section_bound(global.name)
                        .and_then(|(section, _)| layout.section_bounds(section))
                        .map_or(Target::NotLoaded("?"), |(start, end)| {
                            Target::Address(if stop { end } else { start }.into())
                        });
                }
                Definition::None => {
                    return global.import.map_or(Target::Absolute(0), Target::Import);
                }
            },
            None => return Target::Absolute(0),
        },
        SymbolRef::Local { object, symbol } => (object, symbol),
    };
    let Some(o) = objects.get(object) else {
        return Target::Absolute(0);
    };
    let Some(s) = o.symbols.get(symbol) else {
        return Target::Absolute(0);
    };
    if let Some(stub) = layout.ifunc_stub(object, symbol) {
        // An indirect function's address is its stub (`crate::ifunc`); its value is the
        // resolver's, which only the `irelative` relocation of its slot names.
        return Target::Address(stub.into());
    }
    match s.definition {
        SymbolDefinition::Section(index) => {
            let Some(section) = o.sections.get(index) else {
                return Target::NotLoaded("?");
            };
            if section.discarded {
                return Target::Discarded;
            }
            match layout.section_address(object, index) {
                Some(address) => Target::Address(i128::from(address) + i128::from(s.value)),
                None => Target::NotLoaded(section.name),
            }
        }
        SymbolDefinition::Absolute | SymbolDefinition::Undefined => Target::Absolute(s.value),
        SymbolDefinition::Common { .. } => Target::NotLoaded("COMMON"),
    }
}

/// The size of a symbol, for `R_X86_64_SIZE*`; `None` for imports.
fn symbol_size(objects: &[Object<'_>], globals: &Globals<'_>, target: SymbolRef) -> Option<u64> {
    let (object, symbol) = match target {
        SymbolRef::Global(id) => match globals.symbols.get(id)?.definition {
            Definition::Defined { object, symbol, .. } => (object, symbol),
            Definition::Common { size, .. } => return Some(size),
            Definition::GotBase
            | Definition::TlsModuleBase
            | Definition::SectionStart
            | Definition::SectionStop => return Some(0),
            Definition::DsoHandle => return Some(8),
            Definition::None => return None,
        },
        SymbolRef::Local { object, symbol } => (object, symbol),
    };
    objects.get(object)?.symbols.get(symbol).map(|s| s.size)
}

/// Load-time relocations and everything written while applying relocations.
pub(crate) fn apply(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    needs: &Needs,
    layout: &mut Layout,
) -> Result<Vec<Reloc>, Error> {
    let mut load_relocs = Vec::new();
    for (o, s, section) in relocated_sections(objects) {
        if !matches!(section.class, SectionClass::Loaded(_)) {
            continue;
        }
        let Some((kind, section_address)) = layout.section_placement(o, s) else {
            continue;
        };
        for reloc in &section.relocs {
            let target = resolve::symbol_ref(globals, objects, o, reloc.symbol);
            let context = Context {
                objects,
                globals,
                object: o,
                section: s,
                reloc,
                target,
            };
            apply_one(
                &context,
                kind,
                section_address,
                needs,
                layout,
                &mut load_relocs,
            )?;
        }
    }
    fill_got(objects, globals, needs, layout, &mut load_relocs)?;
    crate::ifunc::fill_slots(objects, needs, layout, &mut load_relocs)?;
    crate::tls::check_static_alignment(&needs.tls, objects, layout)?;
    crate::tls::fill_entries(
        &needs.tls,
        layout,
        |layout, target| match resolve_target(objects, globals, layout, target) {
            Target::Address(address) => crate::tls::dtp_offset(layout, address),
            _ => None,
        },
        &mut load_relocs,
    )?;
    if let Some(address) = layout.dso_handle() {
        // As in a shared object's crtbegin: `void *__dso_handle = &__dso_handle;`.
        let addend = i64::try_from(address)
            .map_err(|_| Error::Layout(format!("__dso_handle at {address:#x} is out of range")))?;
        layout.write(address, &address.to_le_bytes())?;
        load_relocs.push(Reloc {
            offset: address,
            kind: RelocKind::Relative64,
            import: None,
            addend,
        });
    }
    Ok(load_relocs)
}

/// Where a relocation is, for computing it and for messages.
struct Context<'a, 'data> {
    objects: &'a [Object<'data>],
    globals: &'a Globals<'data>,
    object: usize,
    section: usize,
    reloc: &'a InputReloc,
    target: SymbolRef,
}

impl Context<'_, '_> {
    fn error(&self, problem: RelocationProblem) -> Error {
        let object = self.objects.get(self.object);
        let (symbol, imported) = match self.target {
            SymbolRef::Global(id) => self
                .globals
                .symbols
                .get(id)
                .map_or(("?", false), |g| (g.name, g.import.is_some())),
            SymbolRef::Local { symbol, .. } => {
                (object.map_or("?", |o| o.symbol_display_name(symbol)), false)
            }
        };
        Error::from(RelocationError {
            file: object.map_or("?", |o| o.name).to_owned(),
            section: object
                .and_then(|o| o.sections.get(self.section))
                .map_or("?", |s| s.name)
                .to_owned(),
            offset: self.reloc.offset,
            r_type: object.map_or_else(
                || format!("type {}", self.reloc.r_type),
                |o| o.arch.type_name(self.reloc.r_type),
            ),
            symbol: symbol.to_owned(),
            imported,
            problem,
        })
    }
}

fn apply_one(
    cx: &Context<'_, '_>,
    kind: OutputKind,
    section_address: u64,
    needs: &Needs,
    layout: &mut Layout,
    load_relocs: &mut Vec<Reloc>,
) -> Result<(), Error> {
    let reloc = cx.reloc;
    let arch = cx.objects[cx.object].arch;
    let action = (arch.action)(reloc.r_type);
    match action {
        Action::Nothing => return Ok(()),
        Action::ThreadLocalModel(model) => {
            return Err(cx.error(RelocationProblem::ThreadLocalModel { model }));
        }
        Action::ThreadLocal => return Err(cx.error(RelocationProblem::ThreadLocal)),
        Action::Unsupported => return Err(cx.error(RelocationProblem::UnsupportedType)),
        _ => {}
    }
    let section_size = cx
        .objects
        .get(cx.object)
        .and_then(|o| o.sections.get(cx.section))
        .map_or(0, |s| s.size);
    if reloc
        .offset
        .checked_add(action.width())
        .is_none_or(|end| end > section_size)
    {
        return Err(cx.error(RelocationProblem::OutOfBounds { size: section_size }));
    }
    if kind == OutputKind::Bss {
        return Err(cx.error(RelocationProblem::InBss));
    }
    // In range: the section's bytes were placed at `section_address`.
    let place = section_address + reloc.offset;
    let p = i128::from(place);
    let a = i128::from(reloc.addend);
    let got = i128::from(layout.got_address());

    let target = resolve_target(cx.objects, cx.globals, layout, cx.target);
    match target {
        Target::Discarded if kind == OutputKind::EhFrame => {
            // The FDE of a function whose COMDAT copy was dropped. Its fields stay zero: the
            // unwinder (libgcc's classify_object_over_fdes, and `ld -r`'s output) takes a zero
            // pc_begin, before its PC-relative base is added, as a removed link-once function
            // and skips the FDE. GNU ld and lld delete such FDEs instead; zeroing keeps the
            // record layout and every CIE pointer intact.
            let zeros = [0u8; 8];
            let width = usize::try_from(action.width())
                .unwrap_or(0)
                .min(zeros.len());
            return layout.write(place, &zeros[..width]);
        }
        Target::Discarded => return Err(cx.error(RelocationProblem::TargetDiscarded)),
        Target::NotLoaded(section) => {
            return Err(cx.error(RelocationProblem::TargetNotLoaded {
                section: section.to_owned(),
            }));
        }
        _ => {}
    }

    let got_slot = |target: SymbolRef| -> Result<i128, Error> {
        needs
            .got_slot(target)
            .map(|slot| i128::from(layout.got_slot(slot)))
            .ok_or_else(|| cx.error(RelocationProblem::UnsupportedType))
    };
    let (value, field) = match action {
        Action::Address64 => {
            let writable = matches!(kind, OutputKind::RelRo | OutputKind::Data | OutputKind::Tls);
            match target {
                Target::Absolute(v) => (i128::from(v) + a, data(8, Range::Any)),
                Target::Address(_) | Target::Import(_) if !writable => {
                    let through_slot = matches!(target, Target::Import(_));
                    let load =
                        pc_relative_load(cx.objects, cx.object, cx.section, reloc, through_slot);
                    let address = match target {
                        // The slot holds the import's address, without an addend.
                        Target::Import(_) if a == 0 => got_slot(cx.target).ok(),
                        Target::Address(s) => Some(s + a),
                        _ => None,
                    };
                    let (Some(load), Some(address)) = (load, address) else {
                        return Err(cx.error(RelocationProblem::ReadOnlyPlace {
                            kind: kind.section_kind().name(),
                        }));
                    };
                    // The instruction's first byte, in the section placed at the field's
                    // section address.
                    let start = section_address + load.start;
                    let end = i128::from(start) + load.bytes.len() as i128;
                    let mut bytes = load.bytes;
                    let displacement = encode(address - end, data(4, Range::Signed), true, &[0; 4])
                        .map_err(|problem| cx.error(problem))?;
                    bytes[load.displacement..load.displacement + 4]
                        .copy_from_slice(&displacement[..4]);
                    return layout.write(start, &bytes);
                }
                _ if !writable => {
                    return Err(cx.error(RelocationProblem::ReadOnlyPlace {
                        kind: kind.section_kind().name(),
                    }));
                }
                Target::Address(s) => {
                    let addend = i64::try_from(s + a).map_err(|_| {
                        cx.error(RelocationProblem::Overflow {
                            value: s + a,
                            bits: 64,
                            pc_relative: false,
                        })
                    })?;
                    load_relocs.push(Reloc {
                        offset: place,
                        kind: RelocKind::Relative64,
                        import: None,
                        addend,
                    });
                    // The loader overwrites the field; the image offset helps inspection.
                    (s + a, data(8, Range::Any))
                }
                Target::Import(import) => {
                    load_relocs.push(Reloc {
                        offset: place,
                        kind: RelocKind::Abs64,
                        import: Some(import),
                        addend: reloc.addend,
                    });
                    (0, data(8, Range::Any))
                }
                Target::Discarded | Target::NotLoaded(_) => return Ok(()),
            }
        }
        Action::AbsoluteNarrow(f) => match target {
            Target::Absolute(v) => (i128::from(v) + a, f),
            _ => return Err(cx.error(RelocationProblem::NotPositionIndependent)),
        },
        Action::PcRelative {
            field: f,
            form,
            call,
        } => match target {
            Target::Address(s) => {
                let value = form.compute(s + a, p, got);
                if call && !arch.reaches(f, value) {
                    // An in-module function out of the branch's reach: through its veneer.
                    if let Some(veneer) = u64::try_from(s + a)
                        .ok()
                        .and_then(|to| layout.veneer(place, to))
                    {
                        (form.compute(i128::from(veneer), p, got), f)
                    } else {
                        (value, f)
                    }
                } else {
                    (value, f)
                }
            }
            Target::Import(_) if call => {
                let SymbolRef::Global(id) = cx.target else {
                    return Err(cx.error(RelocationProblem::ImportOutOfReach));
                };
                let stub = needs
                    .stub(id)
                    .ok_or_else(|| cx.error(RelocationProblem::ImportOutOfReach))?;
                (form.compute(i128::from(layout.stub(stub)) + a, p, got), f)
            }
            Target::Import(_) => return Err(cx.error(RelocationProblem::ImportOutOfReach)),
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::GotPcRelative {
            field: f,
            form,
            relaxable,
        } => match target {
            Target::Address(s)
                if relaxable
                    && relaxes(
                        cx.objects, cx.globals, cx.object, cx.section, reloc, cx.target,
                    ) =>
            {
                layout.write(place - 2, &[0x8d])?;
                (form.compute(s + a, p, got), f)
            }
            _ => (form.compute(got_slot(cx.target)? + a, p, got), f),
        },
        Action::GotOffset(f) => (got_slot(cx.target)? - got + a, f),
        Action::OffsetFromGot => match target {
            Target::Address(s) => (s + a - got, data(8, Range::Any)),
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::GotFromPc(f) => (got + a - p, f),
        Action::PltOffset => {
            let l = match (target, cx.target) {
                (Target::Address(s), _) => s,
                (Target::Import(_), SymbolRef::Global(id)) => match needs.stub(id) {
                    Some(stub) => i128::from(layout.stub(stub)),
                    None => return Err(cx.error(RelocationProblem::ImportOutOfReach)),
                },
                _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
            };
            (l - got + a, data(8, Range::Any))
        }
        Action::ImageRelative(f) => match (target, cx.target) {
            (Target::Address(s), _) => (s + a, f),
            // An RVA must lie in the image: an imported handler's is its call stub's.
            (Target::Import(_), SymbolRef::Global(id)) => match needs.stub(id) {
                Some(stub) => (i128::from(layout.stub(stub)) + a, f),
                None => return Err(cx.error(RelocationProblem::ImportOutOfReach)),
            },
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::SectionRelative(f) => match target {
            Target::Address(s) => {
                let start = u64::try_from(s)
                    .ok()
                    .and_then(|s| layout.output_at(s))
                    .map(|o| o.vaddr)
                    .ok_or_else(|| cx.error(RelocationProblem::NeedsDefinedSymbol))?;
                (s + a - i128::from(start), f)
            }
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::SectionIndex(f) => match target {
            Target::Address(s) => {
                let index = u64::try_from(s)
                    .ok()
                    .and_then(|s| layout.section_index_at(s))
                    .ok_or_else(|| cx.error(RelocationProblem::NeedsDefinedSymbol))?;
                (i128::from(index) + a, f)
            }
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::Size(f) => match symbol_size(cx.objects, cx.globals, cx.target) {
            Some(size) if !matches!(target, Target::Import(_)) => (i128::from(size) + a, f),
            _ => return Err(cx.error(RelocationProblem::NeedsDefinedSymbol)),
        },
        Action::TlsGeneralDynamic { field: f, form }
        | Action::TlsLocalDynamic { field: f, form }
        | Action::TlsInitialExec { field: f, form }
        | Action::TlsDescriptor { field: f, form } => {
            let (access, variable) = match action {
                Action::TlsLocalDynamic { .. } => (Access::Dynamic, None),
                Action::TlsGeneralDynamic { .. } => (Access::Dynamic, Some(cx.target)),
                Action::TlsInitialExec { .. } => (Access::InitialExec, Some(cx.target)),
                _ => (Access::Descriptor, Some(cx.target)),
            };
            if variable.is_some() {
                tls_offset(layout, target).map_err(|problem| cx.error(problem))?;
            }
            let entry = needs
                .tls
                .entry(access, variable)
                .ok_or_else(|| cx.error(RelocationProblem::UnsupportedType))?;
            (
                form.compute(i128::from(layout.tls_entry(entry)) + a, p, got),
                f,
            )
        }
        Action::DtpOffset(f) => (
            tls_offset(layout, target).map_err(|problem| cx.error(problem))? + a,
            f,
        ),
        Action::Nothing
        | Action::ThreadLocalModel(_)
        | Action::ThreadLocal
        | Action::Unsupported => return Ok(()),
    };
    let pc_relative = match action {
        Action::PcRelative { form, .. }
        | Action::GotPcRelative { form, .. }
        | Action::TlsGeneralDynamic { form, .. }
        | Action::TlsLocalDynamic { form, .. }
        | Action::TlsInitialExec { form, .. }
        | Action::TlsDescriptor { form, .. } => form.is_pc_relative(),
        Action::GotFromPc(_) => true,
        _ => false,
    };
    let width = usize::from(field.bytes());
    let old = layout.read(place, width).unwrap_or_default();
    let bytes = encode(value, field, pc_relative, &old).map_err(|problem| cx.error(problem))?;
    layout.write(place, &bytes[..width])
}

/// The DTP offset of a relocation's target, which must be a thread-local of the module.
fn tls_offset(layout: &Layout, target: Target<'_>) -> Result<i128, RelocationProblem> {
    match target {
        Target::Address(address) => {
            crate::tls::dtp_offset(layout, address).ok_or(RelocationProblem::NotThreadLocal)
        }
        _ => Err(RelocationProblem::NotThreadLocal),
    }
}

/// Writes each GOT slot: in-module addresses get a Relative64, imports an Abs64 (weak ones
/// included: the loader stores 0 for an unresolved weak import).
fn fill_got(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    needs: &Needs,
    layout: &mut Layout,
    load_relocs: &mut Vec<Reloc>,
) -> Result<(), Error> {
    for (slot, target) in needs.got.iter().enumerate() {
        let address = layout.got_slot(slot as u32);
        match resolve_target(objects, globals, layout, *target) {
            Target::Address(s) => {
                let addend = i64::try_from(s).map_err(|_| {
                    Error::Layout(format!("GOT slot {slot} target {s:#x} is out of range"))
                })?;
                layout.write(address, &addend.to_le_bytes())?;
                load_relocs.push(Reloc {
                    offset: address,
                    kind: RelocKind::Relative64,
                    import: None,
                    addend,
                });
            }
            Target::Import(import) => {
                load_relocs.push(Reloc {
                    offset: address,
                    kind: RelocKind::Abs64,
                    import: Some(import),
                    addend: 0,
                });
            }
            Target::Absolute(value) => layout.write(address, &value.to_le_bytes())?,
            // Only reachable from a tombstoned .eh_frame field; the slot stays zero.
            Target::Discarded | Target::NotLoaded(_) => {}
        }
    }
    Ok(())
}

/// The module's lists of functions the loader calls, as image offsets in the order they run.
#[derive(Debug, Default)]
pub(crate) struct FunctionTables {
    pub init: Vec<u64>,
    pub fini: Vec<u64>,
    pub tls_callbacks: Vec<u64>,
}

/// Reads the constructor, destructor and TLS callback tables: each 8-byte slot is an
/// absolute address (`R_X86_64_64`, `R_AARCH64_ABS64`, COFF's `ADDR64`) of a function of the
/// module. Returns them in the order they must run.
pub(crate) fn constructors(
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    layout: &Layout,
) -> Result<FunctionTables, Error> {
    let mut init: Vec<(TableOrder, u64)> = Vec::new();
    let mut fini: Vec<(TableOrder, u64)> = Vec::new();
    let mut tls_callbacks: Vec<(TableOrder, u64)> = Vec::new();
    for (o, s, section) in relocated_sections(objects) {
        let (list, order) = match (section.class, section.tls_callbacks) {
            (_, Some(order)) => (&mut tls_callbacks, order),
            (SectionClass::Init(order), _) => (&mut init, order),
            (SectionClass::Fini(order), _) => (&mut fini, order),
            _ => continue,
        };
        let object = &objects[o];
        let arch = object.arch;
        let table_error = |problem: String| Error::UnsupportedSection {
            file: object.name.to_owned(),
            section: section.name.to_owned(),
            problem,
        };
        // The data length was checked against the file, so `slots` is bounded by its size.
        if section.size % 8 != 0 || section.data.len() as u64 != section.size {
            return Err(table_error(format!(
                "size {:#x} is not a whole number of 8-byte entries in the file",
                section.size
            )));
        }
        let mut slots: Vec<Option<u64>> = vec![None; section.data.len() / 8];
        for reloc in &section.relocs {
            if reloc.r_type == arch.none {
                continue;
            }
            let slot = usize::try_from(reloc.offset / 8)
                .ok()
                .filter(|_| reloc.offset % 8 == 0 && reloc.r_type == arch.abs64)
                .and_then(|index| slots.get_mut(index))
                .filter(|slot| slot.is_none());
            let Some(slot) = slot else {
                return Err(table_error(format!(
                    "entry at +{:#x} is not a single {} relocation ({})",
                    reloc.offset,
                    arch.type_name(arch.abs64),
                    arch.type_name(reloc.r_type)
                )));
            };
            let target = resolve::symbol_ref(globals, objects, o, reloc.symbol);
            let cx = Context {
                objects,
                globals,
                object: o,
                section: s,
                reloc,
                target,
            };
            let address = match resolve_target(objects, globals, layout, target) {
                Target::Address(address) => u64::try_from(address + i128::from(reloc.addend)).ok(),
                _ => None,
            };
            match address {
                Some(address) if layout.output(OutputKind::Code).contains(address) => {
                    *slot = Some(address)
                }
                _ => return Err(cx.error(RelocationProblem::NotCode)),
            }
        }
        for (index, slot) in slots.into_iter().enumerate() {
            match slot {
                Some(address) => list.push((order, address)),
                None if order.skip_null
                    && section.data.get(index * 8..index * 8 + 8) == Some(&[0; 8][..]) => {}
                None => {
                    return Err(table_error(format!(
                        "entry {index} has no relocation to a function"
                    )));
                }
            }
        }
    }
    Ok(FunctionTables {
        init: running_order(init),
        fini: running_order(fini),
        tls_callbacks: running_order(tls_callbacks),
    })
}

/// The entries of constructor or destructor tables in the order they run (see
/// [`TableOrder`]): sorted by group and key, each backwards group reversed. ELF's
/// `.fini_array` is one backwards group, as the ELF runtime walks it from its end; COFF's
/// `.ctors` list is one, after the `.CRT$XI*` and `.CRT$XC*` groups.
fn running_order(mut entries: Vec<(TableOrder, u64)>) -> Vec<u64> {
    // Stable: equal keys keep input order.
    entries.sort_by_key(|(order, _)| (order.group, order.key));
    let mut ordered = Vec::with_capacity(entries.len());
    for group in entries.chunk_by(|(a, _), (b, _)| a.group == b.group) {
        if group.first().is_some_and(|(order, _)| order.backwards) {
            ordered.extend(group.iter().rev().map(|(_, address)| *address));
        } else {
            ordered.extend(group.iter().map(|(_, address)| *address));
        }
    }
    ordered
}
