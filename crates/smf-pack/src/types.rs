//! The module's `typeinfo` table from the DWARF of objects compiled with `-g`: the type of
//! each function and variable the objects define, as `docs/FORMAT.md` (*Type information*)
//! encodes it. Objects without DWARF, and types this reader does not describe (complex
//! numbers, vector types, C++ pointers to members), give no type: the symbol's `type_id`
//! stays 0, which nothing checks.

use std::collections::HashMap;

use gimli::{AttributeValue, EndianSlice, Reader as _, RunTimeEndian, UnitOffset};
use object::{Object as _, ObjectSection as _};
use smf_format::typeinfo::{CallConv, Field, TypeKind, TypeTableBuilder};

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;
type Reader<'a> = gimli::RelocateReader<Slice<'a>, &'a Relocations>;

/// The relocations of one debug section, which in a relocatable object hold the offsets of
/// strings, abbreviations and other units (the section bytes hold only the addends).
#[derive(Debug, Default)]
struct Relocations(object::read::RelocationMap);

impl gimli::read::Relocate for &Relocations {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        Ok(self.0.relocate(offset as u64, value))
    }
    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        usize::try_from(self.0.relocate(offset as u64, value as u64))
            .map_err(|_| gimli::Error::OffsetOutOfBounds(0))
    }
}

/// Types of the functions and variables defined in each object, by symbol name, as ids of
/// `builder`.
pub(crate) fn collect(
    objects: &[&[u8]],
    builder: &mut TypeTableBuilder,
) -> Vec<HashMap<String, u32>> {
    objects
        .iter()
        .map(|data| object_types(data, builder).unwrap_or_default())
        .collect()
}

/// What one object's DWARF says; `None` when it has none or it cannot be read (the module is
/// still packed, without types for that object).
fn object_types(data: &[u8], builder: &mut TypeTableBuilder) -> Option<HashMap<String, u32>> {
    let file = object::File::parse(data).ok()?;
    file.section_by_name(".debug_info")?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let mut sections: Vec<(gimli::SectionId, std::borrow::Cow<'_, [u8]>, Relocations)> = Vec::new();
    for id in [
        gimli::SectionId::DebugAbbrev,
        gimli::SectionId::DebugInfo,
        gimli::SectionId::DebugStr,
        gimli::SectionId::DebugLineStr,
        gimli::SectionId::DebugStrOffsets,
        gimli::SectionId::DebugAddr,
        // Read by `Dwarf::unit` (the line program header, range and location lists).
        gimli::SectionId::DebugLine,
        gimli::SectionId::DebugRngLists,
        gimli::SectionId::DebugRanges,
        gimli::SectionId::DebugLocLists,
        gimli::SectionId::DebugLoc,
    ] {
        if let Some(section) = file.section_by_name(id.name()) {
            let bytes = section.uncompressed_data().ok()?;
            let relocations = section
                .relocation_map()
                .ok()
                .map(Relocations)
                .unwrap_or_default();
            sections.push((id, bytes, relocations));
        }
    }
    let empty = Relocations::default();
    let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        let (bytes, relocations): (&[u8], &Relocations) = sections
            .iter()
            .find(|(s, _, _)| *s == id)
            .map(|(_, b, r)| (&**b, r))
            .unwrap_or((&[], &empty));
        Ok(gimli::RelocateReader::new(
            EndianSlice::new(bytes, endian),
            relocations,
        ))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    let mut names = HashMap::new();
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        let language = unit.entry(unit.root_offset()).ok().and_then(|root| {
            match root.attr_value(gimli::DW_AT_language) {
                Some(AttributeValue::Language(l)) => Some(l),
                _ => None,
            }
        });
        let c = matches!(
            language,
            Some(
                gimli::DW_LANG_C89
                    | gimli::DW_LANG_C99
                    | gimli::DW_LANG_C11
                    | gimli::DW_LANG_C
                    | gimli::DW_LANG_C17
            )
        );
        let mut converter = Converter {
            c,
            dwarf: &dwarf,
            unit: &unit,
            builder,
            memo: HashMap::new(),
            records: HashMap::new(),
            pending: Vec::new(),
            align: HashMap::new(),
        };
        converter.definitions(&mut names);
        converter.finish();
    }
    Some(names)
}

