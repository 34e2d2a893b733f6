//! Output sections: which input sections go where, at which image offset.
//!
//! Each output kind gathers its input sections in input order, each at its own alignment,
//! followed by what the packer synthesises for that kind (import call stubs after the code,
//! the `.eh_frame` terminator, the GOT at the end of RelRo, `__dso_handle` in data, common
//! symbols in bss). Data is the exception: its pieces holding absolute pointers (which become
//! load-time relocations) come first, the others after them, so that the loader writes as few
//! pages as possible (each page written at load time is a private copy of a file page; RelRo
//! holds nothing but such pointers). Non-empty output sections are then placed on their own
//! pages in the order of [`OutputKind::ALL`], so that every kind gets its own protection.

use std::collections::HashMap;

use smf_format::{ImageLayout, SectionKind};

use crate::arch::{Action, Arch, STUB_SIZE};
use crate::error::Error;
use crate::input::{Legacy, Object, SectionClass, SymbolDefinition};
use crate::relocate::Needs;
use crate::resolve::{Definition, GlobalId, Globals};

/// The loaded sections of a module, in image order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OutputKind {
    Code,
    RoData,
    EhFrame,
    RelRo,
    Data,
    Bss,
    /// The thread-local template: `.tdata` pieces, then `.tbss` pieces (see `crate::tls`).
    Tls,
    /// The Windows x64 function table: COFF `.pdata` pieces, sorted by function once
    /// relocated (see [`Layout::sort_function_table`]).
    Pdata,
}

impl OutputKind {
    pub const ALL: [OutputKind; 8] = [
        OutputKind::Code,
        OutputKind::RoData,
        OutputKind::EhFrame,
        OutputKind::RelRo,
        OutputKind::Data,
        OutputKind::Bss,
        OutputKind::Tls,
        OutputKind::Pdata,
    ];

    pub fn section_kind(self) -> SectionKind {
        match self {
            OutputKind::Code => SectionKind::Code,
            OutputKind::RoData => SectionKind::RoData,
            OutputKind::EhFrame => SectionKind::EhFrame,
            OutputKind::RelRo => SectionKind::RelRo,
            OutputKind::Data => SectionKind::Data,
            OutputKind::Bss => SectionKind::Bss,
            OutputKind::Tls => SectionKind::Tls,
            OutputKind::Pdata => SectionKind::Pdata,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Code => ".text",
            OutputKind::RoData => ".rodata",
            OutputKind::EhFrame => ".eh_frame",
            OutputKind::RelRo => ".data.rel.ro",
            OutputKind::Data => ".data",
            OutputKind::Bss => ".bss",
            OutputKind::Tls => ".tls",
            OutputKind::Pdata => ".pdata",
        }
    }

    /// Position in [`OutputKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            OutputKind::Code => 0,
            OutputKind::RoData => 1,
            OutputKind::EhFrame => 2,
            OutputKind::RelRo => 3,
            OutputKind::Data => 4,
            OutputKind::Bss => 5,
            OutputKind::Tls => 6,
            OutputKind::Pdata => 7,
        }
    }
}

/// Size of one GOT slot.
pub(crate) const GOT_SLOT_SIZE: u64 = 8;

/// Fills `bytes` with copies of `pattern` (an instruction), starting at a multiple of its
/// size in the section: `start` is the offset of `bytes` in the section.
fn fill_pattern(bytes: &mut [u8], start: usize, pattern: &[u8]) {
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = pattern[(start + i) % pattern.len()];
    }
}

/// Where one legacy function lies in the code section: offsets of its start and of its
/// epilogue.
#[derive(Debug, Clone, Copy)]
struct LegacyFunction {
    kind: Legacy,
    start: u64,
    epilogue: u64,
}

impl LegacyFunction {
    /// Writes the arch's prologue and epilogue into `code` and no-ops between them (execution
    /// runs through the alignment gaps between fragments), over which the fragments are
    /// copied; `None` if the function does not lie inside `code`.
    fn write_frame(&self, code: &mut [u8], arch: &Arch) -> Option<()> {
        let start = usize::try_from(self.start).ok()?;
        let epilogue = usize::try_from(self.epilogue).ok()?;
        let bytes = code.get_mut(start..epilogue.checked_add(arch.legacy_epilogue.len())?)?;
        fill_pattern(bytes, start, arch.nop);
        bytes
            .get_mut(..arch.legacy_prologue.len())?
            .copy_from_slice(arch.legacy_prologue);
        bytes
            .get_mut(epilogue.checked_sub(start)?..)?
            .copy_from_slice(arch.legacy_epilogue);
        Some(())
    }
}

