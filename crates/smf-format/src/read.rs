//! Validating reader.
//!
//! [`Module::parse`] checks every structure of the file before it returns: offsets and sizes
//! with checked arithmetic against the file length, counts against what the file can hold and
//! against [`Limits`], every enum value, every name, every index, every relocation target.
//! A [`Module`] therefore only ever describes a self-consistent file, and the loader can use
//! its values without re-checking them.

use core::ops::Range;
use zerocopy::FromBytes;
use zerocopy::little_endian::{U32, U64};

use crate::error::Error;
use crate::raw::{self, MODULE_HASH_RANGE, NONE, PAGE_SIZE, PDATA_ENTRY_SIZE};
use crate::types::*;

/// Upper bounds applied while parsing, so that a crafted file cannot make the reader or the
/// loader allocate or map unreasonable amounts of memory.
///
/// Start from [`Limits::default`] (the values `docs/FORMAT.md` lists) and change what you
/// need with the `with_*` setters; the struct is `#[non_exhaustive]`, so that new limits can
/// be added without breaking callers:
///
/// ```
/// let limits = smf_format::Limits::default()
///     .with_max_symbols(1 << 16)
///     .with_max_image_size(64 << 20);
/// assert_eq!(limits.max_symbols, 1 << 16);
/// assert_eq!(limits.max_sections, smf_format::Limits::default().max_sections);
/// ```
///
/// A struct literal outside this crate would stop compiling when a limit is added, so it is
/// refused now:
///
/// ```compile_fail,E0639
/// let limits = smf_format::Limits {
///     max_image_size: 4 << 30,
///     max_sections: 1024,
///     max_symbols: 1 << 22,
///     max_imports: 1 << 20,
///     max_relocations: 1 << 24,
///     max_name_len: 1 << 16,
/// };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Total size of the module image in memory, in bytes.
    pub max_image_size: u64,
    /// Entries of the section table.
    pub max_sections: u32,
    /// Entries of the symbol table.
    pub max_symbols: u64,
    /// Entries of the import table.
    pub max_imports: u64,
    /// Entries of the relocation table; also words of the packed relative relocations.
    pub max_relocations: u64,
    /// Longest symbol, import or library name, in bytes. Bounds the work of reading names,
    /// which may share bytes of the string table.
    pub max_name_len: u32,
    /// Bytes all compressed payloads of a module decompress to, together: what a small
    /// compressed file can make a loader write (each payload is also bounded by its
    /// section's memory size, and that by the image size).
    pub max_decompressed_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_image_size: 4 << 30,
            max_sections: 1024,
            max_symbols: 1 << 22,
            max_imports: 1 << 20,
            max_relocations: 1 << 24,
            max_name_len: 1 << 16,
            max_decompressed_size: 1 << 30,
        }
    }
}

impl Limits {
    /// These limits with [`Limits::max_image_size`] set to `bytes`.
    #[must_use]
    pub const fn with_max_image_size(mut self, bytes: u64) -> Limits {
        self.max_image_size = bytes;
        self
    }

    /// These limits with [`Limits::max_sections`] set to `count`.
    #[must_use]
    pub const fn with_max_sections(mut self, count: u32) -> Limits {
        self.max_sections = count;
        self
    }

    /// These limits with [`Limits::max_symbols`] set to `count`.
    #[must_use]
    pub const fn with_max_symbols(mut self, count: u64) -> Limits {
        self.max_symbols = count;
        self
    }

    /// These limits with [`Limits::max_imports`] set to `count`.
    #[must_use]
    pub const fn with_max_imports(mut self, count: u64) -> Limits {
        self.max_imports = count;
        self
    }

    /// These limits with [`Limits::max_relocations`] set to `count`.
    #[must_use]
    pub const fn with_max_relocations(mut self, count: u64) -> Limits {
        self.max_relocations = count;
        self
    }

    /// These limits with [`Limits::max_name_len`] set to `bytes`.
    #[must_use]
    pub const fn with_max_name_len(mut self, bytes: u32) -> Limits {
        self.max_name_len = bytes;
        self
    }

    /// These limits with [`Limits::max_decompressed_size`] set to `bytes`.
    #[must_use]
    pub const fn with_max_decompressed_size(mut self, bytes: u64) -> Limits {
        self.max_decompressed_size = bytes;
        self
    }
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    pub version_major: u8,
    pub version_minor: u8,
    pub platform: Platform,
    pub arch: Arch,
    pub flags: ModuleFlags,
    /// The page size the module is laid out for: [`PAGE_SIZE`] shifted left by the header's
    /// `page_order` (4 KiB to 64 KiB). A loader on a kernel with larger pages cannot give each
    /// section its own protection, and refuses the module.
    pub page_size: u64,
    /// Size of the module image in memory, a multiple of `page_size`.
    pub image_size: u64,
    /// Image offset of the entry point; present only in executable modules.
    pub entry_point: Option<u64>,
    pub source_hash: u64,
    pub module_hash: [u8; 32],
}

/// A section table entry with its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'data> {
    pub index: u32,
    pub kind: SectionKind,
    pub flags: SectionFlags,
    pub name: &'data str,
    pub file_offset: u64,
    pub file_size: u64,
    /// Image offset of a loaded section; 0 for tables.
    pub vaddr: u64,
    /// Size in memory of a loaded section (bytes past `file_size` are zero); 0 for tables.
    pub mem_size: u64,
    pub align: u64,
    /// The file bytes of the section. Empty for a loaded section of a module parsed from its
    /// head alone ([`Module::parse_head`]), whose payloads lie past the bytes it was given.
    pub data: &'data [u8],
}

impl<'data> Section<'data> {
    /// The image range `vaddr..vaddr + mem_size`.
    pub fn image_range(&self) -> core::ops::Range<u64> {
        self.vaddr..self.vaddr + self.mem_size
    }

    /// Whether the payload is compressed ([`SectionFlags::COMPRESSED`]): then `data` holds
    /// the compressed bytes, and [`Section::compressed`] or [`Section::payload`] the rest.
    pub fn is_compressed(&self) -> bool {
        crate::compress::is_compressed(self.flags)
    }

    /// The compressed payload, validated by the reader, if the section is compressed and its
    /// bytes were parsed.
    pub fn compressed(&self) -> Option<crate::compress::Compressed<'data>> {
        if !self.is_compressed() {
            return None;
        }
        crate::compress::check_payload(self.data, self.mem_size, &String::new).ok()
    }

    /// The section's initialised bytes (those before the zero-filled rest of `mem_size`):
    /// `data`, decompressed if the section is compressed.
    pub fn payload(&self) -> Result<std::borrow::Cow<'data, [u8]>, Error> {
        crate::compress::payload(self.flags, self.data, self.mem_size)
    }

    /// How many bytes of the image the payload fills: `file_size`, or the decompressed size.
    pub fn initialised_size(&self) -> u64 {
        self.compressed().map_or(self.file_size, |c| c.raw_size)
    }
}

/// A symbol defined by the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'data> {
    pub name: &'data str,
    pub kind: SymbolKind,
    pub binding: Binding,
    pub visibility: Visibility,
    /// Index of the loaded section holding the symbol; `None` when `value` is not an image
    /// offset (a constant's value, or a type, trait or actor identifier).
    pub section: Option<u32>,
    pub value: u64,
    pub size: u64,
    pub type_id: u32,
    pub version: u32,
}

/// Where a symbol-table entry lies, as [`Symbols::placed`] reads it without decoding the
/// entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub kind: SymbolKind,
    pub binding: Binding,
    /// Index of the loaded section holding it.
    pub section: u32,
    pub value: u64,
    pub size: u64,
}

/// One symbol-table entry as [`Symbols::summaries`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Its binding, if a known value.
    pub binding: Option<Binding>,
    /// The name hash stored in it ([`Symbols::stored_name_hash`]).
    pub name_hash: u32,
    /// Where it lies, if in a loaded section.
    pub placed: Option<Placed>,
}

impl Symbol<'_> {
    /// Whether other modules and the host may see the symbol.
    pub fn is_exported(&self) -> bool {
        self.binding != Binding::Local
    }
}

/// A symbol the module needs from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Import<'data> {
    pub name: &'data str,
    pub kind: ImportKind,
    /// `Global` must resolve; `Weak` resolves to 0 when nothing defines it.
    pub binding: Binding,
    pub type_id: u32,
    pub version: u32,
}

/// A load-time relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    /// Image offset of the 8 bytes to write.
    pub offset: u64,
    pub kind: RelocKind,
    /// Import index for [`RelocKind::Abs64`]; `None` for the other kinds.
    pub import: Option<u32>,
    pub addend: i64,
}

impl Reloc {
    /// The entry as the file holds it; `None` only for an entry the reader would refuse.
    #[inline]
    fn decode(raw: &raw::Reloc) -> Option<Reloc> {
        let kind = RelocKind::try_from(raw.kind.get()).ok()?;
        Some(Reloc {
            offset: raw.offset.get(),
            kind,
            import: (kind == RelocKind::Abs64).then(|| raw.import.get()),
            addend: raw.addend.get(),
        })
    }

    /// An entry of a table `Module::parse` validated, whose kind is therefore known.
    #[inline]
    fn decode_validated(raw: &raw::Reloc) -> Reloc {
        Reloc::decode(raw).unwrap_or_else(|| {
            debug_assert!(
                false,
                "an unvalidated relocation reached a Relocations view"
            );
            Reloc {
                offset: raw.offset.get(),
                kind: RelocKind::Relative64,
                import: None,
                addend: raw.addend.get(),
            }
        })
    }
}

/// The validated relocation table, read in place: a module with ten thousand relocations
/// keeps no copy of them, and each is decoded as it is used (once, by a loader). Only
/// [`Module::parse`] makes one, after checking every entry.
#[derive(Clone, Copy)]
pub struct Relocations<'data> {
    raw: &'data [raw::Reloc],
}

impl<'data> Relocations<'data> {
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Reloc> {
        self.raw.get(index).map(Reloc::decode_validated)
    }

    /// The relocations in file order.
    #[inline]
    pub fn iter(&self) -> RelocIter<'data> {
        RelocIter(self.raw.iter())
    }
}

/// The relocations of a [`Relocations`] table, decoded one at a time.
#[derive(Debug, Clone)]
pub struct RelocIter<'data>(core::slice::Iter<'data, raw::Reloc>);

// `#[inline]` on these small functions lets a loader's relocation loop (in another crate)
// decode each entry in registers instead of through a returned copy in memory.
impl Iterator for RelocIter<'_> {
    type Item = Reloc;
    #[inline]
    fn next(&mut self) -> Option<Reloc> {
        self.0.next().map(Reloc::decode_validated)
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for RelocIter<'_> {}

impl DoubleEndedIterator for RelocIter<'_> {
    fn next_back(&mut self) -> Option<Reloc> {
        self.0.next_back().map(Reloc::decode_validated)
    }
}

impl<'data> IntoIterator for Relocations<'data> {
    type Item = Reloc;
    type IntoIter = RelocIter<'data>;
    #[inline]
    fn into_iter(self) -> RelocIter<'data> {
        self.iter()
    }
}

impl core::fmt::Debug for Relocations<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<[Reloc]> for Relocations<'_> {
    fn eq(&self, other: &[Reloc]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
    }
}

