//! The module's source map, from the DWARF line programs of objects compiled with `-g`.
//!
//! In a relocatable object the addresses of a line program (`DW_LNE_set_address`) are
//! relocations against the object's code sections, and `.debug_info`'s references to
//! `.debug_line` and the string sections are relocations too. Each object's DWARF is read
//! through `gimli` with its relocations applied: a relocation against a section the layout
//! placed yields that section's image address (so line programs come out in module
//! addresses), one against a debug section an offset in it. Sequences whose code the link
//! dropped (duplicate COMDAT groups) are left out. Objects without DWARF add nothing.

use std::collections::HashMap;

use gimli::{EndianSlice, LittleEndian as GimliLe, Reader as _, RelocateReader};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};
use smf_format::SourceMapBuilder;

use crate::Input;
use crate::error::Error;
use crate::layout::Layout;

/// Addresses at or above this came from a relocation against code the link did not keep.
const UNPLACED: u64 = 1 << 62;

/// Relocated values of one section, by the offset of the field they apply to.
#[derive(Debug, Clone, Copy)]
struct Relocations<'a>(&'a HashMap<usize, u64>);

impl gimli::read::Relocate<usize> for Relocations<'_> {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        Ok(self.0.get(&offset).copied().unwrap_or(value))
    }

    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        match self.0.get(&offset) {
            Some(&relocated) => {
                usize::try_from(relocated).map_err(|_| gimli::Error::UnsupportedOffset)
            }
            None => Ok(value),
        }
    }
}

type Reader<'a> = RelocateReader<EndianSlice<'a, GimliLe>, Relocations<'a>>;

/// The source map of the module: the line programs of every input object (`inputs[i]` is
/// the layout's object `i`), at their module addresses.
pub(crate) fn build(inputs: &[Input], layout: &Layout) -> Result<SourceMapBuilder, Error> {
    let mut map = SourceMapBuilder::new();
    for (index, input) in inputs.iter().enumerate() {
        read_object(&mut map, index, input, layout).map_err(|problem| Error::Object {
            file: input.name.clone(),
            problem: format!("cannot read its DWARF line information: {problem}"),
        })?;
    }
    Ok(map)
}

fn read_object(
    map: &mut SourceMapBuilder,
    index: usize,
    input: &Input,
    layout: &Layout,
) -> Result<(), String> {
    // Every input is an ELF or COFF object by now (`input::read_object` read it).
    let Ok(file) = object::File::parse(&*input.data) else {
        return Ok(());
    };
    if file.section_by_name(".debug_line").is_none() {
        return Ok(());
    }
    let empty = HashMap::new();
    let mut relocations: Vec<(gimli::SectionId, &[u8], HashMap<usize, u64>)> = Vec::new();
    for id in [
        gimli::SectionId::DebugAbbrev,
        gimli::SectionId::DebugInfo,
        gimli::SectionId::DebugLine,
        gimli::SectionId::DebugLineStr,
        gimli::SectionId::DebugStr,
        gimli::SectionId::DebugStrOffsets,
        gimli::SectionId::DebugAddr,
    ] {
        let Some(section) = file.section_by_name(id.name()) else {
            continue;
        };
        let data = section
            .data()
            .map_err(|e| format!("section {}: {e}", id.name()))?;
        let mut relocated = HashMap::new();
        for (offset, relocation) in section.relocations() {
            let offset = usize::try_from(offset)
                .map_err(|_| format!("{}: relocation offset {offset:#x}", id.name()))?;
            let target = match relocation.target() {
                RelocationTarget::Symbol(symbol) => {
                    let symbol = file
                        .symbol_by_index(symbol)
                        .map_err(|e| format!("{}: relocation at {offset:#x}: {e}", id.name()))?;
                    match symbol.section_index() {
                        Some(section) => match layout.section_address(index, section.0) {
                            Some(address) => address.wrapping_add(symbol.address()),
                            None if is_debug_section(&file, section) => symbol.address(),
                            None => UNPLACED,
                        },
                        None => symbol.address(),
                    }
                }
                _ => 0,
            };
            // COFF relocations keep their addend in the field they patch (ELF's RELA in
            // the relocation).
            let addend = if relocation.has_implicit_addend() {
                implicit_addend(data, offset, relocation.size())
                    .ok_or_else(|| format!("{}: relocation at {offset:#x}", id.name()))?
            } else {
                relocation.addend() as u64
            };
            relocated.insert(offset, target.wrapping_add(addend));
        }
        relocations.push((id, data, relocated));
    }
    let dwarf = gimli::Dwarf::load(|id| -> Result<Reader<'_>, String> {
        let (data, relocated) = relocations
            .iter()
            .find(|(section, _, _)| *section == id)
            .map_or((&[][..], &empty), |(_, data, relocated)| (*data, relocated));
        Ok(RelocateReader::new(
            EndianSlice::new(data, GimliLe),
            Relocations(relocated),
        ))
    })?;
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(|e| e.to_string())? {
        let offset = header
            .offset()
            .to_debug_info_offset(&header)
            .map_or(0, |o| o.0);
        let unit = dwarf
            .unit(header)
            .map_err(|e| format!("unit at {offset:#x}: {e}"))?;
        read_unit(map, &dwarf, &unit)
            .map_err(|e| format!("line program of unit at {offset:#x}: {e}"))?;
    }
    Ok(())
}