#[derive(Debug)]
pub(crate) struct OutputSection {
    pub kind: OutputKind,
    pub vaddr: u64,
    pub size: u64,
    pub align: u64,
    /// The bytes (empty for bss); relocations are written into them.
    pub data: Vec<u8>,
}

impl OutputSection {
    pub fn contains(&self, address: u64) -> bool {
        address >= self.vaddr && address - self.vaddr < self.size
    }
}

#[derive(Debug)]
pub(crate) struct Layout {
    pub arch: &'static Arch,
    /// One per kind, in the order of [`OutputKind::ALL`]; empty ones have size 0.
    pub outputs: Vec<OutputSection>,
    /// Output and image address of each loaded input section, indexed `[object][section]`.
    section_addresses: Vec<Vec<Option<(OutputKind, u64)>>>,
    /// Start and end address of the input sections of each name that `__start_NAME` or
    /// `__stop_NAME` bounds.
    section_bounds: HashMap<String, (u64, u64)>,
    got_address: u64,
    tls_entries_address: u64,
    stub_address: u64,
    /// Range-extension veneers: the veneer's address by the address of the function it
    /// jumps to (see [`far_call_targets`]).
    veneers: HashMap<u64, u64>,
    /// The stub of each indirect function, by the (object, symbol) that defines it.
    ifunc_stubs: HashMap<(usize, usize), u64>,
    ifunc_slots_address: u64,
    dso_handle: Option<u64>,
    commons: HashMap<GlobalId, u64>,
    /// Image addresses of the functions made of `.init` and of `.fini` fragments.
    legacy_init: Option<u64>,
    legacy_fini: Option<u64>,
}

fn layout_error(problem: impl Into<String>) -> Error {
    Error::Layout(problem.into())
}

fn align_up(value: u64, align: u64) -> Result<u64, Error> {
    value.checked_next_multiple_of(align).ok_or_else(|| {
        layout_error(format!(
            "offset {value:#x} overflows when aligned to {align:#x}"
        ))
    })
}

/// Offsets of the pieces of one output section, relative to its start.
#[derive(Default)]
struct Builder {
    size: u64,
    align: u64,
}

impl Builder {
    fn add(&mut self, size: u64, align: u64) -> Result<u64, Error> {
        let offset = align_up(self.size, align)?;
        self.size = offset.checked_add(size).ok_or_else(|| {
            layout_error(format!(
                "output section size overflows adding {size:#x} bytes"
            ))
        })?;
        self.align = self.align.max(align);
        Ok(offset)
    }
}

/// Whether relocating `section` writes an absolute 64-bit address, which stays a load-time
/// relocation (`relative64` or `abs64`) unless it points at an absolute symbol.
fn holds_absolute_pointers(section: &crate::input::InputSection<'_>, arch: &Arch) -> bool {
    section.relocs.iter().any(|r| r.r_type == arch.abs64)
}

/// Whether a function symbol of `object`, whose sections were placed at `placed`, has code
/// offset `offset`.
fn has_function_at(object: &Object<'_>, placed: &[Option<(OutputKind, u64)>], offset: u64) -> bool {
    object.symbols.iter().any(|symbol| {
        let SymbolDefinition::Section(index) = symbol.definition else {
            return false;
        };
        symbol.is_function_in_code()
            && matches!(
                placed.get(index),
                Some(&Some((OutputKind::Code, start))) if start.checked_add(symbol.value) == Some(offset)
            )
    })
}

/// The output kind that holds every input section of one name, for `__start_`/`__stop_`:
/// the most writable of their kinds when they are data (GNU ld merges their flags the same
/// way), an error when code or thread-locals mix with anything else.
fn bounded_group_kind(
    name: &str,
    members: impl Iterator<Item = OutputKind>,
) -> Result<Option<OutputKind>, Error> {
    let rank = |kind| match kind {
        OutputKind::RoData => Some(0),
        OutputKind::RelRo => Some(1),
        OutputKind::Data | OutputKind::Bss => Some(2),
        _ => None,
    };
    let mut merged: Option<OutputKind> = None;
    for kind in members {
        merged = Some(match merged {
            None => kind,
            Some(old) if old == kind => kind,
            Some(old) => match (rank(old), rank(kind)) {
                (Some(a), Some(b)) => {
                    if a.max(b) == 2 {
                        OutputKind::Data
                    } else if a > b {
                        old
                    } else {
                        kind
                    }
                }
                _ => {
                    return Err(layout_error(format!(
                        "input sections named {name} are both {} and {}; __start_{name} and \
                         __stop_{name} need them in one output section",
                        old.name(),
                        kind.name()
                    )));
                }
            },
        });
    }
    Ok(merged)
}