impl PartialEq<&[Reloc]> for Relocations<'_> {
    fn eq(&self, other: &&[Reloc]) -> bool {
        *self == **other
    }
}

/// The validated `relr` table, read in place: the image offsets of the `relative64`
/// relocations whose addend is the word already at that offset (FORMAT.md, *Packed relative
/// relocations*). A loader adds the module base to each of these words.
#[derive(Debug, Clone, Copy)]
pub struct RelativeRelocations<'data> {
    words: &'data [U64],
    count: usize,
}

impl<'data> RelativeRelocations<'data> {
    /// How many words are relocated (not how many table words encode them).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The table's words, as stored.
    pub fn words(&self) -> &'data [U64] {
        self.words
    }

    /// The relocated image offsets, in ascending order.
    #[inline]
    pub fn iter(&self) -> RelativeIter<'data> {
        RelativeIter {
            words: self.words.iter(),
            next: 0,
            start: 0,
            bits: 0,
        }
    }
}

impl<'data> IntoIterator for RelativeRelocations<'data> {
    type Item = u64;
    type IntoIter = RelativeIter<'data>;
    #[inline]
    fn into_iter(self) -> RelativeIter<'data> {
        self.iter()
    }
}

/// The image offsets of a [`RelativeRelocations`] table, decoded one at a time.
#[derive(Debug, Clone)]
pub struct RelativeIter<'data> {
    words: core::slice::Iter<'data, U64>,
    /// Where the next bitmap word's bit 1 points.
    next: u64,
    /// Where the current bitmap's bit 1 points, and its bits not yet returned (shifted).
    start: u64,
    bits: u64,
}

impl Iterator for RelativeIter<'_> {
    type Item = u64;
    #[inline]
    fn next(&mut self) -> Option<u64> {
        loop {
            if self.bits != 0 {
                let bit = u64::from(self.bits.trailing_zeros());
                self.bits &= self.bits - 1;
                return Some(self.start.wrapping_add(8 * bit));
            }
            let word = self.words.next()?.get();
            if word & 1 == 0 {
                self.next = word.wrapping_add(8);
                return Some(word);
            }
            self.start = self.next;
            self.bits = word >> 1;
            self.next = self.next.wrapping_add(63 * 8);
        }
    }
}

/// A module's symbol table, decoded entry by entry as it is read (nothing is copied).
/// Entries a load uses (the exported ones) were validated by [`Module::parse`]; any other
/// entry is checked when read, and a broken one reads as an [`Error`] naming it.
#[derive(Clone, Copy)]
pub struct Symbols<'m, 'data> {
    module: &'m Module<'data>,
}

impl<'m, 'data> Symbols<'m, 'data> {
    /// The number of entries, broken ones included.
    pub fn len(&self) -> usize {
        self.module.symtab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.module.symtab.is_empty()
    }

    /// Entry `index`, decoded and checked; `None` past the end of the table.
    pub fn get(&self, index: usize) -> Option<Result<Symbol<'data>, Error>> {
        self.module.symbol(index)
    }

    /// Every entry in table order, each decoded and checked.
    pub fn iter(&self) -> SymbolIter<'m, 'data> {
        SymbolIter {
            module: self.module,
            range: 0..self.len(),
        }
    }

    /// The entries that decode, with their indices, in table order; broken ones are skipped.
    pub fn valid(self) -> impl Iterator<Item = (usize, Symbol<'data>)> + 'm {
        let module = self.module;
        module
            .symtab
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| module.decode_symbol(s).ok().map(|symbol| (i, symbol)))
    }

    /// Where each entry that lies in a loaded section lies, with its index, in table order,
    /// read without decoding the rest: its kind and binding are known values, its section
    /// is loaded and `value..value + size` lies inside it. The name, the type and the rules
    /// that tie kinds to sections are not checked: [`Symbols::get`] decodes and checks the
    /// entries a caller goes on to use. For arranging a whole table by address, where
    /// decoding every name would cost more than the rest.
    pub fn placed(self) -> impl Iterator<Item = (usize, Placed)> + 'm {
        let module = self.module;
        module
            .symtab
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| Some((i, module.place(s)?)))
    }

    /// Where entry `index` lies, as [`Symbols::placed`] reads it: `None` past the table or
    /// where the entry does not lie in a loaded section.
    pub fn placed_at(&self, index: usize) -> Option<Placed> {
        self.module.place(self.module.symtab.get(index)?)
    }

    /// Every entry in table order, with its index, binding (`None` where it is not a known
    /// value), stored name hash and, where it lies in a loaded section, where
    /// ([`Symbols::placed`]): what arranging a whole table needs of each entry, in one pass
    /// and without decoding names.
    pub fn summaries(self) -> impl Iterator<Item = (usize, Summary)> + 'm {
        let module = self.module;
        module.symtab.iter().enumerate().map(move |(i, s)| {
            (
                i,
                Summary {
                    binding: Binding::try_from(s.binding).ok(),
                    name_hash: s.name_hash.get(),
                    placed: module.place(s),
                },
            )
        })
    }

    /// The exported symbols (validated by [`Module::parse`]), with their indices, in table
    /// order. Local entries are passed over without being decoded.
    pub fn exported(self) -> impl Iterator<Item = (usize, Symbol<'data>)> + 'm {
        let module = self.module;
        module
            .symtab
            .iter()
            .enumerate()
            .filter(|(_, s)| Module::raw_is_exported(s))
            .filter_map(move |(i, s)| module.decode_symbol(s).ok().map(|symbol| (i, symbol)))
    }

    /// The index and stored name hash (FNV-1a, checked by [`Module::parse`]) of each exported
    /// symbol, in table order, without decoding the symbols: for an index kept by hash.
    pub fn exported_hashes(self) -> impl Iterator<Item = (usize, u32)> + 'm {
        self.module
            .symtab
            .iter()
            .enumerate()
            .filter(|(_, s)| Module::raw_is_exported(s))
            .map(|(i, s)| (i, s.name_hash.get()))
    }

    /// The name hash stored in entry `index`: for an exported symbol the FNV-1a hash of its
    /// name (checked by [`Module::parse`]); for a local one what the writer stored, which no
    /// lookup reads and the parse does not check (a hint to find the symbol by, to be
    /// confirmed by comparing names).
    pub fn stored_name_hash(&self, index: usize) -> Option<u32> {
        self.module.symtab.get(index).map(|s| s.name_hash.get())
    }

    /// The name of entry `index` alone, without decoding the rest of the entry: `None` past
    /// the table or where the name is not valid (see [`Module::symbol`] for why).
    pub fn name(&self, index: usize) -> Option<&'data str> {
        let s = self.module.symtab.get(index)?;
        let name = self
            .module
            .strtab
            .at(s.name_offset.get(), self.module.max_name_len)
            .ok()?;
        (!name.is_empty()).then_some(name)
    }

    /// Every entry decoded, or the error of the first broken one.
    pub fn to_vec(&self) -> Result<Vec<Symbol<'data>>, Error> {
        self.iter().collect()
    }
}

impl core::fmt::Debug for Symbols<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'m, 'data> IntoIterator for Symbols<'m, 'data> {
    type Item = Result<Symbol<'data>, Error>;
    type IntoIter = SymbolIter<'m, 'data>;

    fn into_iter(self) -> SymbolIter<'m, 'data> {
        self.iter()
    }
}

/// The entries of a [`Symbols`] table, each decoded and checked as it is reached.
#[derive(Clone)]
pub struct SymbolIter<'m, 'data> {
    module: &'m Module<'data>,
    range: Range<usize>,
}

impl<'data> Iterator for SymbolIter<'_, 'data> {
    type Item = Result<Symbol<'data>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.range.next()?;
        self.module.symbol(i)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl ExactSizeIterator for SymbolIter<'_, '_> {}

impl DoubleEndedIterator for SymbolIter<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let i = self.range.next_back()?;
        self.module.symbol(i)
    }
}

/// A parsed SMF module, borrowing the file bytes: everything a load uses validated, the
/// remaining symbol entries checked as they are read (see [`Module::symbols`]).
#[derive(Debug, Clone)]
pub struct Module<'data> {
    /// The bytes parsed: the whole file, or its head (see [`Module::parse_head`]).
    data: &'data [u8],
    /// Length of the whole file.
    file_size: u64,
    header: HeaderInfo,
    sections: Vec<Section<'data>>,
    /// The symbol table, read in place: [`Module::parse`] validates the exported entries
    /// (what a load uses); the others are decoded and checked when read.
    symtab: &'data [raw::Symbol],
    strtab: Strings<'data>,
    max_name_len: u32,
    exported: usize,
    buckets: &'data [U32],
    chains: &'data [U32],
    imports: Vec<Import<'data>>,
    relocs: &'data [raw::Reloc],
    relr: &'data [U64],
    relr_count: usize,
    relocated: Vec<Range<u64>>,
    needed: Vec<&'data str>,
    init_array: Vec<u64>,
    fini_array: Vec<u64>,
    tls_callbacks: Vec<u64>,
    /// The `fingerprints` table, checked: sorted by symbol, each an exported function.
    fingerprints: &'data [raw::Fingerprint],
    /// The validated `typeinfo` table (empty when the module has none).
    types: crate::typeinfo::TypeInfo<'data>,
}

/// Where the file's loaded payloads begin, when everything else lies before them: the
/// page-aligned offset of the first payload, provided the header, the section table and
/// every table section end at or before it and every other payload starts at or after it.
/// The writer lays files out so. `None` for any other layout, a file without payloads, or a
/// file too damaged to tell.
///
/// This only reads the header and the section table; [`Module::parse_head`] validates the
/// head it delimits. A loader uses it to keep a view of the tables alone, apart from the
/// payloads it maps as the image.
pub fn head_len(data: &[u8]) -> Option<u64> {
    head_len_of(data, data.len() as u64)
}

/// [`head_len`] of a file of `file_size` bytes, of which `prefix` holds the start: `None`
/// also when the header and the section table are not all in `prefix`. A loader reads the
/// first page of a file with it, to know how large a mapping to make before making it.
pub fn head_len_of(prefix: &[u8], file_size: u64) -> Option<u64> {
    let data = prefix;
    let (head, _) = raw::Header::ref_from_prefix(data).ok()?;
    // Compressed payloads are read where they lie, not mapped: such a module has no head.
    if head.magic != raw::MAGIC || ModuleFlags(head.flags.get()).contains(ModuleFlags::COMPRESSED) {
        return None;
    }
    let table_offset = usize::try_from(head.section_table_offset.get()).ok()?;
    let count = usize::try_from(head.section_count.get()).ok()?;
    let table_end = count
        .checked_mul(size_of::<raw::SectionHeader>())?
        .checked_add(table_offset)?;
    let table = <[raw::SectionHeader]>::ref_from_bytes(data.get(table_offset..table_end)?).ok()?;
    let mut tables_end = table_end.max(size_of::<raw::Header>()) as u64;
    let mut payloads_start = u64::MAX;
    for s in table {
        let kind = SectionKind::try_from(s.kind.get()).ok()?;
        let (offset, size) = (s.file_offset.get(), s.file_size.get());
        if size == 0 {
            continue;
        }
        if kind.is_loaded() {
            payloads_start = payloads_start.min(offset);
        } else {
            tables_end = tables_end.max(offset.checked_add(size)?);
        }
    }
    (payloads_start != u64::MAX
        && payloads_start % page_size(data)? == 0
        && tables_end <= payloads_start
        && payloads_start < file_size)
        .then_some(payloads_start)
}