/// Converts the types of one unit.
struct Converter<'a, 'd> {
    /// The unit is C, where `int f()` declares a function without a prototype.
    c: bool,
    dwarf: &'a gimli::Dwarf<Reader<'d>>,
    unit: &'a gimli::Unit<Reader<'d>>,
    builder: &'a mut TypeTableBuilder,
    /// Types converted, by DIE; `None` for those that cannot be described.
    memo: HashMap<UnitOffset, Option<u32>>,
    /// Structs and unions declared, and whether their layout is given yet (`Some(true)`), being
    /// given (`Some(false)`), or waits in `pending` (`None`).
    records: HashMap<UnitOffset, (u32, Option<bool>)>,
    pending: Vec<UnitOffset>,
    align: HashMap<u32, u32>,
}

const MAX_DEPTH: usize = 200;

impl<'d> Converter<'_, 'd> {
    /// Records the type of each function and variable the unit defines, by linkage name.
    fn definitions(&mut self, names: &mut HashMap<String, u32>) {
        let mut entries = self.unit.entries();
        while let Ok(Some(entry)) = entries.next_dfs() {
            let depth = entry.depth();
            // Functions and variables of the unit's scope (static locals in functions have
            // names of the compiler's making, such as `count.0`, which are not matched).
            if depth != 1 {
                continue;
            }
            let tag = entry.tag();
            if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_variable {
                continue;
            }
            if matches!(
                entry.attr_value(gimli::DW_AT_declaration),
                Some(AttributeValue::Flag(true))
            ) {
                continue;
            }
            let offset = entry.offset();
            let origin = self.origin(offset);
            let Some(name) = self
                .string_attr(origin, gimli::DW_AT_linkage_name)
                .or_else(|| self.string_attr(offset, gimli::DW_AT_linkage_name))
                .or_else(|| self.string_attr(origin, gimli::DW_AT_name))
            else {
                continue;
            };
            let ty = if tag == gimli::DW_TAG_subprogram {
                self.function(origin, 0)
            } else {
                match self.type_attr(origin) {
                    Some(Some(target)) => self.ty(target, true, 0),
                    _ => None,
                }
            };
            if let Some(ty) = ty {
                names.insert(name, ty);
            }
            self.finish();
        }
    }

    /// Gives every record declared through a pointer its layout.
    fn finish(&mut self) {
        while let Some(offset) = self.pending.pop() {
            self.define(offset, 0);
        }
    }

    /// The DIE that holds the declaration of `offset`: it, or what its
    /// `DW_AT_abstract_origin` / `DW_AT_specification` names (an out-of-line copy of an
    /// inlined function, a definition of something declared earlier), followed a few times.
    fn origin(&self, mut offset: UnitOffset) -> UnitOffset {
        for _ in 0..4 {
            let Ok(entry) = self.unit.entry(offset) else {
                break;
            };
            let next = [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification]
                .into_iter()
                .find_map(|at| match entry.attr_value(at) {
                    Some(AttributeValue::UnitRef(o)) => Some(o),
                    _ => None,
                });
            match next {
                Some(o) => offset = o,
                None => break,
            }
        }
        offset
    }

    fn string_attr(&self, offset: UnitOffset, at: gimli::DwAt) -> Option<String> {
        let entry = self.unit.entry(offset).ok()?;
        let value = entry.attr_value(at)?;
        let s = self.dwarf.attr_string(self.unit, value).ok()?;
        Some(s.to_string_lossy().ok()?.into_owned())
    }

    fn udata(&self, offset: UnitOffset, at: gimli::DwAt) -> Option<u64> {
        let entry = self.unit.entry(offset).ok()?;
        entry.attr_value(at)?.udata_value()
    }

    /// `DW_AT_type`: `Some(None)` when absent (`void`), `None` when it is not a reference into
    /// this unit.
    fn type_attr(&self, offset: UnitOffset) -> Option<Option<UnitOffset>> {
        let entry = self.unit.entry(offset).ok()?;
        match entry.attr_value(gimli::DW_AT_type) {
            None => Some(None),
            Some(AttributeValue::UnitRef(o)) => Some(Some(o)),
            Some(_) => None,
        }
    }

    /// The type id of the type DIE at `offset` (0 for `void`); `None` if it cannot be
    /// described. `by_value`: the type's layout is needed now (a field, an element, a
    /// variable), not only its name (a pointer's target).
    fn ty(&mut self, offset: UnitOffset, by_value: bool, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        let entry = self.unit.entry(offset).ok()?;
        let tag = entry.tag();
        if tag == gimli::DW_TAG_structure_type
            || tag == gimli::DW_TAG_union_type
            || tag == gimli::DW_TAG_class_type
        {
            let id = self.record(offset, tag == gimli::DW_TAG_union_type);
            if by_value {
                self.define(offset, depth + 1)?;
            }
            return Some(id);
        }
        // Names and qualifiers of a type are that type, needed as the use needs it (a
        // pointer to a `const struct s` does not need its layout): not remembered apart.
        if matches!(
            tag,
            gimli::DW_TAG_typedef
                | gimli::DW_TAG_const_type
                | gimli::DW_TAG_volatile_type
                | gimli::DW_TAG_restrict_type
                | gimli::DW_TAG_atomic_type
        ) {
            return match self.type_attr(offset)? {
                Some(t) => self.ty(t, by_value, depth + 1),
                None => Some(0),
            };
        }
        if let Some(&known) = self.memo.get(&offset) {
            return known;
        }
        let result = self.convert(offset, tag, depth);
        self.memo.insert(offset, result);
        result
    }

    fn convert(&mut self, offset: UnitOffset, tag: gimli::DwTag, depth: usize) -> Option<u32> {
        let size = self.udata(offset, gimli::DW_AT_byte_size);
        let target = || self.type_attr(offset);
        match tag {
            gimli::DW_TAG_base_type => {
                let encoding = match self
                    .unit
                    .entry(offset)
                    .ok()?
                    .attr_value(gimli::DW_AT_encoding)?
                {
                    AttributeValue::Encoding(e) => e,
                    _ => return None,
                };
                let size = size?;
                let id = match encoding {
                    gimli::DW_ATE_signed | gimli::DW_ATE_signed_char => self.int(size, true)?,
                    gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char | gimli::DW_ATE_UTF => {
                        self.int(size, false)?
                    }
                    gimli::DW_ATE_boolean if size == 1 => self.builder.bool(),
                    gimli::DW_ATE_float if matches!(size, 4 | 8 | 16) => self.builder.float(size),
                    _ => return None,
                };
                self.align.insert(id, size.min(16) as u32);
                Some(id)
            }
            gimli::DW_TAG_enumeration_type => {
                let signed = match target()? {
                    Some(underlying) => {
                        let t = self.ty(underlying, true, depth + 1)?;
                        return Some(t);
                    }
                    None => false,
                };
                let size = size?;
                let id = self.int(size, signed)?;
                self.align.insert(id, size.min(16) as u32);
                Some(id)
            }
            gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type => {
                if size.is_some_and(|s| s != 8) {
                    return None;
                }
                let pointee = match target()? {
                    Some(t) => self.ty(t, false, depth + 1)?,
                    None => 0,
                };
                let id = self.builder.pointer(pointee);
                self.align.insert(id, 8);
                Some(id)
            }
            gimli::DW_TAG_array_type => {
                let element = self.ty(target()??, true, depth + 1)?;
                if element == 0 {
                    return None;
                }
                // `int m[2][3]`: subranges outermost first; the last is the innermost array.
                let mut counts = Vec::new();
                let unit = self.unit;
                let mut tree = unit.entries_tree(Some(offset)).ok()?;
                let root = tree.root().ok()?;
                let mut children = root.children();
                while let Ok(Some(child)) = children.next() {
                    let e = child.entry();
                    if e.tag() != gimli::DW_TAG_subrange_type {
                        continue;
                    }
                    let count = if let Some(count) = e
                        .attr_value(gimli::DW_AT_count)
                        .and_then(|v| v.udata_value())
                    {
                        count
                    } else if let Some(upper) = e
                        .attr_value(gimli::DW_AT_upper_bound)
                        .and_then(|v| v.udata_value())
                    {
                        let lower = e
                            .attr_value(gimli::DW_AT_lower_bound)
                            .and_then(|v| v.udata_value())
                            .unwrap_or(0);
                        (upper + 1).checked_sub(lower)?
                    } else {
                        0 // `int tail[]`: a flexible array member
                    };
                    counts.push(u32::try_from(count).ok()?);
                }
                let align = self.align.get(&element).copied().unwrap_or(1);
                let mut id = element;
                for &count in counts.iter().rev() {
                    id = self.builder.array(id, count);
                    self.align.insert(id, align);
                }
                Some(id)
            }
            gimli::DW_TAG_subroutine_type => self.function(offset, depth + 1),
            _ => None,
        }
    }

    fn int(&mut self, size: u64, signed: bool) -> Option<u32> {
        matches!(size, 1 | 2 | 4 | 8 | 16).then(|| self.builder.int(size, signed))
    }

    /// The function type of a `DW_TAG_subprogram` or `DW_TAG_subroutine_type`.
    fn function(&mut self, offset: UnitOffset, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        let result = match self.type_attr(offset)? {
            Some(t) => self.ty(t, true, depth + 1)?,
            None => 0,
        };
        let entry = self.unit.entry(offset).ok()?;
        let prototyped = matches!(
            entry.attr_value(gimli::DW_AT_prototyped),
            Some(AttributeValue::Flag(true))
        );
        let (mut params, mut variadic) = (Vec::new(), false);
        let unit = self.unit;
        let mut tree = unit.entries_tree(Some(offset)).ok()?;
        let root = tree.root().ok()?;
        let mut children = root.children();
        let mut param_types = Vec::new();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() == gimli::DW_TAG_formal_parameter {
                match e.attr_value(gimli::DW_AT_type) {
                    Some(AttributeValue::UnitRef(t)) => param_types.push(t),
                    _ => return None,
                }
            } else if e.tag() == gimli::DW_TAG_unspecified_parameters {
                variadic = true;
            }
        }
        for t in param_types {
            let p = self.ty(t, true, depth + 1)?;
            if p == 0 {
                return None;
            }
            params.push(p);
        }
        // C before C23: `int f()` says nothing of the parameters (C++ has no such functions,
        // and its compilers do not mark them prototyped).
        if !prototyped && self.c && params.is_empty() && !variadic {
            return Some(self.builder.unprototyped_function(CallConv::C, result));
        }
        Some(
            self.builder
                .function(CallConv::C, result, &params, variadic),
        )
    }

    /// The id of the struct or union at `offset`, declared (and its layout queued) if new.
    fn record(&mut self, offset: UnitOffset, union: bool) -> u32 {
        if let Some(&(id, _)) = self.records.get(&offset) {
            return id;
        }
        let name = self
            .string_attr(offset, gimli::DW_AT_name)
            .unwrap_or_default();
        let id = self.builder.declare_record(union, &name);
        self.records.insert(offset, (id, None));
        self.pending.push(offset);
        id
    }

    /// Gives the record at `offset` its layout, if it has one and has none yet. `None` if a
    /// field cannot be described (the record then stays incomplete: its name is still
    /// compared) or the record contains itself.
    fn define(&mut self, offset: UnitOffset, depth: usize) -> Option<()> {
        let &(id, state) = self.records.get(&offset)?;
        match state {
            Some(true) => return Some(()),
            Some(false) => return None,
            None => {}
        }
        if depth > MAX_DEPTH {
            return None;
        }
        self.records.insert(offset, (id, Some(false)));
        let entry = self.unit.entry(offset).ok()?;
        let declaration = matches!(
            entry.attr_value(gimli::DW_AT_declaration),
            Some(AttributeValue::Flag(true))
        );
        let size = self.udata(offset, gimli::DW_AT_byte_size);
        let (Some(size), false) = (size, declaration) else {
            // Only declared here: it stays incomplete.
            self.records.insert(offset, (id, Some(true)));
            return Some(());
        };
        let mut members = Vec::new();
        {
            let unit = self.unit;
            let mut tree = unit.entries_tree(Some(offset)).ok()?;
            let root = tree.root().ok()?;
            let mut children = root.children();
            while let Ok(Some(child)) = children.next() {
                let e = child.entry();
                if e.tag() != gimli::DW_TAG_member && e.tag() != gimli::DW_TAG_inheritance {
                    continue;
                }
                // C++ static members are declarations of variables, not fields.
                if matches!(
                    e.attr_value(gimli::DW_AT_external),
                    Some(AttributeValue::Flag(true))
                ) || matches!(
                    e.attr_value(gimli::DW_AT_declaration),
                    Some(AttributeValue::Flag(true))
                ) {
                    continue;
                }
                let Some(AttributeValue::UnitRef(ty)) = e.attr_value(gimli::DW_AT_type) else {
                    return None;
                };
                let name = e.attr_value(gimli::DW_AT_name).and_then(|v| {
                    Some(
                        self.dwarf
                            .attr_string(self.unit, v)
                            .ok()?
                            .to_string_lossy()
                            .ok()?
                            .into_owned(),
                    )
                });
                let bit_size = e
                    .attr_value(gimli::DW_AT_bit_size)
                    .and_then(|v| v.udata_value());
                let (byte, bit) = match (
                    e.attr_value(gimli::DW_AT_data_bit_offset)
                        .and_then(|v| v.udata_value()),
                    e.attr_value(gimli::DW_AT_data_member_location),
                ) {
                    (Some(bits), _) => (bits / 8, (bits % 8) as u16),
                    (None, Some(location)) => (location.udata_value()?, 0),
                    (None, None) => (0, 0), // union members
                };
                // DWARF 2/3 bit-fields (clang 14 still writes them): `DW_AT_bit_offset`
                // counts from the most significant bit of a storage unit of
                // `DW_AT_byte_size` bytes at the member location. On these little-endian
                // targets the field's first bit is then `8 * size - offset - width` up from
                // the unit's first byte.
                let (byte, bit) = match (bit_size, e.attr_value(gimli::DW_AT_bit_offset)) {
                    (Some(width), Some(from_top)) => {
                        let unit_size = e
                            .attr_value(gimli::DW_AT_byte_size)
                            .and_then(|v| v.udata_value())?;
                        let from_top = from_top.udata_value()?;
                        let lsb = (unit_size * 8).checked_sub(from_top)?.checked_sub(width)?;
                        let first = byte.checked_mul(8)?.checked_add(lsb)?;
                        (first / 8, (first % 8) as u16)
                    }
                    _ => (byte, bit),
                };
                members.push((
                    name.unwrap_or_default(),
                    ty,
                    byte,
                    bit,
                    u16::try_from(bit_size.unwrap_or(0)).ok()?,
                ));
            }
        }
        let mut fields = Vec::with_capacity(members.len());
        let mut align = 1u32;
        for (name, ty, offset_bytes, bit_offset, bit_size) in members {
            let t = self.ty(ty, true, depth + 1)?;
            if t == 0 {
                return None;
            }
            align = align.max(self.align.get(&t).copied().unwrap_or(1));
            fields.push(Field {
                name,
                ty: t,
                offset: offset_bytes,
                bit_offset,
                bit_size,
            });
        }
        if let Some(explicit) = self.udata(offset, gimli::DW_AT_alignment) {
            align = u32::try_from(explicit).ok()?;
        }
        if !align.is_power_of_two() {
            return None;
        }
        // Fields the format would refuse (past the end, a bit-field wider than its type)
        // leave the record incomplete rather than make the table invalid.
        for f in &fields {
            let field_size = self.builder.size_of(f.ty)?;
            let fits = if f.bit_size == 0 {
                f.offset.checked_add(field_size)? <= size
            } else {
                let kind = self.builder.kind_of(f.ty)?;
                matches!(kind, TypeKind::Int | TypeKind::Bool)
                    && u64::from(f.bit_size) <= field_size.saturating_mul(8)
                    && f.offset.checked_mul(8)? + u64::from(f.bit_offset) + u64::from(f.bit_size)
                        <= size.checked_mul(8)?
            };
            if !fits {
                return None;
            }
        }
        self.builder.define_record(id, size, align, &fields).ok()?;
        self.align.insert(id, align);
        self.records.insert(offset, (id, Some(true)));
        Some(())
    }
}