/// Every branch of code that may need a veneer (`call` actions): the field, the offset of the
/// branch and of its in-module target, both from the start of the code.
fn calls<'a>(
    objects: &'a [Object<'_>],
    globals: &'a Globals<'_>,
    offsets: &'a [Vec<Option<(OutputKind, u64)>>],
) -> impl Iterator<Item = (crate::arch::Field, i128, i128)> + 'a {
    let code_offset = move |object: usize, section: usize| match offsets.get(object)?.get(section) {
        Some(Some((OutputKind::Code, offset))) => Some(*offset),
        _ => None,
    };
    objects.iter().enumerate().flat_map(move |(o, object)| {
        object
            .sections
            .iter()
            .enumerate()
            .filter_map(move |(s, section)| Some((s, section, code_offset(o, s)?)))
            .flat_map(move |(_, section, start)| {
                section.relocs.iter().filter_map(move |reloc| {
                    let Action::PcRelative {
                        field, call: true, ..
                    } = (object.arch.action)(reloc.r_type)
                    else {
                        return None;
                    };
                    let (to_object, to_symbol) =
                        match crate::resolve::symbol_ref(globals, objects, o, reloc.symbol) {
                            crate::resolve::SymbolRef::Global(id) => {
                                match globals.symbols.get(id)?.definition {
                                    Definition::Defined { object, symbol, .. } => (object, symbol),
                                    _ => return None,
                                }
                            }
                            crate::resolve::SymbolRef::Local { object, symbol } => (object, symbol),
                        };
                    let symbol = objects.get(to_object)?.symbols.get(to_symbol)?;
                    let SymbolDefinition::Section(index) = symbol.definition else {
                        return None;
                    };
                    let target = code_offset(to_object, index)?
                        .checked_add(symbol.value)?
                        .checked_add_signed(reloc.addend)?;
                    let place = start.checked_add(reloc.offset)?;
                    Some((field, i128::from(place), i128::from(target)))
                })
            })
    })
}