/// Computes the module hash of a complete file: BLAKE3 of the file with the 32 bytes of the
/// `module_hash` field taken as zero. The caller must pass at least a whole header.
///
/// Hashed on the calling thread. (Hashing large files on two threads was tried twice: a
/// pool of threads kept for the process spun in `sched_yield` between loads, taking CPU from
/// everything else; a thread started per call was scheduled late on a busy machine, and the
/// hash of SQLite's 1 MB module then took milliseconds instead of a few hundred µs.)
pub fn compute_module_hash(data: &[u8]) -> Result<[u8; 32], Error> {
    let header_len = size_of::<raw::Header>();
    if data.len() < header_len {
        return Err(Error::Truncated {
            what: "header",
            needed: header_len as u64,
            size: data.len() as u64,
        });
    }
    let (mut hasher, len) = hasher_past_field(data);
    hasher.update(&data[len..]);
    Ok(*hasher.finalize().as_bytes())
}

/// A hasher fed the first bytes of `data` (up to 16 KiB) with the `module_hash` field zeroed,
/// and the number of bytes fed.
fn hasher_past_field(data: &[u8]) -> (blake3::Hasher, usize) {
    // The first bytes go through a copy with the field zeroed, a whole number of BLAKE3
    // chunks (16 KiB, 16 chunks). Fed in three pieces instead (the bytes before the field,
    // zeros, the rest), the hasher would hash the first chunk alone and then only small
    // subtrees while its chunk count grows, using a fraction of its SIMD lanes; that made
    // hashing a 20 KB module take twice as long as hashing the same bytes at once.
    const FIRST: usize = 16 << 10;
    let mut first = [0u8; FIRST];
    let len = data.len().min(FIRST);
    first[..len].copy_from_slice(&data[..len]);
    first[MODULE_HASH_RANGE].fill(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&first[..len]);
    (hasher, len)
}

/// How many names [`fnv1a32_lanes`] hashes at once.
const LANES: usize = 4;

/// [`fnv1a32`] of each of `names`, computed side by side: one name's hash is a chain of
/// dependent multiplications, and the processor runs the chains of several at once.
fn fnv1a32_lanes(names: [&[u8]; LANES]) -> [u32; LANES] {
    let step = |hash: u32, byte: u8| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    let mut hashes = [fnv1a32(&[]); LANES];
    // The bytes all names have side by side, zipped so that no byte is bounds-checked, then
    // the rest of each name on its own.
    let common = names.iter().map(|n| n.len()).min().unwrap_or(0);
    let [a, b, c, d] = names.map(|n| n.get(..common).unwrap_or(n));
    for (((&a, &b), &c), &d) in a.iter().zip(b).zip(c).zip(d) {
        hashes = [
            step(hashes[0], a),
            step(hashes[1], b),
            step(hashes[2], c),
            step(hashes[3], d),
        ];
    }
    for (hash, name) in hashes.iter_mut().zip(names) {
        let rest = name.get(common..).unwrap_or(&[]);
        *hash = rest.iter().fold(*hash, |hash, &byte| step(hash, byte));
    }
    hashes
}

/// The page size in the header at the start of `data`, if it has one and it is valid.
fn page_size(data: &[u8]) -> Option<u64> {
    let head = raw::Header::ref_from_prefix(data).ok()?.0;
    (head.page_order <= raw::MAX_PAGE_ORDER).then(|| PAGE_SIZE << head.page_order)
}

fn round_up_page(value: u64, page_size: u64) -> Option<u64> {
    value.checked_next_multiple_of(page_size)
}

/// The string table. The parse checks that it is UTF-8 as a whole, in one pass
/// ([`Strings::checked`]): on SQLite's module (1,757 symbols, 334 names read by a load) that
/// pass cost a quarter of the time of checking each name read. A table that is not UTF-8 as
/// a whole (some name in it is not) has each name checked when it is read.
#[derive(Clone, Copy)]
pub(crate) struct Strings<'data> {
    bytes: &'data [u8],
    /// The whole table, when it was checked to be UTF-8 in one pass ([`Strings::checked`]):
    /// a name is then a slice of it, checked again only at its ends.
    text: Option<&'data str>,
}

impl core::fmt::Debug for Strings<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Strings({} bytes)", self.bytes.len())
    }
}

impl<'data> Strings<'data> {
    fn new(bytes: &'data [u8]) -> Self {
        Strings { bytes, text: None }
    }

    /// The same table, checked to be UTF-8 as a whole: one pass over the table instead of
    /// one check per name read. A table that is not UTF-8 as a whole (some name is not) is
    /// left to the check per name.
    fn checked(self) -> Self {
        Strings {
            text: core::str::from_utf8(self.bytes).ok(),
            ..self
        }
    }

    /// Reads the NUL-terminated UTF-8 string at `offset`, at most `max_len` bytes long.
    #[inline]
    fn at(&self, offset: u32, max_len: u32) -> Result<&'data str, NameProblem> {
        let start = offset as usize;
        let tail = self
            .bytes
            .get(start..)
            .filter(|t| !t.is_empty())
            .ok_or(NameProblem::Outside(self.bytes.len()))?;
        let window = &tail[..tail.len().min(max_len as usize + 1)];
        let end = nul_position(window).ok_or(if window.len() < tail.len() {
            NameProblem::TooLong
        } else {
            NameProblem::Unterminated
        })?;
        match self.text {
            // A name ends at a NUL, which ends a character; it starts inside one only if its
            // first byte continues a character, when it is not UTF-8 on its own either.
            Some(text) => text.get(start..start + end).ok_or(NameProblem::NotUtf8),
            None => core::str::from_utf8(&tail[..end]).map_err(|_| NameProblem::NotUtf8),
        }
    }

    /// The name at `offset`, or the error that says why there is none, located by `location`.
    fn name(
        &self,
        offset: u32,
        max_len: u32,
        location: impl Fn() -> String,
    ) -> Result<&'data str, Error> {
        self.at(offset, max_len)
            .map_err(|problem| problem.error(location(), offset, max_len))
    }
}

/// The index of the first NUL byte of `bytes`, looked for eight bytes at a time: a search
/// byte by byte had been about half of the instructions of checking an exported symbol
/// (callgrind, loads of SQLite's module), and the standard library's search costs as much on
/// names this short.
#[inline]
fn nul_position(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        // A byte's high bit is set where the byte is zero, and only above a zero byte where
        // it is not: the lowest one set marks the first NUL.
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(i * 8 + zeros.trailing_zeros() as usize / 8);
        }
    }
    let at = words.len() * 8;
    rest.iter().position(|&b| b == 0).map(|p| at + p)
}

/// Why [`Strings::at`] found no name: small, so that the loops over names pass it cheaply, and
/// made into a message only when a file is refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameProblem {
    /// Outside a table of this many bytes.
    Outside(usize),
    TooLong,
    Unterminated,
    NotUtf8,
}

impl NameProblem {
    #[cold]
    fn error(self, location: String, offset: u32, max_len: u32) -> Error {
        let problem = match self {
            NameProblem::Outside(len) => {
                format!("name offset {offset:#x} is outside the string table ({len:#x} bytes)")
            }
            NameProblem::TooLong => {
                format!("name at offset {offset:#x} is longer than the limit of {max_len} bytes")
            }
            NameProblem::Unterminated => {
                format!("name at offset {offset:#x} is not NUL-terminated")
            }
            NameProblem::NotUtf8 => format!("name at offset {offset:#x} is not valid UTF-8"),
        };
        Error::malformed(location, problem)
    }
}

/// Why [`Module::decode_symbol`] refused a symbol.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SymbolProblem {
    Name(NameProblem),
    EmptyName,
    Kind,
    Binding,
    NameHash,
    Visibility,
    Flags,
    /// A function or data symbol with no section.
    NoSection,
    NotLoaded,
    /// A function in a loaded section that is not code.
    NotCode,
    /// Value and size not inside the section.
    Range,
    /// `type_id` is not 0 and not a type of the `typeinfo` table.
    TypeId,
    /// `type_id` is a function type for a data symbol, or the reverse.
    TypeKind,
    /// A function of size 0 at its section's end: its address would be past the code.
    FunctionAtEnd,
}

/// Where load-time relocations may write (the loaded sections of kinds that accept them),
/// and the runs of bytes they do write.
struct Targets {
    /// Loaded sections: index, image range and kind.
    sections: Vec<(usize, Range<u64>, SectionKind)>,
    /// Runs of written bytes, each inside one section, ended where a whole page goes
    /// unwritten.
    runs: Vec<Range<u64>>,
    /// The image range of the section of the last relocation checked (accepted), and the run
    /// being written in it.
    current: Option<(Range<u64>, Range<u64>)>,
}

/// Whether the pages of `a` and `b` overlap or are next to each other.
fn pages_touch(a: &Range<u64>, b: &Range<u64>) -> bool {
    let pages = |r: &Range<u64>| r.start / PAGE_SIZE..r.end.div_ceil(PAGE_SIZE);
    let (a, b) = (pages(a), pages(b));
    a.start <= b.end && b.start <= a.end
}