/// The addend stored in the `bits`-bit little-endian field at `offset` of `data`; `None` if
/// the field runs past the end or has another width.
fn implicit_addend(data: &[u8], offset: usize, bits: u8) -> Option<u64> {
    match bits {
        32 => data
            .get(offset..offset.checked_add(4)?)
            .map(|b| u64::from(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))),
        64 => data
            .get(offset..offset.checked_add(8)?)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        _ => None,
    }
}

fn is_debug_section(file: &object::File<'_>, index: object::SectionIndex) -> bool {
    file.section_by_index(index)
        .ok()
        .and_then(|s| s.name().ok().map(|name| name.starts_with(".debug")))
        .unwrap_or(false)
}

fn read_unit(
    map: &mut SourceMapBuilder,
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
) -> gimli::Result<()> {
    let Some(program) = unit.line_program.clone() else {
        return Ok(());
    };
    let comp_dir = match &unit.comp_dir {
        Some(dir) => Some(dir.to_string_lossy()?.into_owned()),
        None => None,
    };
    let mut files: HashMap<u64, u32> = HashMap::new();
    let mut sequence: Vec<(u64, u32, u32, u32)> = Vec::new();
    let mut rows = program.rows();
    while let Some((header, row)) = rows.next_row()? {
        if row.end_sequence() {
            if sequence
                .first()
                .is_some_and(|&(start, ..)| start < UNPLACED)
                && row.address() < UNPLACED
            {
                map.add_sequence(&sequence, row.address());
            }
            sequence.clear();
            continue;
        }
        let file = match files.get(&row.file_index()) {
            Some(&file) => file,
            None => {
                let name = match row.file(header) {
                    Some(entry) => file_path(dwarf, unit, header, entry, comp_dir.as_deref())?,
                    None => format!("<file {}>", row.file_index()),
                };
                let file = map.file(&name);
                files.insert(row.file_index(), file);
                file
            }
        };
        let line = row
            .line()
            .map_or(0, |line| u32::try_from(line.get()).unwrap_or(u32::MAX));
        let column = match row.column() {
            gimli::ColumnType::LeftEdge => 0,
            gimli::ColumnType::Column(column) => u32::try_from(column.get()).unwrap_or(0),
        };
        sequence.push((row.address(), file, line, column));
    }
    Ok(())
}

/// The file's path: its directory (relative ones under the unit's compilation directory)
/// joined with its name.
fn file_path(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    header: &gimli::LineProgramHeader<Reader<'_>>,
    entry: &gimli::FileEntry<Reader<'_>>,
    comp_dir: Option<&str>,
) -> gimli::Result<String> {
    let string = |value| -> gimli::Result<String> {
        Ok(dwarf
            .attr_string(unit, value)?
            .to_string_lossy()?
            .into_owned())
    };
    let name = string(entry.path_name())?;
    if name.starts_with('/') {
        return Ok(name);
    }
    let mut path = match entry.directory(header) {
        Some(dir) => string(dir)?,
        None => String::new(),
    };
    if let Some(comp_dir) = comp_dir.filter(|_| !path.starts_with('/')) {
        path = if path.is_empty() {
            comp_dir.to_owned()
        } else {
            format!("{comp_dir}/{path}")
        };
    }
    Ok(if path.is_empty() {
        name
    } else {
        format!("{}/{name}", path.trim_end_matches('/'))
    })
}
