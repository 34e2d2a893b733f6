//! Writer: builds the bytes of an SMF module from a description.
//!
//! The caller (the packer, or a compiler emitting SMF directly) decides the image layout:
//! it gives each loaded section its image address, typically from [`ImageLayout`]. The
//! builder lays out the file (tables first, then each loaded payload at a page-aligned file
//! offset), builds the string table and the exported-symbol hash table, and finally stores
//! the module hash. Its output always passes [`crate::Module::parse`], every symbol entry
//! included.

use std::collections::HashMap;

use zerocopy::IntoBytes;
use zerocopy::little_endian::{I64, U32, U64};

use crate::compress::{Compression, compress_payload};
use crate::error::Error;
use crate::raw::{self, NONE, PAGE_SIZE};
use crate::read::{Import, Reloc, Symbol, compute_module_hash};
use crate::types::*;

/// Hands out page-aligned image addresses for loaded sections, in order.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    next: u64,
    page_size: u64,
}

impl Default for ImageLayout {
    fn default() -> ImageLayout {
        ImageLayout::new()
    }
}

impl ImageLayout {
    /// A layout in pages of [`PAGE_SIZE`] (4 KiB).
    pub fn new() -> ImageLayout {
        ImageLayout::with_page_size(PAGE_SIZE)
    }

    /// A layout in pages of `page_size` bytes, which must be a page size the format allows
    /// (see [`ModuleBuilder::page_size`]); the builder's must be the same.
    pub fn with_page_size(page_size: u64) -> ImageLayout {
        ImageLayout { next: 0, page_size }
    }

    /// Reserves `size` bytes at the next page boundary and returns their image address.
    pub fn place(&mut self, size: u64) -> Result<u64, Error> {
        let vaddr = self.next;
        let page = self.page_size.max(1);
        self.next = vaddr
            .checked_add(size)
            .and_then(|end| end.checked_next_multiple_of(page))
            .ok_or_else(|| Error::Build(format!("image overflows placing {size:#x} bytes")))?;
        Ok(vaddr)
    }

    /// Total image size so far (a multiple of the page size).
    pub fn size(&self) -> u64 {
        self.next
    }
}

/// A loaded section to write.
#[derive(Debug, Clone)]
pub struct LoadedSection<'a> {
    pub kind: SectionKind,
    /// Up to 15 bytes of UTF-8, such as `.text`.
    pub name: &'a str,
    /// Page-aligned image address.
    pub vaddr: u64,
    /// Size in memory; at least `data.len()`, the rest is zero-filled.
    pub mem_size: u64,
    pub align: u64,
    /// File bytes (empty for bss).
    pub data: Vec<u8>,
}

/// Describes a module and writes it.
#[derive(Debug, Clone)]
pub struct ModuleBuilder<'a> {
    pub platform: Platform,
    pub arch: Arch,
    pub flags: ModuleFlags,
    /// Image offset of the entry point; setting it makes the module EXECUTABLE.
    pub entry_point: Option<u64>,
    pub source_hash: u64,
    /// The page size the sections' addresses are aligned to, recorded in the header: 4 KiB
    /// (the default) shifted left by 0 to 4, that is 4, 8, 16, 32 or 64 KiB. Loaded payloads
    /// start on this boundary in the file too.
    pub page_size: u64,
    /// Which loaded payloads to store compressed (none by default). A compressed payload
    /// is placed right after the tables instead of on a page of its own, and the module is
    /// flagged `COMPRESSED`; a payload compression does not shrink by an eighth is stored
    /// as it is.
    pub compression: Compression,
    sections: Vec<LoadedSection<'a>>,
    symbols: Vec<Symbol<'a>>,
    imports: Vec<Import<'a>>,
    relocs: Vec<Reloc>,
    relative: Vec<u64>,
    needed: Vec<&'a str>,
    init_array: Vec<u64>,
    fini_array: Vec<u64>,
    tls_callbacks: Vec<u64>,
    fingerprints: std::collections::BTreeMap<u32, u64>,
    opaque: Vec<(SectionKind, Vec<u8>)>,
}