impl Targets {
    fn new(sections: &[Section<'_>]) -> Self {
        Targets {
            sections: sections
                .iter()
                .filter(|s| s.kind.is_loaded())
                .map(|s| (s.index as usize, s.image_range(), s.kind))
                .collect(),
            runs: Vec::new(),
            current: None,
        }
    }

    /// Checks that the 8 bytes at image offset `offset` lie inside one loaded section that
    /// relocations may write.
    #[inline]
    fn check(&mut self, offset: u64, location: &dyn Fn() -> String) -> Result<(), Error> {
        let end = offset
            .checked_add(8)
            .ok_or_else(|| Error::malformed(location(), format!("offset {offset:#x} overflows")))?;
        if self.within_current(offset, end) {
            return Ok(());
        }
        self.check_new(offset, end, location)
    }

    /// Whether `offset..end` lies in the section of the last relocation checked (relocations
    /// come sorted by offset in practice: most do), and if so notes it as written: in the
    /// current run if their pages touch, else in a new one.
    #[inline]
    fn within_current(&mut self, offset: u64, end: u64) -> bool {
        match &mut self.current {
            Some((section, run)) if section.start <= offset && end <= section.end => {
                if pages_touch(run, &(offset..end)) {
                    run.start = run.start.min(offset);
                    run.end = run.end.max(end);
                } else {
                    let done = std::mem::replace(run, offset..end);
                    self.runs.push(done);
                }
                true
            }
            _ => false,
        }
    }

    fn check_new(
        &mut self,
        offset: u64,
        end: u64,
        location: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let target = self
            .sections
            .iter()
            .find(|(_, range, _)| range.contains(&offset))
            .filter(|(_, range, _)| end <= range.end);
        match target {
            Some((_, range, kind)) if kind.accepts_relocations() => {
                if let Some((_, run)) = self.current.replace((range.clone(), offset..end)) {
                    self.runs.push(run);
                }
                Ok(())
            }
            Some((index, _, kind)) => Err(Error::malformed(
                location(),
                format!(
                    "offset {offset:#x} lies in {kind} section {index}, which relocations may not write"
                ),
            )),
            None => Err(Error::malformed(
                location(),
                format!(
                    "offset {offset:#x}..{end:#x} is not inside one data, relro or tls section"
                ),
            )),
        }
    }

    /// The written runs in image order, those whose pages touch merged.
    fn finish(mut self) -> Vec<Range<u64>> {
        if let Some((_, run)) = self.current.take() {
            self.runs.push(run);
        }
        self.runs.sort_unstable_by_key(|run| run.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(self.runs.len());
        for run in self.runs {
            match merged.last_mut() {
                Some(last) if pages_touch(last, &run) => last.end = last.end.max(run.end),
                _ => merged.push(run),
            }
        }
        merged
    }
}

/// Views a table payload as `count` entries of `T`, checking the size is a whole number of entries.
fn table<
    'data,
    T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable + zerocopy::Unaligned,
>(
    section: &Section<'data>,
    limit: u64,
    what: &'static str,
) -> Result<&'data [T], Error> {
    let entry = size_of::<T>() as u64;
    if section.file_size % entry != 0 {
        return Err(Error::malformed(
            section_location(section),
            format!(
                "size {:#x} is not a multiple of the {entry}-byte entry",
                section.file_size
            ),
        ));
    }
    let count = section.file_size / entry;
    if count > limit {
        return Err(Error::LimitExceeded {
            what,
            value: count,
            limit,
        });
    }
    <[T]>::ref_from_bytes(section.data).map_err(|_| {
        Error::malformed(
            section_location(section),
            "payload cannot be viewed as a table",
        )
    })
}

fn section_location(section: &Section<'_>) -> String {
    format!(
        "section {} ({} {})",
        section.index, section.kind, section.name
    )
}

impl<'data> Module<'data> {
    /// Parses and validates `data` with the default [`Limits`]. Does not check the module
    /// hash; see [`Module::verify_hash`].
    pub fn parse(data: &'data [u8]) -> Result<Module<'data>, Error> {
        Module::parse_with_limits(data, &Limits::default())
    }

    /// Parses and validates `data`.
    pub fn parse_with_limits(data: &'data [u8], limits: &Limits) -> Result<Module<'data>, Error> {
        Module::parse_prefix(data, data.len() as u64, limits)
    }

    /// Parses and validates a module of `file_size` bytes from `head`, its first bytes, which
    /// must hold the header, the section table and every table section: what
    /// [`head_len`] finds in a file laid out as the writer lays it out. Everything is
    /// checked as by [`Module::parse_with_limits`], file ranges against `file_size`, except
    /// the loaded sections' payloads, which lie past `head`: their [`Section::data`] is empty.
    ///
    /// This lets a loader keep a view of the tables alone while the payloads are mapped as
    /// the image, where relocation and the module's own code write them. The module hash
    /// covers the whole file, so [`Module::verify_hash`] refuses such a module; the caller
    /// hashes the whole file with [`compute_module_hash`] and compares
    /// [`HeaderInfo::module_hash`].
    pub fn parse_head(
        head: &'data [u8],
        file_size: u64,
        limits: &Limits,
    ) -> Result<Module<'data>, Error> {
        if (head.len() as u64) > file_size {
            return Err(Error::malformed(
                "module",
                format!(
                    "a head of {:#x} bytes is longer than the file ({file_size:#x} bytes)",
                    head.len()
                ),
            ));
        }
        Module::parse_prefix(head, file_size, limits)
    }

    /// Parses the first `data.len()` bytes of a file of `file_size` bytes.
    fn parse_prefix(
        data: &'data [u8],
        file_size: u64,
        limits: &Limits,
    ) -> Result<Module<'data>, Error> {
        let (head, _) = raw::Header::ref_from_prefix(data).map_err(|_| {
            if data.len() >= 4 && data[..4] != raw::MAGIC {
                Error::NotSmf {
                    found: data[..4].to_vec(),
                }
            } else {
                Error::Truncated {
                    what: "header",
                    needed: size_of::<raw::Header>() as u64,
                    size: data.len() as u64,
                }
            }
        })?;
        let header = parse_header(head, limits)?;
        let sections = parse_sections(data, file_size, head, &header, limits)?;

        let mut module = Module {
            data,
            file_size,
            header,
            sections,
            symtab: &[],
            strtab: Strings::new(&[]),
            max_name_len: limits.max_name_len,
            exported: 0,
            buckets: &[],
            chains: &[],
            imports: Vec::new(),
            relocs: &[],
            relr: &[],
            relr_count: 0,
            relocated: Vec::new(),
            needed: Vec::new(),
            init_array: Vec::new(),
            fini_array: Vec::new(),
            tls_callbacks: Vec::new(),
            fingerprints: &[],
            types: crate::typeinfo::TypeInfo::default(),
        };
        if let Some(s) = module.table_section(SectionKind::TypeInfo) {
            module.types = crate::typeinfo::TypeInfo::parse(s.data)?;
        }
        let strtab = Strings::new(
            module
                .table_section(SectionKind::StrTab)
                .map_or(&[], |s| s.data),
        )
        .checked();
        if let Some(s) = module.table_section(SectionKind::StrTab) {
            if s.data.first() != Some(&0) || s.data.last() != Some(&0) {
                return Err(Error::malformed(
                    section_location(s),
                    "string table must start and end with a NUL byte",
                ));
            }
        }
        module.parse_symbols(strtab, limits)?;
        module.parse_hash()?;
        module.parse_fingerprints()?;
        module.parse_imports(strtab, limits)?;
        let mut targets = Targets::new(&module.sections);
        module.parse_relocs(limits, &mut targets)?;
        module.parse_relr(limits, &mut targets)?;
        module.relocated = targets.finish();
        module.parse_needed(strtab, limits)?;
        module.check_versions()?;
        module.init_array = module.parse_code_offsets(SectionKind::InitArray)?;
        module.fini_array = module.parse_code_offsets(SectionKind::FiniArray)?;
        // The table itself, even empty, is Windows-only (docs/FORMAT.md, rule 19).
        if module.table_section(SectionKind::TlsCallbacks).is_some()
            && module.header.platform != Platform::Windows
        {
            return Err(Error::malformed(
                "tls_callbacks",
                format!(
                    "TLS callbacks exist in Windows modules only; this module's platform is {}",
                    module.header.platform
                ),
            ));
        }
        module.tls_callbacks = module.parse_code_offsets(SectionKind::TlsCallbacks)?;
        if let Some(entry) = module.header.entry_point {
            if module.code_section_at(entry).is_none() {
                return Err(Error::malformed(
                    "header",
                    format!("entry point {entry:#x} is not inside a code section"),
                ));
            }
        }
        Ok(module)
    }

    /// Checks the module hash stored in the header against the content. A module parsed from
    /// its head alone cannot be checked this way (the hash covers the whole file): that is
    /// an error.
    pub fn verify_hash(&self) -> Result<(), Error> {
        if self.data.len() as u64 != self.file_size {
            return Err(Error::malformed(
                "module",
                format!(
                    "only its first {:#x} of {:#x} bytes were parsed; the module hash covers the \
                     whole file",
                    self.data.len(),
                    self.file_size
                ),
            ));
        }
        let computed = compute_module_hash(self.data)?;
        if computed != self.header.module_hash {
            return Err(Error::HashMismatch {
                stored: self.header.module_hash,
                computed,
            });
        }
        Ok(())
    }

    /// The `version` table, if the module has one (validated by the parse).
    pub fn versions(&self) -> Option<crate::version::VersionTable<'data>> {
        let section = self
            .table_section(SectionKind::Version)
            .filter(|s| !s.data.is_empty())?;
        crate::version::VersionTable::parse(section.data).ok()
    }

    /// The module's version, if it has a `version` table.
    pub fn module_version(&self) -> Option<crate::version::Version> {
        self.versions().map(|t| t.module_version())
    }

    /// The version of `symbol`: the entry of the version table its `version` field names (0,
    /// the module's own version, for a symbol given none). `None` without a version table,
    /// or for a field past the table (the parse checks exported symbols'; others are checked
    /// as read).
    pub fn symbol_version(&self, symbol: &Symbol<'_>) -> Option<crate::version::Version> {
        self.versions()?.version(symbol.version)
    }

    /// Validates the `version` table, if any, and the `version` fields of exported symbols
    /// against it. Without a table, `version` fields are not interpreted.
    fn check_versions(&self) -> Result<(), Error> {
        // An empty section, as writers of opaque tables may have left, is no table.
        let Some(section) = self
            .table_section(SectionKind::Version)
            .filter(|s| !s.data.is_empty())
        else {
            return Ok(());
        };
        let table = crate::version::VersionTable::parse(section.data)?;
        for (i, symbol) in self.symbols().exported() {
            if table.version(symbol.version).is_none() {
                return Err(Error::malformed(
                    format!("symbol {i} ({})", symbol.name),
                    format!(
                        "version {} is past the version table's {} entries",
                        symbol.version,
                        table.version_count()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The bytes parsed: the whole file, or its head for a module from [`Module::parse_head`].
    pub fn data(&self) -> &'data [u8] {
        self.data
    }

    /// Length of the whole file, of which [`Module::data`] may be the head.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn header(&self) -> &HeaderInfo {
        &self.header
    }

    pub fn sections(&self) -> &[Section<'data>] {
        &self.sections
    }

    /// Loaded sections, in table order.
    pub fn loaded_sections(&self) -> impl Iterator<Item = &Section<'data>> {
        self.sections.iter().filter(|s| s.kind.is_loaded())
    }

    /// The table section of a kind (each table kind appears at most once).
    pub fn table_section(&self, kind: SectionKind) -> Option<&Section<'data>> {
        self.sections
            .iter()
            .find(|s| s.kind == kind && !kind.is_loaded())
    }

    /// Every symbol the module defines, local ones included, decoded as they are read.
    /// Exported symbols were validated by [`Module::parse`]; any other entry is checked when
    /// read, and a broken one reads as an error (a load never uses it).
    pub fn symbols(&self) -> Symbols<'_, 'data> {
        Symbols { module: self }
    }

    /// Symbol `index`, decoded and checked; `None` past the end of the table.
    pub fn symbol(&self, index: usize) -> Option<Result<Symbol<'data>, Error>> {
        let s = self.symtab.get(index)?;
        Some(
            self.decode_symbol(s)
                .map_err(|problem| self.symbol_error(index, s, problem)),
        )
    }

    /// Looks an exported symbol up through the hash table stored in the file.
    pub fn lookup(&self, name: &str) -> Option<Symbol<'data>> {
        self.lookup_index(name).map(|(_, symbol)| symbol)
    }

    /// Looks an exported symbol up through the hash table stored in the file; its index in
    /// the symbol table and the symbol.
    pub fn lookup_index(&self, name: &str) -> Option<(usize, Symbol<'data>)> {
        if self.buckets.is_empty() {
            return None;
        }
        let hash = fnv1a32(name.as_bytes());
        let bucket = hash as usize % self.buckets.len();
        let mut index = self.buckets[bucket].get();
        // The chain was checked to stay in bounds; the step bound also stops a cycle.
        for _ in 0..self.chains.len() {
            if index == NONE {
                return None;
            }
            if let Some(symbol) = self.exported_named(index as usize, name, hash) {
                return Some((index as usize, symbol));
            }
            index = self.chains.get(index as usize)?.get();
        }
        None
    }