/// The targets (offsets in the code) that a branch among `calls` cannot reach directly, each
/// once, in ascending order: each gets a veneer after the import stubs, which the branch
/// reaches instead (if it cannot, applying it says by how much it misses).
fn far_call_targets(
    arch: &Arch,
    calls: impl Iterator<Item = (crate::arch::Field, i128, i128)>,
) -> Vec<u64> {
    let mut targets: Vec<u64> = calls
        .filter(|&(field, place, target)| !arch.reaches(field, target - place))
        .filter_map(|(_, _, target)| u64::try_from(target).ok())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

impl Layout {
    pub fn build(
        arch: &'static Arch,
        objects: &[Object<'_>],
        globals: &Globals<'_>,
        needs: &Needs,
    ) -> Result<Layout, Error> {
        let mut builders: Vec<Builder> = OutputKind::ALL
            .iter()
            .map(|_| Builder { size: 0, align: 1 })
            .collect();
        let mut offsets: Vec<Vec<Option<(OutputKind, u64)>>> = Vec::with_capacity(objects.len());
        // `.tbss` pieces, placed after every `.tdata` piece so the template's bytes come first.
        let mut zero_filled_tls = Vec::new();
        // Data pieces without absolute pointers, placed after those with them.
        let mut plain_data = Vec::new();
        // Legacy `.init` and `.fini` fragments, placed together after the other code.
        let mut legacy_pieces = Vec::new();
        // The input sections that `__start_`/`__stop_` symbols bound: all those of one name
        // are placed back to back where the first of them comes, in input order.
        let bounded = globals.bounded_sections();
        let is_bounded = |section: &crate::input::InputSection<'_>| {
            !section.discarded
                && matches!(section.class, SectionClass::Loaded(_))
                && bounded.contains(section.name)
        };
        let mut grouped: HashMap<(usize, usize), (OutputKind, u64)> = HashMap::new();
        let mut group_offsets: HashMap<&str, (OutputKind, u64, u64)> = HashMap::new();
        for (o, object) in objects.iter().enumerate() {
            let mut object_offsets = Vec::with_capacity(object.sections.len());
            for (s, section) in object.sections.iter().enumerate() {
                if is_bounded(section) {
                    if !group_offsets.contains_key(section.name) {
                        let members: Vec<(usize, usize)> = objects
                            .iter()
                            .enumerate()
                            .skip(o)
                            .flat_map(|(o, object)| {
                                object
                                    .sections
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, m)| m.name == section.name && is_bounded(m))
                                    .map(move |(s, _)| (o, s))
                            })
                            .collect();
                        let kinds = members.iter().filter_map(|&(o, s)| {
                            match objects[o].sections[s].class {
                                SectionClass::Loaded(kind) => Some(kind),
                                _ => None,
                            }
                        });
                        let Some(kind) = bounded_group_kind(section.name, kinds)? else {
                            object_offsets.push(None);
                            continue;
                        };
                        let builder = &mut builders[kind.index()];
                        let mut start = None;
                        for (o, s) in members {
                            let member = &objects[o].sections[s];
                            let offset = builder.add(member.size, member.align)?;
                            start.get_or_insert(offset);
                            grouped.insert((o, s), (kind, offset));
                        }
                        let start = start.unwrap_or(builder.size);
                        group_offsets.insert(section.name, (kind, start, builder.size));
                    }
                    object_offsets.push(grouped.get(&(o, s)).copied());
                    continue;
                }
                let placed = match section.class {
                    SectionClass::Loaded(OutputKind::Tls)
                        if !section.discarded && crate::tls::is_zero_filled(section) =>
                    {
                        zero_filled_tls.push((o, s));
                        None
                    }
                    SectionClass::Loaded(OutputKind::Data)
                        if !section.discarded && !holds_absolute_pointers(section, arch) =>
                    {
                        plain_data.push((o, s));
                        None
                    }
                    SectionClass::Loaded(OutputKind::Code)
                        if !section.discarded && section.legacy.is_some() =>
                    {
                        legacy_pieces.push((o, s));
                        None
                    }
                    SectionClass::Loaded(kind) if !section.discarded => {
                        // Records of `.eh_frame` are read back to back until a zero length:
                        // padding between two inputs would read as an early terminator, so
                        // they are packed at 4 bytes, the alignment the records need.
                        let align = if kind == OutputKind::EhFrame {
                            section.align.min(4)
                        } else {
                            section.align
                        };
                        let builder = &mut builders[kind.index()];
                        let offset = builder.add(section.size, align)?;
                        // The section still declares the input's alignment (it starts on a page).
                        builder.align = builder.align.max(section.align);
                        Some((kind, offset))
                    }
                    _ => None,
                };
                object_offsets.push(placed);
            }
            offsets.push(object_offsets);
        }
        for (o, s) in plain_data {
            let section = &objects[o].sections[s];
            let offset = builders[OutputKind::Data.index()].add(section.size, section.align)?;
            offsets[o][s] = Some((OutputKind::Data, offset));
        }
        // As GNU ld puts `.init` fragments, in input order, between crti.o's prologue and
        // crtn.o's epilogue (and `.fini` likewise), into one function each.
        let mut legacy_functions = Vec::new();
        for kind in [Legacy::Init, Legacy::Fini] {
            let pieces: Vec<(usize, usize)> = legacy_pieces
                .iter()
                .copied()
                .filter(|&(o, s)| objects[o].sections[s].legacy == Some(kind))
                .collect();
            if pieces.is_empty() {
                continue;
            }
            let code = &mut builders[OutputKind::Code.index()];
            let start = code.add(arch.legacy_prologue.len() as u64, 16)?;
            for (o, s) in pieces {
                let section = &objects[o].sections[s];
                offsets[o][s] = Some((OutputKind::Code, code.add(section.size, section.align)?));
            }
            let epilogue = code.add(arch.legacy_epilogue.len() as u64, arch.trap.len() as u64)?;
            legacy_functions.push(LegacyFunction {
                kind,
                start,
                epilogue,
            });
        }
        let tls_file_size = builders[OutputKind::Tls.index()].size;
        for (o, s) in zero_filled_tls {
            let section = &objects[o].sections[s];
            let offset = builders[OutputKind::Tls.index()].add(section.size, section.align)?;
            offsets[o][s] = Some((OutputKind::Tls, offset));
        }

        // Functions that some branch cannot reach: found now that the code's pieces have their
        // offsets, which differ from their image addresses by one constant.
        let far_targets = if arch.write_veneer.is_some() {
            far_call_targets(arch, calls(objects, globals, &offsets))
        } else {
            Vec::new()
        };
        // Import stubs, then one per indirect function (`crate::ifunc`), then the veneers.
        let stub_count = (needs.stubs.len() + needs.ifuncs.len()) as u64;
        let stub_offset =
            builders[OutputKind::Code.index()].add(stub_count * STUB_SIZE, STUB_SIZE)?;
        let veneer_offset = builders[OutputKind::Code.index()]
            .add(far_targets.len() as u64 * STUB_SIZE, STUB_SIZE)?;
        // A function of size 0 (GCC emits one for a body it found unreachable) can end the
        // code. Its address would then be the end of the code section, where the module format
        // allows no function: one trapping instruction gives it an instruction.
        let code_size = builders[OutputKind::Code.index()].size;
        if objects
            .iter()
            .zip(&offsets)
            .any(|(object, placed)| has_function_at(object, placed, code_size))
        {
            let trap = arch.trap.len() as u64;
            builders[OutputKind::Code.index()].add(trap, trap)?;
        }
        if builders[OutputKind::EhFrame.index()].size > 0 {
            builders[OutputKind::EhFrame.index()].add(4, 4)?;
        }
        // The GOT: one slot per address, one per indirect function, then the thread-local
        // entries of `crate::tls`.
        let got_slots_size = (needs.got.len() + needs.ifuncs.len()) as u64 * GOT_SLOT_SIZE;
        let got_offset = builders[OutputKind::RelRo.index()].add(
            got_slots_size + needs.tls.entries.len() as u64 * crate::tls::ENTRY_SIZE,
            GOT_SLOT_SIZE,
        )?;
        let needs_dso_handle = globals
            .symbols
            .iter()
            .any(|g| g.definition == Definition::DsoHandle);
        let dso_offset = if needs_dso_handle {
            Some(builders[OutputKind::Data.index()].add(8, 8)?)
        } else {
            None
        };
        let mut common_offsets = Vec::new();
        for (id, global) in globals.symbols.iter().enumerate() {
            if let Definition::Common { size, align, .. } = global.definition {
                common_offsets.push((id, builders[OutputKind::Bss.index()].add(size, align)?));
            }
        }

        // Place the non-empty sections; an empty one gets the current end of the image, so
        // that zero-sized pieces in it still have an address.
        let mut image = ImageLayout::with_page_size(arch.page_size);
        let mut outputs = Vec::with_capacity(OutputKind::ALL.len());
        for (kind, builder) in OutputKind::ALL.iter().zip(&builders) {
            let vaddr = if builder.size > 0 {
                image
                    .place(builder.size)
                    .map_err(|e| layout_error(e.to_string()))?
            } else {
                image.size()
            };
            let data = if *kind == OutputKind::Bss {
                Vec::new()
            } else {
                // The TLS template keeps only its initialised bytes; the rest is zero-filled.
                let size = if *kind == OutputKind::Tls {
                    tls_file_size
                } else {
                    builder.size
                };
                let len = usize::try_from(size).map_err(|_| {
                    layout_error(format!(
                        "{} is too large ({:#x} bytes)",
                        kind.name(),
                        builder.size
                    ))
                })?;
                let mut data = vec![0; len];
                if *kind == OutputKind::Code {
                    // Padding between input sections traps if a stray jump lands in it.
                    fill_pattern(&mut data, 0, arch.code_fill);
                }
                data
            };
            outputs.push(OutputSection {
                kind: *kind,
                vaddr,
                size: builder.size,
                align: builder.align,
                data,
            });
        }

        // The frame and the gaps of each legacy function; its fragments are copied in below.
        let code = &mut outputs[OutputKind::Code.index()].data;
        for function in &legacy_functions {
            if function.write_frame(code, arch).is_none() {
                return Err(layout_error("the legacy .init/.fini function does not fit"));
            }
        }

        let mut section_addresses = Vec::with_capacity(objects.len());
        for (object, object_offsets) in objects.iter().zip(&offsets) {
            let mut addresses = Vec::with_capacity(object_offsets.len());
            for (section, placed) in object.sections.iter().zip(object_offsets) {
                let Some((kind, offset)) = *placed else {
                    addresses.push(None);
                    continue;
                };
                let output = &mut outputs[kind.index()];
                if kind != OutputKind::Bss && !section.data.is_empty() {
                    // In range: the output was sized to hold every piece.
                    let start =
                        usize::try_from(offset).map_err(|_| layout_error("offset overflow"))?;
                    let end = start.checked_add(section.data.len());
                    match end.and_then(|end| output.data.get_mut(start..end)) {
                        Some(bytes) => bytes.copy_from_slice(section.data),
                        None => {
                            return Err(layout_error(format!(
                                "{}: section {} does not fit",
                                object.name, section.name
                            )));
                        }
                    }
                }
                addresses.push(Some((kind, output.vaddr + offset)));
            }
            section_addresses.push(addresses);
        }

        let vaddr = |kind: OutputKind| outputs[kind.index()].vaddr;
        let section_bounds = group_offsets
            .into_iter()
            .map(|(name, (kind, start, end))| {
                (name.to_owned(), (vaddr(kind) + start, vaddr(kind) + end))
            })
            .collect();
        let legacy = |kind: Legacy| {
            legacy_functions
                .iter()
                .find(|f| f.kind == kind)
                .map(|f| vaddr(OutputKind::Code) + f.start)
        };
        let code_start = vaddr(OutputKind::Code);
        let mut layout = Layout {
            arch,
            veneers: far_targets
                .iter()
                .enumerate()
                .map(|(i, &target)| {
                    (
                        code_start + target,
                        code_start + veneer_offset + i as u64 * STUB_SIZE,
                    )
                })
                .collect(),
            section_bounds,
            got_address: vaddr(OutputKind::RelRo) + got_offset,
            tls_entries_address: vaddr(OutputKind::RelRo) + got_offset + got_slots_size,
            stub_address: vaddr(OutputKind::Code) + stub_offset,
            ifunc_stubs: needs
                .ifuncs
                .iter()
                .enumerate()
                .map(|(i, &definition)| {
                    let index = (needs.stubs.len() + i) as u64;
                    (
                        definition,
                        vaddr(OutputKind::Code) + stub_offset + index * STUB_SIZE,
                    )
                })
                .collect(),
            ifunc_slots_address: vaddr(OutputKind::RelRo)
                + got_offset
                + needs.got.len() as u64 * GOT_SLOT_SIZE,
            dso_handle: dso_offset.map(|offset| vaddr(OutputKind::Data) + offset),
            commons: common_offsets
                .into_iter()
                .map(|(id, offset)| (id, vaddr(OutputKind::Bss) + offset))
                .collect(),
            legacy_init: legacy(Legacy::Init),
            legacy_fini: legacy(Legacy::Fini),
            section_addresses,
            outputs,
        };
        layout.write_stubs(needs)?;
        layout.write_veneers()?;
        Ok(layout)
    }

    /// Writes each veneer: a jump to its function that reaches farther than a branch.
    fn write_veneers(&mut self) -> Result<(), Error> {
        let Some(write_veneer) = self.arch.write_veneer else {
            return Ok(());
        };
        let veneers: Vec<(u64, u64)> = self.veneers.iter().map(|(&t, &v)| (t, v)).collect();
        for (target, veneer) in veneers {
            let bytes = write_veneer(veneer, target).map_err(layout_error)?;
            self.write(veneer, &bytes)?;
        }
        Ok(())
    }

    /// The veneer that jumps to `target`, if a branch somewhere cannot reach it directly.
    pub fn veneer(&self, _from: u64, target: u64) -> Option<u64> {
        self.veneers.get(&target).copied()
    }

    /// Writes a stub for each import called from code and each indirect function.
    fn write_stubs(&mut self, needs: &Needs) -> Result<(), Error> {
        for (index, &global) in needs.stubs.iter().enumerate() {
            let stub = self.stub(index as u32);
            let slot = needs
                .got_slot(crate::resolve::SymbolRef::Global(global))
                .map(|slot| self.got_slot(slot))
                .ok_or_else(|| layout_error("an import stub has no GOT slot"))?;
            self.write_jump(stub, slot)?;
        }
        for index in 0..needs.ifuncs.len() {
            let stub = self.stub((needs.stubs.len() + index) as u32);
            let slot = self.ifunc_slot(index as u32);
            self.write_jump(stub, slot)?;
        }
        Ok(())
    }

    /// Writes the arch's jump through the GOT slot `slot` at `stub`.
    fn write_jump(&mut self, stub: u64, slot: u64) -> Result<(), Error> {
        let bytes = (self.arch.write_stub)(stub, slot).map_err(layout_error)?;
        self.write(stub, &bytes)
    }

    /// Bytes at an image address, if one section holds all `len` of them in its data.
    pub fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let output = self.output_at(address)?;
        let start = usize::try_from(address - output.vaddr).ok()?;
        output
            .data
            .get(start..start.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }

    /// The stub that is the address of the indirect function `symbol` of `object`, if it
    /// is one that the module keeps.
    pub fn ifunc_stub(&self, object: usize, symbol: usize) -> Option<u64> {
        self.ifunc_stubs.get(&(object, symbol)).copied()
    }

    /// The GOT slot the stub of indirect function `index` jumps through.
    pub fn ifunc_slot(&self, index: u32) -> u64 {
        self.ifunc_slots_address + u64::from(index) * GOT_SLOT_SIZE
    }

    pub fn output(&self, kind: OutputKind) -> &OutputSection {
        &self.outputs[kind.index()]
    }

    /// The output section holding an image address (only non-empty sections hold any).
    pub fn output_at(&self, address: u64) -> Option<&OutputSection> {
        self.outputs.iter().find(|o| o.contains(address))
    }

    /// The module's section index of the output section holding an image address: outputs
    /// become sections in order, empty ones skipped (as `crate::pack` adds them).
    pub fn section_index_at(&self, address: u64) -> Option<u32> {
        let position = self.outputs.iter().position(|o| o.contains(address))?;
        u32::try_from(
            self.outputs[..position]
                .iter()
                .filter(|o| o.size > 0)
                .count(),
        )
        .ok()
    }

    /// Sorts the relocated `RUNTIME_FUNCTION` entries of the function table by function, as
    /// Windows requires, and checks each (docs/FORMAT.md, "Function table"): the function
    /// lies in code and is not empty, its unwind information in read-only data, and no two
    /// functions overlap.
    pub fn sort_function_table(&mut self) -> Result<(), Error> {
        let index = OutputKind::Pdata.index();
        let table = &self.outputs[index];
        if table.size == 0 {
            return Ok(());
        }
        let entry = smf_format::raw::PDATA_ENTRY_SIZE as usize;
        if table.data.len() % entry != 0 {
            return Err(layout_error(format!(
                "the function table (.pdata) is {:#x} bytes, not a whole number of                  {entry}-byte entries",
                table.data.len()
            )));
        }
        let word = |bytes: &[u8], at: usize| {
            u64::from(u32::from_le_bytes([
                bytes[at],
                bytes[at + 1],
                bytes[at + 2],
                bytes[at + 3],
            ]))
        };
        let mut entries: Vec<[u8; 12]> = table
            .data
            .chunks_exact(entry)
            .map(|chunk| {
                let mut bytes = [0; 12];
                bytes.copy_from_slice(chunk);
                bytes
            })
            .collect();
        entries.sort_by_key(|e| (word(e, 0), word(e, 4)));
        let code = self.output(OutputKind::Code);
        let rodata = self.output(OutputKind::RoData);
        let mut previous_end = 0;
        for e in &entries {
            let (begin, end, unwind) = (word(e, 0), word(e, 4), word(e, 8));
            let describe = || {
                format!(
                    "function table entry {begin:#x}..{end:#x} (unwind information at {unwind:#x})"
                )
            };
            if begin >= end || !code.contains(begin) || !code.contains(end - 1) {
                return Err(layout_error(format!(
                    "{} does not describe code of the module",
                    describe()
                )));
            }
            if !rodata.contains(unwind) || unwind % 4 != 0 {
                return Err(layout_error(format!(
                    "{}: its unwind information is not 4-aligned read-only data (.xdata)",
                    describe()
                )));
            }
            if begin < previous_end {
                return Err(layout_error(format!(
                    "{} overlaps the function before it, which ends at {previous_end:#x}",
                    describe()
                )));
            }
            previous_end = end;
        }
        self.outputs[index].data = entries.concat();
        Ok(())
    }

    pub fn section_address(&self, object: usize, section: usize) -> Option<u64> {
        self.section_placement(object, section)
            .map(|(_, address)| address)
    }

    /// The output section an input section went to, and its image address. The output is
    /// the one its class names, except for sections bounded by `__start_`/`__stop_`, which
    /// go where all of their name go.
    pub fn section_placement(&self, object: usize, section: usize) -> Option<(OutputKind, u64)> {
        self.section_addresses
            .get(object)?
            .get(section)
            .copied()
            .flatten()
    }

    /// Start and end address of the input sections named `name`, if `__start_name` or
    /// `__stop_name` is defined.
    pub fn section_bounds(&self, name: &str) -> Option<(u64, u64)> {
        self.section_bounds.get(name).copied()
    }

    /// Address of the GOT base (`_GLOBAL_OFFSET_TABLE_`), which is also the first slot.
    pub fn got_address(&self) -> u64 {
        self.got_address
    }

    pub fn got_slot(&self, slot: u32) -> u64 {
        self.got_address + u64::from(slot) * GOT_SLOT_SIZE
    }

    /// Address of thread-local GOT entry `index` (see `crate::tls`), after the GOT slots.
    pub fn tls_entry(&self, index: u32) -> u64 {
        self.tls_entries_address + u64::from(index) * crate::tls::ENTRY_SIZE
    }

    pub fn stub(&self, index: u32) -> u64 {
        self.stub_address + u64::from(index) * STUB_SIZE
    }

    pub fn dso_handle(&self) -> Option<u64> {
        self.dso_handle
    }

    /// The function made of the inputs' `.init` (or `.fini`) fragments, if any has one.
    pub fn legacy_function(&self, kind: Legacy) -> Option<u64> {
        match kind {
            Legacy::Init => self.legacy_init,
            Legacy::Fini => self.legacy_fini,
        }
    }

    pub fn common(&self, id: GlobalId) -> Option<u64> {
        self.commons.get(&id).copied()
    }

    /// The little-endian word at `address`, if a section holds all 8 bytes in its data.
    pub fn read_u64(&self, address: u64) -> Option<u64> {
        let output = self.output_at(address)?;
        let start = usize::try_from(address - output.vaddr).ok()?;
        let word = output.data.get(start..start.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    }

    /// Writes bytes at an image address; they must lie inside one output section with bytes.
    pub fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), Error> {
        let output = self
            .outputs
            .iter_mut()
            .find(|o| o.contains(address))
            .ok_or_else(|| layout_error(format!("no section holds address {address:#x}")))?;
        let start = usize::try_from(address - output.vaddr)
            .map_err(|_| layout_error("address overflow"))?;
        let target = start
            .checked_add(bytes.len())
            .and_then(|end| output.data.get_mut(start..end))
            .ok_or_else(|| {
                layout_error(format!(
                    "{} bytes at {address:#x} run past the section's bytes",
                    bytes.len()
                ))
            })?;
        target.copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_aligned_and_sizes_checked() {
        let mut builder = Builder { size: 0, align: 1 };
        assert_eq!(builder.add(3, 1).unwrap(), 0);
        assert_eq!(builder.add(8, 8).unwrap(), 8);
        assert_eq!(builder.add(0, 4096).unwrap(), 4096);
        assert_eq!((builder.size, builder.align), (4096, 4096));
        assert!(builder.add(u64::MAX, 1).is_err());
        let mut full = Builder {
            size: u64::MAX - 2,
            align: 1,
        };
        assert!(full.add(1, 16).is_err());
    }

    #[test]
    fn far_calls_get_one_veneer_per_target() {
        use crate::arch::{Field, Insn, aarch64, x86_64};
        let bl = Field::Insn(Insn::Branch { bits: 26, lsb: 0 });
        let mib = 1i128 << 20;
        let calls = [
            (bl, 0, 127 * mib),                     // in reach
            (bl, 0, 200 * mib),                     // out of reach
            (bl, 4, 200 * mib),                     // the same target again
            (bl, 300 * mib, 8),                     // backwards, out of reach
            (bl, 300 * mib, 300 * mib - 128 * mib), // exactly -128 MiB: in reach
        ];
        assert_eq!(
            far_call_targets(&aarch64::ARCH, calls.into_iter()),
            [8, 200 << 20]
        );
        assert_eq!(
            far_call_targets(&aarch64::ARCH, calls.into_iter().take(1)),
            Vec::<u64>::new()
        );
        // x86-64 has no veneers: its calls reach ±2 GiB, the whole of any module's code.
        assert!(x86_64::ARCH.write_veneer.is_none());
    }

    #[test]
    fn bounded_sections_share_the_most_writable_output() {
        use OutputKind::*;
        let kind = |kinds: &[OutputKind]| bounded_group_kind("items", kinds.iter().copied());
        assert_eq!(kind(&[]).unwrap(), None);
        assert_eq!(kind(&[RoData, RoData]).unwrap(), Some(RoData));
        assert_eq!(kind(&[RoData, RelRo]).unwrap(), Some(RelRo));
        assert_eq!(kind(&[RelRo, RoData]).unwrap(), Some(RelRo));
        assert_eq!(kind(&[RoData, Bss]).unwrap(), Some(Data));
        assert_eq!(kind(&[Code, Code]).unwrap(), Some(Code));
        let error = kind(&[Code, Data]).unwrap_err().to_string();
        assert!(
            error.contains("items") && error.contains(".text"),
            "{error}"
        );
    }
}