impl<'a> ModuleBuilder<'a> {
    /// A module for x86-64 Linux with the PIC flag.
    pub fn new() -> ModuleBuilder<'a> {
        ModuleBuilder {
            platform: Platform::Linux,
            arch: Arch::X86_64,
            flags: ModuleFlags::PIC,
            entry_point: None,
            source_hash: 0,
            page_size: PAGE_SIZE,
            compression: Compression::None,
            sections: Vec::new(),
            symbols: Vec::new(),
            imports: Vec::new(),
            relocs: Vec::new(),
            relative: Vec::new(),
            needed: Vec::new(),
            init_array: Vec::new(),
            fini_array: Vec::new(),
            tls_callbacks: Vec::new(),
            fingerprints: std::collections::BTreeMap::new(),
            opaque: Vec::new(),
        }
    }

    /// Adds a loaded section and returns its index in the section table.
    pub fn add_section(&mut self, section: LoadedSection<'a>) -> u32 {
        self.sections.push(section);
        (self.sections.len() - 1) as u32
    }

    /// Adds a symbol; its `section` is an index returned by [`ModuleBuilder::add_section`].
    pub fn add_symbol(&mut self, symbol: Symbol<'a>) {
        self.symbols.push(symbol);
    }

    /// Adds an import and returns its index, for [`Reloc::import`].
    pub fn add_import(&mut self, import: Import<'a>) -> u32 {
        self.imports.push(import);
        (self.imports.len() - 1) as u32
    }

    pub fn add_reloc(&mut self, reloc: Reloc) {
        self.relocs.push(reloc);
    }

    /// Adds a `relative64` relocation packed in the `relr` table: at load, the module base is
    /// added to the 8-byte word at image offset `offset`, which must be a multiple of 8. The
    /// section payload must therefore hold the target's image offset there (the addend).
    pub fn add_relative(&mut self, offset: u64) {
        self.relative.push(offset);
    }

    pub fn add_needed(&mut self, library: &'a str) {
        self.needed.push(library);
    }

    /// Appends a constructor (image offset), after those already added.
    pub fn add_init(&mut self, offset: u64) {
        self.init_array.push(offset);
    }

    /// Appends a destructor (image offset), to run after those already added.
    pub fn add_fini(&mut self, offset: u64) {
        self.fini_array.push(offset);
    }

    /// Appends a TLS callback (image offset) of a Windows module, to run after those already
    /// added (`docs/FORMAT.md`, *TLS callbacks of Windows modules*).
    pub fn add_tls_callback(&mut self, offset: u64) {
        self.tls_callbacks.push(offset);
    }

    /// Records the fingerprint of the exported function at symbol index `symbol` (the order of
    /// [`ModuleBuilder::add_symbol`] calls, from 0), replacing one recorded before for it
    /// (`docs/FORMAT.md`, *Function fingerprints*). [`ModuleBuilder::write`] refuses one for
    /// a symbol that is not an exported function.
    pub fn add_fingerprint(&mut self, symbol: u32, fingerprint: u64) {
        self.fingerprints.insert(symbol, fingerprint);
    }

    /// Sets the `typeinfo` table (`docs/FORMAT.md`, *Type information*), which the `type_id`
    /// of symbols and imports point into: a symbol's `type_id` is an id `types` returned.
    pub fn set_types(&mut self, types: &crate::typeinfo::TypeTableBuilder) {
        self.opaque.retain(|(k, _)| *k != SectionKind::TypeInfo);
        self.opaque.push((SectionKind::TypeInfo, types.encode()));
    }

    /// Sets the payload of a table by its bytes: TypeInfo (checked by the reader like one
    /// [`ModuleBuilder::set_types`] made), Version or SrcMap.
    pub fn set_opaque(&mut self, kind: SectionKind, data: Vec<u8>) -> Result<(), Error> {
        if !matches!(
            kind,
            SectionKind::TypeInfo | SectionKind::Version | SectionKind::SrcMap
        ) {
            return Err(Error::Build(format!("{kind} is not an opaque table")));
        }
        self.opaque.retain(|(k, _)| *k != kind);
        self.opaque.push((kind, data));
        Ok(())
    }

    /// Sets the `version` table (`docs/FORMAT.md`, *Version table*): the module's version,
    /// name and dependencies, and the versions symbols' `version` fields name (indices from
    /// [`crate::Versions::index_of`]).
    pub fn set_versions(&mut self, versions: &crate::version::Versions) -> Result<(), Error> {
        self.set_opaque(SectionKind::Version, versions.encode()?)
    }

    /// Writes the module. The result is checked with [`crate::Module::parse`] before it is
    /// returned, so an inconsistent description is an error, never a broken file.
    pub fn write(&self) -> Result<Vec<u8>, Error> {
        let page_order = (0..=raw::MAX_PAGE_ORDER)
            .find(|&order| PAGE_SIZE << order == self.page_size)
            .ok_or_else(|| {
                Error::Build(format!(
                    "page size {:#x} is not 4 KiB shifted left by 0 to {}",
                    self.page_size,
                    raw::MAX_PAGE_ORDER
                ))
            })?;
        let page_size = self.page_size;
        let mut strtab = StringTable::default();
        let mut tables: Vec<(SectionKind, &str, Vec<u8>)> = Vec::new();

        if !self.symbols.is_empty() {
            let mut bytes = Vec::with_capacity(self.symbols.len() * size_of::<raw::Symbol>());
            for s in &self.symbols {
                let entry = raw::Symbol {
                    name_offset: U32::new(strtab.add(s.name)),
                    name_hash: U32::new(fnv1a32(s.name.as_bytes())),
                    kind: s.kind.as_raw(),
                    binding: s.binding.as_raw(),
                    visibility: s.visibility.as_raw(),
                    flags: 0,
                    section: U32::new(s.section.unwrap_or(NONE)),
                    value: U64::new(s.value),
                    size: U64::new(s.size),
                    type_id: U32::new(s.type_id),
                    version: U32::new(s.version),
                };
                bytes.extend_from_slice(entry.as_bytes());
            }
            tables.push((SectionKind::SymTab, ".symtab", bytes));
            tables.push((SectionKind::Hash, ".hash", self.hash_table()));
        }
        if !self.imports.is_empty() {
            let mut bytes = Vec::with_capacity(self.imports.len() * size_of::<raw::Import>());
            for i in &self.imports {
                let entry = raw::Import {
                    name_offset: U32::new(strtab.add(i.name)),
                    name_hash: U32::new(fnv1a32(i.name.as_bytes())),
                    kind: i.kind.as_raw(),
                    binding: i.binding.as_raw(),
                    reserved0: [0; 2],
                    type_id: U32::new(i.type_id),
                    version: U32::new(i.version),
                    reserved1: U32::new(0),
                };
                bytes.extend_from_slice(entry.as_bytes());
            }
            tables.push((SectionKind::Imports, ".imports", bytes));
        }
        if !self.relocs.is_empty() {
            let mut relocs = self.relocs.clone();
            relocs.sort_by_key(|r| r.offset);
            let mut bytes = Vec::with_capacity(relocs.len() * size_of::<raw::Reloc>());
            for r in &relocs {
                let entry = raw::Reloc {
                    offset: U64::new(r.offset),
                    kind: U32::new(r.kind.as_raw()),
                    import: U32::new(r.import.unwrap_or(NONE)),
                    addend: I64::new(r.addend),
                };
                bytes.extend_from_slice(entry.as_bytes());
            }
            tables.push((SectionKind::Reloc, ".reloc", bytes));
        }
        if !self.relative.is_empty() {
            let bytes = relr_words(&self.relative)?
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            tables.push((SectionKind::Relr, ".relr", bytes));
        }
        if !self.fingerprints.is_empty() {
            let bytes = self
                .fingerprints
                .iter()
                .flat_map(|(&symbol, &fingerprint)| {
                    raw::Fingerprint {
                        symbol: U32::new(symbol),
                        reserved: U32::new(0),
                        fingerprint: U64::new(fingerprint),
                    }
                    .as_bytes()
                    .to_vec()
                })
                .collect();
            tables.push((SectionKind::Fingerprints, ".fingerprints", bytes));
        }
        if !self.needed.is_empty() {
            let bytes = self
                .needed
                .iter()
                .flat_map(|n| strtab.add(n).to_le_bytes())
                .collect();
            tables.push((SectionKind::Needed, ".needed", bytes));
        }
        for (kind, name, offsets) in [
            (SectionKind::InitArray, ".init_array", &self.init_array),
            (SectionKind::FiniArray, ".fini_array", &self.fini_array),
            (
                SectionKind::TlsCallbacks,
                ".tls_callbacks",
                &self.tls_callbacks,
            ),
        ] {
            if !offsets.is_empty() {
                tables.push((
                    kind,
                    name,
                    offsets.iter().flat_map(|o| o.to_le_bytes()).collect(),
                ));
            }
        }
        for (kind, data) in &self.opaque {
            let name = match kind {
                SectionKind::TypeInfo => ".typeinfo",
                SectionKind::Version => ".version",
                _ => ".srcmap",
            };
            tables.push((*kind, name, data.clone()));
        }
        if !strtab.bytes.is_empty() {
            tables.insert(0, (SectionKind::StrTab, ".strtab", strtab.bytes));
        }
        // Compressed tables: a reader decompresses them before it parses the module
        // (`compress::expand_tables`).
        let mut tables_compressed = vec![false; tables.len()];
        if let Some(level) = self.compression.table_level() {
            for (table, compressed) in tables.iter_mut().zip(&mut tables_compressed) {
                if table.2.is_empty() {
                    continue;
                }
                if let Some(bytes) = compress_payload(&table.2, level)? {
                    table.2 = bytes;
                    *compressed = true;
                }
            }
        }

        let section_count = self.sections.len() + tables.len();
        let table_offset = size_of::<raw::Header>() as u64;
        let mut cursor = table_offset + (section_count * size_of::<raw::SectionHeader>()) as u64;
        let mut headers = Vec::with_capacity(section_count);
        let mut payloads: Vec<(u64, &[u8])> = Vec::new();
        for ((kind, name, data), compressed) in tables.iter().zip(&tables_compressed) {
            cursor = cursor.next_multiple_of(8);
            let mut header = section_header(*kind, name, cursor, data.len() as u64, 0, 0, 8)?;
            if *compressed {
                header.flags = U32::new(SectionFlags::COMPRESSED.0);
            }
            headers.push(header);
            payloads.push((cursor, data));
            cursor += data.len() as u64;
        }
        // Compressed payloads, by section, and where they go: after the tables, 8-aligned.
        let mut compressed: Vec<Option<(u64, Vec<u8>)>> = Vec::with_capacity(self.sections.len());
        for s in &self.sections {
            let packed = match self.compression.level_for(s.kind) {
                Some(level) if !s.data.is_empty() && s.kind != SectionKind::Bss => {
                    compress_payload(&s.data, level)?
                }
                _ => None,
            };
            compressed.push(packed.map(|bytes| {
                cursor = cursor.next_multiple_of(8);
                let at = cursor;
                cursor += bytes.len() as u64;
                (at, bytes)
            }));
        }
        let mut image_size = 0u64;
        let mut loaded_headers = Vec::with_capacity(self.sections.len());
        for (s, packed) in self.sections.iter().zip(&compressed) {
            if !s.kind.is_loaded() {
                return Err(Error::Build(format!(
                    "{} is not a loaded section kind",
                    s.kind
                )));
            }
            if let Some((file_offset, bytes)) = packed {
                let mut header = section_header(
                    s.kind,
                    s.name,
                    *file_offset,
                    bytes.len() as u64,
                    s.vaddr,
                    s.mem_size,
                    s.align,
                )?;
                header.flags = U32::new(header.flags.get() | SectionFlags::COMPRESSED.0);
                loaded_headers.push(header);
                payloads.push((*file_offset, bytes));
            } else {
                let file_offset = if s.data.is_empty() {
                    0
                } else {
                    cursor.next_multiple_of(page_size)
                };
                loaded_headers.push(section_header(
                    s.kind,
                    s.name,
                    file_offset,
                    s.data.len() as u64,
                    s.vaddr,
                    s.mem_size,
                    s.align,
                )?);
                if !s.data.is_empty() {
                    payloads.push((file_offset, &s.data));
                    cursor = file_offset + s.data.len() as u64;
                }
            }
            let end = s
                .vaddr
                .checked_add(s.mem_size)
                .ok_or_else(|| Error::Build(format!("section {} overflows", s.name)))?;
            image_size = image_size.max(end.next_multiple_of(page_size));
        }
        // Loaded sections come first in the table, so their indices are the builder's.
        loaded_headers.extend(headers);

        let mut flags = self.flags;
        if self.entry_point.is_some() {
            flags = flags.union(ModuleFlags::EXECUTABLE);
        }
        // Set exactly when a payload is compressed, as the reader requires.
        flags = ModuleFlags(flags.0 & !ModuleFlags::COMPRESSED.0);
        if compressed.iter().any(Option::is_some) || tables_compressed.contains(&true) {
            flags = flags.union(ModuleFlags::COMPRESSED);
        }
        let header = raw::Header {
            magic: raw::MAGIC,
            version_major: raw::VERSION_MAJOR,
            version_minor: raw::VERSION_MINOR,
            platform: self.platform.as_raw(),
            arch: self.arch.as_raw(),
            flags: U32::new(flags.0),
            section_count: U32::new(section_count as u32),
            section_table_offset: U64::new(table_offset),
            image_size: U64::new(image_size),
            entry_point: U64::new(self.entry_point.unwrap_or(0)),
            source_hash: U64::new(self.source_hash),
            module_hash: [0; 32],
            page_order,
            reserved: [0; 47],
        };
        let mut out = vec![0u8; cursor as usize];
        out[..size_of::<raw::Header>()].copy_from_slice(header.as_bytes());
        let mut at = table_offset as usize;
        for h in &loaded_headers {
            out[at..at + size_of::<raw::SectionHeader>()].copy_from_slice(h.as_bytes());
            at += size_of::<raw::SectionHeader>();
        }
        for (offset, data) in payloads {
            out[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        }
        let hash = compute_module_hash(&out)?;
        out[raw::MODULE_HASH_RANGE].copy_from_slice(&hash);
        // Every symbol entry too, local ones included, and the source map, which a parse
        // leaves to be read.
        let expanded = crate::compress::expand_tables(&out, &crate::Limits::default())
            .map_err(|e| Error::Build(format!("the description is inconsistent: {e}")))?;
        crate::Module::parse(expanded.as_deref().unwrap_or(&out))
            .and_then(|module| module.symbols().to_vec().map(drop).and(Ok(module)))
            .and_then(|module| module.source_map().map(drop))
            .map_err(|e| Error::Build(format!("the description is inconsistent: {e}")))?;
        Ok(out)
    }

    /// Builds the hash section: a bucket per exported symbol (at least one), chains in
    /// symbol order so that lookups are deterministic.
    fn hash_table(&self) -> Vec<u8> {
        let exported = self.symbols.iter().filter(|s| s.is_exported()).count();
        let bucket_count = exported.max(1);
        let mut buckets = vec![NONE; bucket_count];
        let mut chains = vec![NONE; self.symbols.len()];
        // Insert in reverse so each chain lists symbols in table order.
        for (i, s) in self
            .symbols
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, s)| s.is_exported())
        {
            let b = fnv1a32(s.name.as_bytes()) as usize % bucket_count;
            chains[i] = buckets[b];
            buckets[b] = i as u32;
        }
        let mut bytes = Vec::with_capacity(8 + 4 * (bucket_count + chains.len()));
        bytes.extend_from_slice(&(bucket_count as u32).to_le_bytes());
        bytes.extend_from_slice(&(chains.len() as u32).to_le_bytes());
        for word in buckets.iter().chain(&chains) {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

impl Default for ModuleBuilder<'_> {
    fn default() -> Self {
        ModuleBuilder::new()
    }
}