    /// Exported entry `index`, if its name is `name`, whose FNV-1a hash is `hash`: what a
    /// lookup by name reads of each candidate (the hash table's chain, a registry's index).
    /// The stored hash and then the name's bytes in the string table are compared before
    /// anything is decoded, and the entry found, exported and so validated by the parse, is
    /// decoded without its checks being made again. `None` for a local entry.
    #[inline]
    pub fn exported_named(&self, index: usize, name: &str, hash: u32) -> Option<Symbol<'data>> {
        let s = self.symtab.get(index)?;
        if s.name_hash.get() != hash || !Module::raw_is_exported(s) {
            return None;
        }
        // The stored name is `name` if its bytes are `name`'s followed by the terminator,
        // and `name` holds no NUL (the stored name would end there).
        let start = s.name_offset.get() as usize;
        let end = start.checked_add(name.len())?;
        let stored = self.strtab.bytes.get(start..=end)?;
        if stored[..name.len()] != *name.as_bytes()
            || stored[name.len()] != 0
            || name.as_bytes().contains(&0)
        {
            return None;
        }
        // The bytes are `name`'s, so they are UTF-8: this only gives them the table's lifetime.
        let name = core::str::from_utf8(&stored[..name.len()]).ok()?;
        Some(Symbol {
            name,
            kind: SymbolKind::try_from(s.kind).ok()?,
            binding: Binding::try_from(s.binding).ok()?,
            visibility: Visibility::try_from(s.visibility).ok()?,
            section: Some(s.section.get()).filter(|&section| section != NONE),
            value: s.value.get(),
            size: s.size.get(),
            type_id: s.type_id.get(),
            version: s.version.get(),
        })
    }

    pub fn imports(&self) -> &[Import<'data>] {
        &self.imports
    }

    #[inline]
    pub fn relocations(&self) -> Relocations<'data> {
        Relocations { raw: self.relocs }
    }

    /// The `relative64` relocations packed in the `relr` table, whose addends are the words
    /// at their offsets. A loader applies them before the [`Module::relocations`].
    pub fn relative_relocations(&self) -> RelativeRelocations<'data> {
        RelativeRelocations {
            words: self.relr,
            count: self.relr_count,
        }
    }

    /// The image ranges relocations write, in image order: runs from a written byte to a
    /// written byte, with no whole page unwritten inside a run, and a new run where one is.
    /// A loader can prepare exactly these pages for writing without reading the relocations
    /// again.
    pub fn relocated_ranges(&self) -> &[Range<u64>] {
        &self.relocated
    }

    /// Native libraries to open before imports are resolved, in order.
    /// The validated `typeinfo` table, which symbols' and imports' `type_id`s point into
    /// (empty when the module has none).
    pub fn types(&self) -> &crate::typeinfo::TypeInfo<'data> {
        &self.types
    }

    /// The type a symbol's or an import's `type_id` names; `None` for 0 (no type recorded).
    pub fn type_of(&self, type_id: u32) -> Option<crate::typeinfo::Type<'data>> {
        self.types.get(type_id)
    }

    pub fn needed(&self) -> &[&'data str] {
        &self.needed
    }

    /// Image offsets of the constructors, in the order they must run.
    pub fn init_array(&self) -> &[u64] {
        &self.init_array
    }

    /// Image offsets of the destructors, in the order they must run.
    pub fn fini_array(&self) -> &[u64] {
        &self.fini_array
    }

    /// The TLS callbacks of a Windows module (image offsets into code), in the order they
    /// run: each is called as `callback(image base, reason, null)` (`docs/FORMAT.md`,
    /// *TLS callbacks of Windows modules*).
    pub fn tls_callbacks(&self) -> &[u64] {
        &self.tls_callbacks
    }

    /// The fingerprint of exported function `symbol` (a symbol-table index), if the module
    /// records one: two versions of a function with equal fingerprints behave alike
    /// (`docs/FORMAT.md`, *Function fingerprints*).
    pub fn fingerprint(&self, symbol: usize) -> Option<u64> {
        let at = self
            .fingerprints
            .binary_search_by_key(&symbol, |e| e.symbol.get() as usize)
            .ok()?;
        Some(self.fingerprints[at].fingerprint.get())
    }

    /// Every fingerprint the module records: (symbol index, fingerprint), by symbol index.
    pub fn fingerprints(&self) -> impl ExactSizeIterator<Item = (usize, u64)> + '_ {
        self.fingerprints
            .iter()
            .map(|e| (e.symbol.get() as usize, e.fingerprint.get()))
    }

    /// The loaded section containing image offset `offset`.
    pub fn section_at(&self, offset: u64) -> Option<&Section<'data>> {
        self.loaded_sections()
            .find(|s| s.image_range().contains(&offset))
    }

    fn code_section_at(&self, offset: u64) -> Option<&Section<'data>> {
        self.section_at(offset)
            .filter(|s| s.kind == SectionKind::Code)
    }

    /// Bounds the symbol table and validates the symbols a load uses: the exported ones
    /// (the hash table, a registry and a host find them). Local symbols, most of a large
    /// module's, are checked when read (the symbolizer, `smf inspect`); a load never hands
    /// one to anything.
    fn parse_symbols(&mut self, strtab: Strings<'data>, limits: &Limits) -> Result<(), Error> {
        self.strtab = strtab;
        let Some(section) = self.table_section(SectionKind::SymTab).copied() else {
            return Ok(());
        };
        let raw: &[raw::Symbol] = table(&section, limits.max_symbols, "symbol count")?;
        self.symtab = raw;
        let mut exported = 0;
        // Only exported names are found by hash (the hash table, a registry's index); a
        // local symbol's stored hash is never read, so hashing every local name (most of a
        // large module's) would be work for nothing. Checked here, once: a symbol read later
        // is not hashed again. FNV-1a is a chain of dependent multiplications per name, so
        // the names are hashed `LANES` at a time, their chains side by side.
        let mut pending: [(usize, &[u8]); LANES] = [(0, &[]); LANES];
        let mut filled = 0;
        for (i, s) in raw.iter().enumerate() {
            // An unknown binding cannot tell whether the symbol is exported: refused here.
            if Binding::try_from(s.binding) == Ok(Binding::Local) {
                continue;
            }
            let symbol = self
                .decode_symbol(s)
                .map_err(|problem| self.symbol_error(i, s, problem))?;
            pending[filled] = (i, symbol.name.as_bytes());
            filled += 1;
            if filled == LANES {
                self.check_name_hashes(&pending)?;
                filled = 0;
            }
            exported += 1;
        }
        self.check_name_hashes(&pending[..filled])?;
        self.exported = exported;
        Ok(())
    }

    /// Checks that each of `names` (a symbol's index and name, at most [`LANES`]) is the
    /// stored name hash of its symbol.
    fn check_name_hashes(&self, names: &[(usize, &[u8])]) -> Result<(), Error> {
        let mut lanes: [&[u8]; LANES] = [&[]; LANES];
        for (lane, (_, name)) in lanes.iter_mut().zip(names) {
            *lane = name;
        }
        let hashes = fnv1a32_lanes(lanes);
        for (&(i, _), hash) in names.iter().zip(hashes) {
            let s = &self.symtab[i];
            if s.name_hash.get() != hash {
                return Err(self.symbol_error(i, s, SymbolProblem::NameHash));
            }
        }
        Ok(())
    }

    /// Where symbol entry `s` lies ([`Symbols::placed`]).
    #[inline]
    fn place(&self, s: &raw::Symbol) -> Option<Placed> {
        let kind = SymbolKind::try_from(s.kind).ok()?;
        let binding = Binding::try_from(s.binding).ok()?;
        let section = s.section.get();
        let target = self
            .sections
            .get(section as usize)
            .filter(|t| t.kind.is_loaded())?;
        let (value, size) = (s.value.get(), s.size.get());
        let inside = value >= target.vaddr
            && value
                .checked_add(size)
                .is_some_and(|end| end <= target.vaddr + target.mem_size);
        inside.then_some(Placed {
            kind,
            binding,
            section,
            value,
            size,
        })
    }

    /// Whether symbol entry `s` is exported (its binding is not local).
    fn raw_is_exported(s: &raw::Symbol) -> bool {
        Binding::try_from(s.binding) != Ok(Binding::Local)
    }

    /// The name of symbol entry `i`, or `?` when it has none, for messages.
    fn raw_name(&self, i: usize) -> &'data str {
        self.symtab
            .get(i)
            .and_then(|s| self.strtab.at(s.name_offset.get(), self.max_name_len).ok())
            .unwrap_or("?")
    }

    /// Checks and decodes one symbol. Kept free of error messages, which
    /// [`Module::symbol_error`] makes for a refused symbol: this runs for every exported
    /// symbol of every module loaded, and for every symbol read.
    #[inline]
    fn decode_symbol(&self, s: &raw::Symbol) -> Result<Symbol<'data>, SymbolProblem> {
        let name = self
            .strtab
            .at(s.name_offset.get(), self.max_name_len)
            .map_err(SymbolProblem::Name)?;
        if name.is_empty() {
            return Err(SymbolProblem::EmptyName);
        }
        let kind = SymbolKind::try_from(s.kind).map_err(|_| SymbolProblem::Kind)?;
        let binding = Binding::try_from(s.binding).map_err(|_| SymbolProblem::Binding)?;
        // The stored name hash of an exported symbol was checked by the parse
        // (`parse_symbols`), and a local one's is never read: a lookup, which reads a symbol
        // every time, does not hash its name again.
        let visibility =
            Visibility::try_from(s.visibility).map_err(|_| SymbolProblem::Visibility)?;
        if s.flags != 0 {
            return Err(SymbolProblem::Flags);
        }
        let (value, size) = (s.value.get(), s.size.get());
        let section_index = s.section.get();
        let section = if section_index == NONE {
            if matches!(kind, SymbolKind::Function | SymbolKind::Data) {
                return Err(SymbolProblem::NoSection);
            }
            None
        } else {
            let target = self
                .sections
                .get(section_index as usize)
                .filter(|t| t.kind.is_loaded())
                .ok_or(SymbolProblem::NotLoaded)?;
            if kind == SymbolKind::Function && target.kind != SectionKind::Code {
                return Err(SymbolProblem::NotCode);
            }
            let section_end = target.vaddr + target.mem_size;
            let end = value.checked_add(size);
            if value < target.vaddr || end.is_none_or(|end| end > section_end) {
                return Err(SymbolProblem::Range);
            }
            // A data symbol of size 0 may mark a section's end (`__stop_X`, `_end`); a
            // function's address is called, so it must be a byte of its code.
            if kind == SymbolKind::Function && value == section_end {
                return Err(SymbolProblem::FunctionAtEnd);
            }
            Some(section_index)
        };
        let type_id = s.type_id.get();
        if type_id != 0 {
            let ty = self.types.get(type_id).ok_or(SymbolProblem::TypeId)?;
            let is_function = ty.kind == crate::typeinfo::TypeKind::Function;
            if (kind == SymbolKind::Function && !is_function)
                || (kind == SymbolKind::Data && is_function)
            {
                return Err(SymbolProblem::TypeKind);
            }
        }
        Ok(Symbol {
            name,
            kind,
            binding,
            visibility,
            section,
            value,
            size,
            type_id: s.type_id.get(),
            version: s.version.get(),
        })
    }

    /// The error for symbol `i`, `s`, which [`Module::symbol`] refused for `problem`.
    #[cold]
    fn symbol_error(&self, i: usize, s: &raw::Symbol, problem: SymbolProblem) -> Error {
        let section_index = s.section.get();
        let message = match problem {
            SymbolProblem::Name(name) => {
                return name.error(
                    format!("symbol {i}"),
                    s.name_offset.get(),
                    self.max_name_len,
                );
            }
            SymbolProblem::EmptyName => "empty name".to_owned(),
            SymbolProblem::Kind => format!("unknown symbol kind {}", s.kind),
            SymbolProblem::Binding => format!("unknown binding {}", s.binding),
            SymbolProblem::NameHash => format!(
                "name hash {:#010x} is not the FNV-1a hash of the name",
                s.name_hash.get()
            ),
            SymbolProblem::Visibility => format!("unknown visibility {}", s.visibility),
            SymbolProblem::Flags => format!("reserved flags {:#x} are not zero", s.flags),
            SymbolProblem::TypeId => format!(
                "type id {} is not a type of the typeinfo table ({} types)",
                s.type_id.get(),
                self.types.len()
            ),
            SymbolProblem::TypeKind => format!(
                "type id {} ({}) does not describe a {} symbol",
                s.type_id.get(),
                self.types.display(s.type_id.get()),
                SymbolKind::try_from(s.kind).map_or("?".into(), |k| k.to_string())
            ),
            SymbolProblem::NoSection => format!(
                "a {} symbol must lie in a loaded section",
                SymbolKind::try_from(s.kind).map_or("?".into(), |k| k.to_string())
            ),
            SymbolProblem::NotLoaded => {
                format!("section index {section_index} is not a loaded section")
            }
            SymbolProblem::NotCode | SymbolProblem::Range | SymbolProblem::FunctionAtEnd => {
                match self.sections.get(section_index as usize) {
                    Some(target) if problem == SymbolProblem::FunctionAtEnd => format!(
                        "function address {:#x} is the end of section {} ({:#x}..{:#x}), not inside it",
                        s.value.get(),
                        target.index,
                        target.vaddr,
                        target.vaddr + target.mem_size
                    ),
                    Some(target) if problem == SymbolProblem::NotCode => format!(
                        "function lies in {} section {}, not in code",
                        target.kind, target.index
                    ),
                    Some(target) => format!(
                        "range {:#x}+{:#x} is outside section {} ({:#x}..{:#x})",
                        s.value.get(),
                        s.size.get(),
                        target.index,
                        target.vaddr,
                        target.vaddr + target.mem_size
                    ),
                    None => format!("section index {section_index} is not a loaded section"),
                }
            }
        };
        // Read again: the problem was not the name.
        let name = self.raw_name(i);
        Error::malformed(format!("symbol {i} ({name})"), message)
    }

    /// Checks the `fingerprints` table (rule 14 of `docs/FORMAT.md`): whole entries, at most
    /// one per symbol, in strictly ascending symbol order, each naming an exported function
    /// (whose entry `parse_symbols` checked), reserved fields zero.
    fn parse_fingerprints(&mut self) -> Result<(), Error> {
        let Some(section) = self.table_section(SectionKind::Fingerprints).copied() else {
            return Ok(());
        };
        let limit = self.symtab.len() as u64;
        let entries: &[raw::Fingerprint] = table(&section, limit, "fingerprints entry count")?;
        let mut previous = None;
        for (i, entry) in entries.iter().enumerate() {
            let symbol = entry.symbol.get();
            let problem = if entry.reserved.get() != 0 {
                Some("reserved field is not zero".to_owned())
            } else if previous.is_some_and(|p| symbol <= p) {
                Some(format!(
                    "symbol {symbol} does not follow symbol {} (entries are sorted by symbol, one each)",
                    previous.unwrap_or_default()
                ))
            } else {
                match self.symtab.get(symbol as usize) {
                    None => Some(format!(
                        "symbol {symbol} is past the symbol table ({limit} entries)"
                    )),
                    Some(s)
                        if s.binding == Binding::Local.as_raw()
                            || s.kind != SymbolKind::Function.as_raw() =>
                    {
                        Some(format!("symbol {symbol} is not an exported function"))
                    }
                    Some(_) => None,
                }
            };
            if let Some(problem) = problem {
                return Err(Error::malformed(format!("fingerprints entry {i}"), problem));
            }
            previous = Some(symbol);
        }
        self.fingerprints = entries;
        Ok(())
    }

    fn parse_hash(&mut self) -> Result<(), Error> {
        let exported = self.exported;
        let symbol_count = self.symtab.len();
        let Some(section) = self.table_section(SectionKind::Hash).copied() else {
            if exported > 0 {
                return Err(Error::malformed(
                    "module",
                    format!("{exported} exported symbols but no hash section"),
                ));
            }
            return Ok(());
        };
        let location = section_location(&section);
        let (head, rest) = raw::HashHeader::ref_from_prefix(section.data)
            .map_err(|_| Error::malformed(&location, "shorter than the 8-byte hash header"))?;
        let (buckets, chains) = (
            head.bucket_count.get() as u64,
            head.chain_count.get() as u64,
        );
        if chains != symbol_count as u64 {
            return Err(Error::malformed(
                &location,
                format!("chain count {chains} differs from the symbol count {symbol_count}"),
            ));
        }
        if buckets == 0 {
            return Err(Error::malformed(&location, "bucket count is zero"));
        }
        let words = <[U32]>::ref_from_bytes(rest).map_err(|_| {
            Error::malformed(&location, "payload is not a whole number of u32 words")
        })?;
        if words.len() as u64 != buckets + chains {
            return Err(Error::malformed(
                &location,
                format!(
                    "holds {} words, header says {buckets} buckets + {chains} chains",
                    words.len()
                ),
            ));
        }
        let (b, c) = words.split_at(buckets as usize);
        // One pass without a branch per word, which the compiler turns into vector
        // instructions; the word at fault is looked for only in a table that has one.
        let out_of_range = |w: &U32| w.get() != NONE && w.get() as u64 >= chains;
        let any_out_of_range = words.iter().fold(false, |any, w| any | out_of_range(w));
        if let Some((i, w)) = words
            .iter()
            .enumerate()
            .filter(|_| any_out_of_range)
            .find(|(_, w)| out_of_range(w))
        {
            return Err(Error::malformed(
                &location,
                format!(
                    "word {i} holds symbol index {} (only {chains} symbols)",
                    w.get()
                ),
            ));
        }
        self.buckets = b;
        self.chains = c;
        // Walk every chain once. Each symbol must be reached at most once (no cycles, no
        // shared tails), from the bucket its name hashes to, and be exported; then reaching as
        // many symbols as there are exports reaches every export. No two exports may share a
        // name: two that do share a hash, so a bucket, and are found in its chain. Linear in
        // the table size, n log n in a chain's length.
        let symtab = self.symtab;
        let mut reached = vec![0u64; symbol_count.div_ceil(64)];
        let mut reached_count = 0;
        let mut chain: Vec<u64> = Vec::new();
        for (bucket, head) in b.iter().enumerate() {
            let mut index = head.get();
            chain.clear();
            while index != NONE {
                let i = index as usize;
                let raw = &symtab[i];
                let location = || format!("{location}: bucket {bucket}");
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                if reached[word] & bit != 0 {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "reaches symbol {i} ({}) a second time (a cycle or shared chain)",
                            self.raw_name(i)
                        ),
                    ));
                }
                reached[word] |= bit;
                reached_count += 1;
                if !Module::raw_is_exported(raw) {
                    return Err(Error::malformed(
                        location(),
                        format!("chains local symbol {i} ({})", self.raw_name(i)),
                    ));
                }
                // parse_symbols checked the stored hash is the name's.
                if raw.name_hash.get() as usize % b.len() != bucket {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "chains symbol {i} ({}), whose name hashes to another bucket",
                            self.raw_name(i)
                        ),
                    ));
                }
                // The key holds the symbol's index too: symbol indices fit in 32 bits (the
                // chains hold them).
                chain.push((u64::from(raw.name_hash.get()) << 32) | i as u64);
                index = c[i].get();
            }
            self.check_unique_names(&mut chain)?;
        }
        if reached_count != exported {
            let missing = symtab
                .iter()
                .enumerate()
                .position(|(i, raw)| {
                    Module::raw_is_exported(raw) && reached[i / 64] & (1 << (i % 64)) == 0
                })
                .unwrap_or(0);
            return Err(Error::malformed(
                &location,
                format!(
                    "exported symbol {missing} ({}) cannot be found through the table",
                    self.raw_name(missing)
                ),
            ));
        }
        Ok(())
    }

    /// Checks that no two of the exports of one hash chain, `keys` (name hash << 32 | symbol
    /// index), have the same name. Two of one name have one hash: sorted, the keys put them in
    /// one run, and only a run of equal hashes (rare) is compared by name.
    fn check_unique_names(&self, keys: &mut [u64]) -> Result<(), Error> {
        if keys.len() < 2 {
            return Ok(());
        }
        keys.sort_unstable();
        // Runs of equal hashes are rare: most chains have none, and are done with this.
        if keys.windows(2).all(|pair| pair[0] >> 32 != pair[1] >> 32) {
            return Ok(());
        }
        let mut names: Vec<(&str, usize)> = Vec::new();
        for run in keys.chunk_by(|a, b| a >> 32 == b >> 32) {
            if run.len() < 2 {
                continue;
            }
            names.clear();
            names.extend(run.iter().map(|&key| {
                let i = key as u32 as usize;
                (self.raw_name(i), i)
            }));
            names.sort_unstable();
            if let Some(pair) = names.windows(2).find(|w| w[0].0 == w[1].0) {
                let (name, i) = pair[1];
                return Err(Error::malformed(
                    format!("symbol {i} ({name})"),
                    "exported twice under the same name",
                ));
            }
        }
        Ok(())
    }

    fn parse_imports(&mut self, strtab: Strings<'data>, limits: &Limits) -> Result<(), Error> {
        let Some(section) = self.table_section(SectionKind::Imports).copied() else {
            return Ok(());
        };
        let raw: &[raw::Import] = table(&section, limits.max_imports, "import count")?;
        let mut imports = Vec::with_capacity(raw.len());
        for (i, imp) in raw.iter().enumerate() {
            let name = strtab.name(imp.name_offset.get(), limits.max_name_len, || {
                format!("import {i}")
            })?;
            let location = || format!("import {i} ({name})");
            if name.is_empty() {
                return Err(Error::malformed(location(), "empty name"));
            }
            if imp.name_hash.get() != fnv1a32(name.as_bytes()) {
                return Err(Error::malformed(
                    location(),
                    "name hash is not the FNV-1a hash of the name",
                ));
            }
            let kind = ImportKind::try_from(imp.kind)
                .map_err(|v| Error::malformed(location(), format!("unknown import kind {v}")))?;
            let binding = match Binding::try_from(imp.binding) {
                Ok(b @ (Binding::Global | Binding::Weak)) => b,
                _ => {
                    return Err(Error::malformed(
                        location(),
                        format!("binding {} is not global or weak", imp.binding),
                    ));
                }
            };
            if imp.reserved0 != [0; 2] || imp.reserved1.get() != 0 {
                return Err(Error::malformed(location(), "reserved fields are not zero"));
            }
            let type_id = imp.type_id.get();
            if type_id != 0 {
                let ty = self.types.get(type_id).ok_or_else(|| {
                    Error::malformed(
                        location(),
                        format!(
                            "type id {type_id} is not a type of the typeinfo table ({} types)",
                            self.types.len()
                        ),
                    )
                })?;
                let is_function = ty.kind == crate::typeinfo::TypeKind::Function;
                if (kind == ImportKind::Function && !is_function)
                    || (kind == ImportKind::Data && is_function)
                {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "type id {type_id} ({}) does not describe a {kind} import",
                            self.types.display(type_id)
                        ),
                    ));
                }
            }
            imports.push(Import {
                name,
                kind,
                binding,
                type_id: imp.type_id.get(),
                version: imp.version.get(),
            });
        }
        self.imports = imports;
        Ok(())
    }

    fn parse_relocs(&mut self, limits: &Limits, targets: &mut Targets) -> Result<(), Error> {
        let Some(section) = self.table_section(SectionKind::Reloc).copied() else {
            return Ok(());
        };
        let raw: &[raw::Reloc] = table(&section, limits.max_relocations, "relocation count")?;
        // Every entry is checked here; the table is then read in place (`Relocations`).
        for (i, r) in raw.iter().enumerate() {
            let location = || format!("relocation {i}");
            let kind = RelocKind::try_from(r.kind.get()).map_err(|v| {
                Error::malformed(location(), format!("unknown relocation kind {v}"))
            })?;
            match (kind, r.import.get()) {
                (RelocKind::Abs64, index) if (index as usize) < self.imports.len() => {}
                (RelocKind::Abs64, index) => {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "import index {index} is out of range ({} imports)",
                            self.imports.len()
                        ),
                    ));
                }
                (_, NONE) => {}
                (_, index) => {
                    return Err(Error::malformed(
                        location(),
                        format!("{kind} relocation names import {index}; it must hold {NONE:#x}"),
                    ));
                }
            };
            if matches!(
                kind,
                RelocKind::TlsModule | RelocKind::TpOffset | RelocKind::TlsDescriptor
            ) {
                let Some(tls) = self.sections.iter().find(|s| s.kind == SectionKind::Tls) else {
                    return Err(Error::malformed(
                        location(),
                        format!("{kind} relocation in a module without a tls section"),
                    ));
                };
                let addend = r.addend.get();
                let allowed = if kind == RelocKind::TpOffset {
                    tls.mem_size
                } else {
                    0
                };
                if !u64::try_from(addend).is_ok_and(|a| a <= allowed) {
                    return Err(Error::malformed(
                        location(),
                        if kind == RelocKind::TpOffset {
                            format!(
                                "tp_offset relocation has addend {addend}, outside the \
                                 thread-local block (0..={allowed})"
                            )
                        } else {
                            format!("{kind} relocation has addend {addend}; it must be 0")
                        },
                    ));
                }
            }
            if kind == RelocKind::Irelative {
                // The loader calls the addend: it must be code of this module.
                let addend = r.addend.get();
                if !u64::try_from(addend).is_ok_and(|a| self.code_section_at(a).is_some()) {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "irelative relocation's resolver {addend:#x} is not inside a code section"
                        ),
                    ));
                }
                // A resolver's result is an address in this process: no template of
                // thread-local data may hold it.
                let offset = r.offset.get();
                if self
                    .section_at(offset)
                    .is_some_and(|s| s.kind == SectionKind::Tls)
                {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "irelative relocation at {offset:#x} writes the tls section; it must \
                             write data or relro"
                        ),
                    ));
                }
            }
            targets.check(r.offset.get(), &location)?;
        }
        self.relocs = raw;
        Ok(())
    }

    fn parse_relr(&mut self, limits: &Limits, targets: &mut Targets) -> Result<(), Error> {
        let Some(section) = self.table_section(SectionKind::Relr).copied() else {
            return Ok(());
        };
        let words: &[U64] = table(&section, limits.max_relocations, "relr word count")?;
        let name = section_location(&section);
        // Where bit 1 of a bitmap word points: the word after the last offset word, then 63
        // words further for each bitmap. `None` before the first offset word.
        let mut next: Option<u64> = None;
        let mut last: Option<u64> = None;
        let mut count = 0usize;
        for (i, word) in words.iter().enumerate() {
            let word = word.get();
            let location = || format!("{name}: word {i}");
            if word & 1 == 0 {
                if word % 8 != 0 {
                    return Err(Error::malformed(
                        location(),
                        format!("offset {word:#x} is not a multiple of 8"),
                    ));
                }
                // Ascending, so that no word is relocated twice (the addend is the word
                // itself: a second pass would add the base again).
                if let Some(last) = last.filter(|&last| word <= last) {
                    return Err(Error::malformed(
                        location(),
                        format!("offset {word:#x} does not come after {last:#x}, the word before"),
                    ));
                }
                targets.check(word, &location)?;
                last = Some(word);
                count += 1;
                next = word.checked_add(8);
                continue;
            }
            let Some(start) = next else {
                return Err(Error::malformed(
                    location(),
                    "a bitmap word must follow an offset word",
                ));
            };
            let mut bits = word >> 1;
            count += bits.count_ones() as usize;
            // All the words a bitmap names lie between its first and last: when both are in
            // the current section, so are the rest.
            let first = start.checked_add(8 * u64::from(bits.trailing_zeros()));
            let end = start.checked_add(8 * (64 - u64::from(bits.leading_zeros())));
            if let (Some(first), Some(end)) = (first, end) {
                if bits != 0 && targets.within_current(first, end) {
                    last = Some(end - 8);
                    next = start.checked_add(63 * 8);
                    continue;
                }
            }
            while bits != 0 {
                let offset = start.checked_add(8 * u64::from(bits.trailing_zeros()));
                let offset = offset.ok_or_else(|| {
                    Error::malformed(location(), "a bitmap bit's offset overflows")
                })?;
                targets.check(offset, &location)?;
                last = Some(offset);
                bits &= bits - 1;
            }
            next = start.checked_add(63 * 8);
        }
        self.relr = words;
        self.relr_count = count;
        Ok(())
    }

    fn parse_needed(&mut self, strtab: Strings<'data>, limits: &Limits) -> Result<(), Error> {
        let Some(section) = self.table_section(SectionKind::Needed).copied() else {
            return Ok(());
        };
        let offsets: &[U32] = table(&section, limits_max_small(), "needed library count")?;
        let mut needed = Vec::with_capacity(offsets.len());
        for (i, offset) in offsets.iter().enumerate() {
            let name = strtab.name(offset.get(), limits.max_name_len, || {
                format!("needed library {i}")
            })?;
            if name.is_empty() {
                return Err(Error::malformed(
                    format!("needed library {i}"),
                    "empty name",
                ));
            }
            needed.push(name);
        }
        self.needed = needed;
        Ok(())
    }

    fn parse_code_offsets(&self, kind: SectionKind) -> Result<Vec<u64>, Error> {
        let Some(section) = self.table_section(kind) else {
            return Ok(Vec::new());
        };
        // Named per table: a count over the limit says which table holds it.
        let what = match kind {
            SectionKind::InitArray => "init_array entry count",
            SectionKind::FiniArray => "fini_array entry count",
            SectionKind::TlsCallbacks => "tls_callbacks entry count",
            _ => "code offset count",
        };
        let offsets: &[U64] = table(section, limits_max_small(), what)?;
        offsets
            .iter()
            .enumerate()
            .map(|(i, offset)| {
                let offset = offset.get();
                match self.code_section_at(offset) {
                    Some(_) => Ok(offset),
                    None => Err(Error::malformed(
                        format!("{kind} entry {i}"),
                        format!("offset {offset:#x} is not inside a code section"),
                    )),
                }
            })
            .collect()
    }
}

/// Bound for the small tables (needed libraries, constructors, destructors).
const fn limits_max_small() -> u64 {
    1 << 16
}

fn parse_header(head: &raw::Header, limits: &Limits) -> Result<HeaderInfo, Error> {
    if head.magic != raw::MAGIC {
        return Err(Error::NotSmf {
            found: head.magic.to_vec(),
        });
    }
    if head.version_major != raw::VERSION_MAJOR {
        return Err(Error::UnsupportedVersion {
            major: head.version_major,
            minor: head.version_minor,
        });
    }
    let platform = Platform::try_from(head.platform)
        .map_err(|v| Error::malformed("header", format!("unknown platform {v}")))?;
    let arch = Arch::try_from(head.arch)
        .map_err(|v| Error::malformed("header", format!("unknown architecture {v}")))?;
    let flags = ModuleFlags(head.flags.get());
    if flags.0 & !ModuleFlags::KNOWN.0 != 0 {
        return Err(Error::malformed(
            "header",
            format!("unknown flags {:#x}", flags.0 & !ModuleFlags::KNOWN.0),
        ));
    }
    if head.page_order > raw::MAX_PAGE_ORDER {
        return Err(Error::malformed(
            "header",
            format!(
                "page order {} is above {} (a 64 KiB page)",
                head.page_order,
                raw::MAX_PAGE_ORDER
            ),
        ));
    }
    let page_size = PAGE_SIZE << head.page_order;
    if head.reserved.iter().any(|&b| b != 0) {
        return Err(Error::malformed(
            "header",
            "reserved bytes 0x51..0x80 are not zero",
        ));
    }
    let image_size = head.image_size.get();
    if image_size % page_size != 0 {
        return Err(Error::malformed(
            "header",
            format!(
                "image size {image_size:#x} is not a multiple of the page size ({page_size:#x})"
            ),
        ));
    }
    if image_size > limits.max_image_size {
        return Err(Error::LimitExceeded {
            what: "image size",
            value: image_size,
            limit: limits.max_image_size,
        });
    }
    let entry = head.entry_point.get();
    let entry_point = if flags.contains(ModuleFlags::EXECUTABLE) {
        Some(entry)
    } else if entry != 0 {
        return Err(Error::malformed(
            "header",
            format!("entry point {entry:#x} set but the module is not EXECUTABLE"),
        ));
    } else {
        None
    };
    Ok(HeaderInfo {
        version_major: head.version_major,
        version_minor: head.version_minor,
        platform,
        arch,
        flags,
        page_size,
        image_size,
        entry_point,
        source_hash: head.source_hash.get(),
        module_hash: head.module_hash,
    })
}