fn section_header(
    kind: SectionKind,
    name: &str,
    file_offset: u64,
    file_size: u64,
    vaddr: u64,
    mem_size: u64,
    align: u64,
) -> Result<raw::SectionHeader, Error> {
    let mut raw_name = [0u8; 16];
    if name.len() > 15 || name.contains('\0') {
        return Err(Error::Build(format!(
            "section name {name:?} must be at most 15 bytes without NUL"
        )));
    }
    raw_name[..name.len()].copy_from_slice(name.as_bytes());
    Ok(raw::SectionHeader {
        kind: U32::new(kind.as_raw()),
        flags: U32::new(kind.protection().0),
        file_offset: U64::new(file_offset),
        file_size: U64::new(file_size),
        vaddr: U64::new(vaddr),
        mem_size: U64::new(mem_size),
        align: U64::new(align),
        name: raw_name,
    })
}

/// String table under construction: offset 0 is the empty string, equal names share bytes.
#[derive(Default)]
struct StringTable {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl StringTable {
    fn add(&mut self, name: &str) -> u32 {
        if self.bytes.is_empty() {
            self.bytes.push(0);
        }
        if let Some(&offset) = self.offsets.get(name) {
            return offset;
        }
        let offset = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(name.to_owned(), offset);
        offset
    }
}

/// Encodes relocated offsets as `relr` words (FORMAT.md, *Packed relative relocations*): an
/// offset word, then bitmap words for as long as the next offsets lie within the 63 words
/// each bitmap covers.
fn relr_words(offsets: &[u64]) -> Result<Vec<u64>, Error> {
    const SPAN: u64 = 63 * 8;
    let mut offsets = offsets.to_vec();
    offsets.sort_unstable();
    offsets.dedup();
    if let Some(bad) = offsets.iter().find(|&&o| o % 8 != 0) {
        return Err(Error::Build(format!(
            "packed relative relocation at {bad:#x} is not 8-byte aligned"
        )));
    }
    let mut words = Vec::new();
    let mut rest = offsets.as_slice();
    while let Some((&offset, after)) = rest.split_first() {
        words.push(offset);
        rest = after;
        let mut next = offset.saturating_add(8);
        loop {
            let mut bitmap = 0u64;
            while let Some((&offset, after)) = rest.split_first() {
                let Some(distance) = offset.checked_sub(next).filter(|&d| d < SPAN) else {
                    break;
                };
                bitmap |= 1 << (distance / 8);
                rest = after;
            }
            if bitmap == 0 {
                break;
            }
            words.push(bitmap << 1 | 1);
            next = next.saturating_add(SPAN);
        }
    }
    Ok(words)
}