/// Parses the section table of a file of `file_size` bytes, of which `data` holds the first
/// ones: at least the header, the section table and every table section.
fn parse_sections<'data>(
    data: &'data [u8],
    file_size: u64,
    head: &raw::Header,
    header: &HeaderInfo,
    limits: &Limits,
) -> Result<Vec<Section<'data>>, Error> {
    let parsed = data.len() as u64;
    let count = head.section_count.get();
    if count > limits.max_sections {
        return Err(Error::LimitExceeded {
            what: "section count",
            value: count as u64,
            limit: limits.max_sections as u64,
        });
    }
    let table_offset = head.section_table_offset.get();
    let table_size = count as u64 * size_of::<raw::SectionHeader>() as u64;
    let table_end = table_offset
        .checked_add(table_size)
        .filter(|&end| end <= parsed)
        .ok_or(Error::Truncated {
            what: "section table",
            needed: table_offset.saturating_add(table_size),
            size: parsed,
        })?;
    if table_offset < size_of::<raw::Header>() as u64 {
        return Err(Error::malformed(
            "header",
            format!("section table offset {table_offset:#x} overlaps the header"),
        ));
    }
    let raw_table =
        <[raw::SectionHeader]>::ref_from_bytes(&data[table_offset as usize..table_end as usize])
            .map_err(|_| Error::malformed("section table", "cannot be viewed as a table"))?;

    // File ranges already claimed, to reject overlapping payloads: the header, the section
    // table, then sections by index (named only when a message needs it).
    let mut claimed: Vec<(u64, u64, Option<usize>)> = vec![
        (0, size_of::<raw::Header>() as u64, None),
        (table_offset, table_end, None),
    ];
    let mut sections = Vec::with_capacity(count as usize);
    // Bytes the compressed payloads declare, against `max_decompressed_size`.
    let mut decompressed = 0u64;
    for (i, s) in raw_table.iter().enumerate() {
        let index = i as u32;
        let location = || format!("section {i}");
        let kind = SectionKind::try_from(s.kind.get())
            .map_err(|v| Error::malformed(location(), format!("unknown section type {v}")))?;
        let name_len = s.name.iter().position(|&b| b == 0).unwrap_or(s.name.len());
        if s.name[name_len..].iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                location(),
                "name has bytes after its NUL terminator",
            ));
        }
        let name = core::str::from_utf8(&s.name[..name_len])
            .map_err(|_| Error::malformed(location(), "name is not valid UTF-8"))?;
        let location = || format!("section {i} ({kind} {name})");
        let flags = SectionFlags(s.flags.get());
        let compressed = crate::compress::is_compressed(flags);
        if SectionFlags(flags.0 & !SectionFlags::COMPRESSED.0) != kind.protection() {
            return Err(Error::malformed(
                location(),
                format!(
                    "flags {flags} do not match the {kind} kind (expected {})",
                    kind.protection()
                ),
            ));
        }
        if compressed && !kind.is_loaded() && s.file_size.get() > 0 {
            return Err(Error::malformed(
                location(),
                "a compressed table: decompress the module's tables first \
                 (smf_format::compress::expand_tables)",
            ));
        }
        if compressed
            && (!header.flags.contains(ModuleFlags::COMPRESSED)
                || !kind.is_loaded()
                || kind == SectionKind::Bss
                || s.file_size.get() == 0)
        {
            return Err(Error::malformed(
                location(),
                "flag COMPRESSED (0x8) is only for the payload of a loaded section with file \
                 bytes, not bss, in a module flagged COMPRESSED",
            ));
        }
        let (file_offset, file_size_s, vaddr, mem_size, align) = (
            s.file_offset.get(),
            s.file_size.get(),
            s.vaddr.get(),
            s.mem_size.get(),
            s.align.get(),
        );
        if !align.is_power_of_two() || align > header.page_size {
            return Err(Error::malformed(
                location(),
                format!("alignment {align:#x} is not a power of two up to the page size"),
            ));
        }
        let file_end = file_offset.checked_add(file_size_s).filter(|&end| end <= file_size).ok_or_else(|| {
            Error::malformed(location(), format!("file range {file_offset:#x}+{file_size_s:#x} runs past end of file ({file_size:#x} bytes)"))
        })?;
        if !kind.is_loaded() && file_size_s > 0 && file_end > parsed {
            return Err(Error::malformed(
                location(),
                format!(
                    "table lies past the first {parsed:#x} bytes, the head the module was \
                     parsed from"
                ),
            ));
        }
        if kind.is_loaded() {
            if vaddr % header.page_size != 0 {
                return Err(Error::malformed(
                    location(),
                    format!("address {vaddr:#x} is not page-aligned"),
                ));
            }
            if file_size_s > 0 && !compressed && file_offset % header.page_size != 0 {
                return Err(Error::malformed(
                    location(),
                    format!("file offset {file_offset:#x} is not page-aligned"),
                ));
            }
            if file_size_s > mem_size {
                return Err(Error::malformed(
                    location(),
                    format!("file size {file_size_s:#x} exceeds memory size {mem_size:#x}"),
                ));
            }
            if kind == SectionKind::Bss && file_size_s != 0 {
                return Err(Error::malformed(
                    location(),
                    "a bss section has no file bytes",
                ));
            }
            let mem_end = vaddr.checked_add(mem_size).filter(|&end| end <= header.image_size).ok_or_else(|| {
                Error::malformed(location(), format!("image range {vaddr:#x}+{mem_size:#x} is outside the image ({:#x} bytes)", header.image_size))
            })?;
            let page_end = round_up_page(mem_end, header.page_size).unwrap_or(u64::MAX);
            if let Some(other) = sections.iter().find(|o: &&Section| {
                o.kind.is_loaded()
                    && o.mem_size > 0
                    && mem_size > 0
                    && o.vaddr < page_end
                    && vaddr
                        < round_up_page(o.vaddr + o.mem_size, header.page_size).unwrap_or(u64::MAX)
            }) {
                return Err(Error::malformed(
                    location(),
                    format!(
                        "image range {vaddr:#x}..{mem_end:#x} shares pages with section {}",
                        other.index
                    ),
                ));
            }
            if kind == SectionKind::Tls && sections.iter().any(|o: &Section| o.kind == kind) {
                return Err(Error::malformed(location(), "a second tls section"));
            }
            if kind == SectionKind::Pdata {
                if sections.iter().any(|o: &Section| o.kind == kind) {
                    return Err(Error::malformed(location(), "a second pdata section"));
                }
                if file_size_s != mem_size || mem_size % PDATA_ENTRY_SIZE != 0 {
                    return Err(Error::malformed(
                        location(),
                        format!(
                            "a pdata section's file size {file_size_s:#x} and memory size \
                             {mem_size:#x} must be equal and a multiple of {PDATA_ENTRY_SIZE}"
                        ),
                    ));
                }
            }
        } else {
            if vaddr != 0 || mem_size != 0 {
                return Err(Error::malformed(
                    location(),
                    "a table section has no image address or memory size",
                ));
            }
            if sections.iter().any(|o: &Section| o.kind == kind) {
                return Err(Error::malformed(
                    location(),
                    format!("a second {kind} section"),
                ));
            }
        }
        if file_size_s > 0 {
            if let Some(&(start, _, owner)) = claimed
                .iter()
                .find(|(start, end, _)| file_offset < *end && *start < file_end)
            {
                let what = match owner {
                    Some(section) => format!("section {section}"),
                    None if start == 0 => "the header".to_owned(),
                    None => "the section table".to_owned(),
                };
                return Err(Error::malformed(
                    location(),
                    format!("file range {file_offset:#x}..{file_end:#x} overlaps {what}"),
                ));
            }
            claimed.push((file_offset, file_end, Some(i)));
        }
        if compressed {
            let payload = data
                .get(file_offset as usize..file_end as usize)
                .filter(|_| file_end <= parsed)
                .ok_or_else(|| {
                    Error::malformed(
                        location(),
                        "compressed payload lies past the bytes parsed (a compressed module \
                         has no head: parse the whole file)",
                    )
                })?;
            let payload = crate::compress::check_payload(payload, mem_size, &location)?;
            decompressed = decompressed
                .checked_add(payload.raw_size)
                .filter(|&total| total <= limits.max_decompressed_size)
                .ok_or(Error::LimitExceeded {
                    what: "decompressed size of compressed payloads",
                    value: decompressed.saturating_add(payload.raw_size),
                    limit: limits.max_decompressed_size,
                })?;
        }
        sections.push(Section {
            index,
            kind,
            flags,
            name,
            file_offset,
            file_size: file_size_s,
            vaddr,
            mem_size,
            align,
            // Past the head lie only loaded sections and empty tables (checked above).
            data: data
                .get(file_offset as usize..file_end as usize)
                .unwrap_or(&[]),
        });
    }
    if header.flags.contains(ModuleFlags::COMPRESSED)
        && !sections.iter().any(Section::is_compressed)
    {
        return Err(Error::malformed(
            "header",
            "flag COMPRESSED is set but no section is compressed",
        ));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time search finds the first NUL wherever it is, among bytes that look
    /// like a zero to a careless test (0x01 after a zero borrows, 0x80 has the high bit), and
    /// none in bytes without one.
    #[test]
    fn the_first_nul_is_found_at_every_position() {
        for len in 0..40 {
            for fill in [0x01u8, 0x80, 0xff, b'a'] {
                let mut bytes = vec![fill; len];
                assert_eq!(nul_position(&bytes), None, "{bytes:?}");
                for nul in 0..len {
                    bytes.fill(fill);
                    bytes[nul] = 0;
                    // Zeros after the first one must not matter.
                    for later in (nul + 1..len).step_by(3) {
                        bytes[later] = 0;
                    }
                    assert_eq!(nul_position(&bytes), Some(nul), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn names_hashed_side_by_side_hash_as_one_at_a_time() {
        let names: [&[u8]; 9] = [
            b"",
            b"a",
            b"sqlite3_open",
            b"sqlite3_open_v2",
            b"lookup_target",
            b"x\xff\x00y",
            b"luaL_newstate",
            b"a_rather_longer_name_than_the_others_by_far",
            b"ab",
        ];
        for start in 0..names.len() {
            let lanes: [&[u8]; LANES] = core::array::from_fn(|l| names[(start + l) % names.len()]);
            let expected = lanes.map(fnv1a32);
            assert_eq!(fnv1a32_lanes(lanes), expected, "{lanes:?}");
        }
    }

    /// Checks `hash` against BLAKE3 of the same bytes with the hash field zeroed, for files of
    /// each of `lengths`.
    fn check_against_blake3(lengths: &[usize], hash: impl Fn(&[u8]) -> [u8; 32]) {
        for &len in lengths {
            let mut data: Vec<u8> = (0..len).map(|i| (i * 13 + i / 1021) as u8).collect();
            data[MODULE_HASH_RANGE].fill(0x5a);
            let mut zeroed = data.clone();
            zeroed[MODULE_HASH_RANGE].fill(0);
            assert_eq!(
                hash(&data),
                *blake3::hash(&zeroed).as_bytes(),
                "{len} bytes"
            );
        }
    }

    /// Names of this process's threads.
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    #[test]
    fn hashing_a_large_file_leaves_no_thread_behind() {
        let data = vec![7u8; 2 << 20];
        compute_module_hash(&data).unwrap();
        let names = thread_names();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("smf-hash") || n.starts_with("rayon")),
            "threads after hashing: {names:?}"
        );
    }

    #[test]
    fn the_one_thread_hash_is_blake3_of_the_file_with_the_field_zeroed() {
        // Around the copied first 16 KiB and the 1 KiB chunks.
        let lengths = [
            size_of::<raw::Header>(),
            1023,
            1024,
            1025,
            (16 << 10) - 1,
            16 << 10,
            (16 << 10) + 1,
            20_608,
            (64 << 10) + 3,
            (1 << 20) + 1,
            (3 << 20) + 12_345,
        ];
        check_against_blake3(&lengths, |data| compute_module_hash(data).unwrap());
    }
}
