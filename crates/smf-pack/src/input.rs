//! Reading ELF relocatable objects (x86-64, aarch64) into the packer's own description;
//! COFF objects are read by [`coff`] into the same description.
//!
//! The `object` crate does the byte-level parsing; this module checks what the packer relies
//! on (machine, object type, indices that point inside their tables, section contents inside
//! the file) and decides, once per input section, where its bytes go in the module. After
//! [`read_object`] returns, every section and symbol index stored in an [`Object`] is valid.

use object::elf;
use object::read::elf::{
    FileHeader, Rela as _, SectionHeader as _, SectionTable, Sym as _, SymbolTable,
};
use object::{FileKind, LittleEndian, SymbolIndex};

pub(crate) mod coff;

use crate::arch::Arch;
use crate::error::Error;
use crate::layout::OutputKind;

type Elf = elf::FileHeader64<LittleEndian>;
type ElfSection = elf::SectionHeader64<LittleEndian>;
const LE: LittleEndian = LittleEndian;

/// One input object.
#[derive(Debug)]
pub(crate) struct Object<'data> {
    /// The name the user gave for the file, used in every message about it.
    pub name: &'data str,
    /// The instruction set, from the ELF header's `e_machine`.
    pub arch: &'static Arch,
    /// Indexed by ELF section index; entry 0 is the null section.
    pub sections: Vec<InputSection<'data>>,
    /// Indexed by ELF symbol index; entry 0 is the null symbol.
    pub symbols: Vec<InputSymbol<'data>>,
    pub comdat_groups: Vec<ComdatGroup<'data>>,
}

#[derive(Debug)]
pub(crate) struct InputSection<'data> {
    pub name: &'data str,
    pub class: SectionClass,
    pub size: u64,
    /// A power of two, at most the arch's page size for sections that are loaded (the module
    /// format can honour no more: sections start on a page).
    pub align: u64,
    /// The file bytes; empty for `SHT_NOBITS` and for sections the packer ignores.
    pub data: &'data [u8],
    /// Relocations applying to this section (only kept for sections the packer uses).
    pub relocs: Vec<InputReloc>,
    /// Set when the section belongs to a duplicate COMDAT group.
    pub discarded: bool,
    /// For a legacy `.init`/`.fini` section (class `Loaded(Code)`): the function its code is
    /// a fragment of (see `crate::layout`).
    pub legacy: Option<Legacy>,
    /// For COFF's TLS callback tables (`.CRT$XL*`): where their entries run among the
    /// module's TLS callbacks. The section is also loaded data, since code may read it
    /// (winpthreads checks its own entry).
    pub tls_callbacks: Option<TableOrder>,
}

/// The two functions that ELF's legacy `.init` and `.fini` sections are concatenated into,
/// which glibc runs as `DT_INIT` before the constructors and `DT_FINI` after the destructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Legacy {
    Init,
    Fini,
}

impl Legacy {
    fn of(name: &str) -> Option<Legacy> {
        match name {
            ".init" => Some(Legacy::Init),
            ".fini" => Some(Legacy::Fini),
            _ => None,
        }
    }
}

/// What the packer does with an input section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionClass {
    /// Not part of the module: debug info, notes, symbol tables, relocation tables, groups.
    Ignored,
    /// Copied into the output section of that kind.
    Loaded(OutputKind),
    /// A constructor table (`.init_array*`, `.preinit_array`; COFF's `.ctors*`,
    /// `.CRT$XI*`, `.CRT$XC*`), read at pack time.
    Init(TableOrder),
    /// A destructor table (`.fini_array*`; COFF's `.dtors*`), read at pack time.
    Fini(TableOrder),
}

/// Where a constructor or destructor table's entries run among the others.
///
/// The entries of all tables are sorted by `(group, key)`, stably (input order, then entry
/// order, among equals); then each group that runs `backwards` is reversed as a whole, as a
/// runtime that walks the linked list from its end runs it. Groups run in ascending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableOrder {
    pub group: u8,
    /// The ELF priority, or COFF's section-name suffix as a big-endian number.
    pub key: u64,
    pub backwards: bool,
    /// Entries that are null pointers (no relocation, zero bytes) are skipped rather than
    /// refused: COFF's `.CRT$XCA`/`.CRT$XCZ` markers are such entries.
    pub skip_null: bool,
}

impl TableOrder {
    /// An ELF table of this priority; `.fini_array` runs backwards.
    fn elf(priority: u32, backwards: bool) -> TableOrder {
        TableOrder {
            group: 0,
            key: u64::from(priority),
            backwards,
            skip_null: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct InputReloc {
    pub offset: u64,
    pub r_type: u32,
    /// Index into [`Object::symbols`]; 0 is the null symbol (value 0).
    pub symbol: usize,
    pub addend: i64,
}

#[derive(Debug)]
pub(crate) struct InputSymbol<'data> {
    pub name: &'data str,
    pub binding: SymbolBinding,
    pub kind: SymbolType,
    pub visibility: SymbolVisibility,
    pub definition: SymbolDefinition,
    /// Offset inside the section (for a common symbol: its alignment, as ELF stores it).
    pub value: u64,
    pub size: u64,
}

impl InputSymbol<'_> {
    /// Whether the symbol is a function when it lies in code: typed as one, or a global label
    /// left untyped (hand-written assembly without `.type`), which other modules call.
    pub(crate) fn is_function_in_code(&self) -> bool {
        self.kind == SymbolType::Function
            || (self.kind == SymbolType::NoType && self.binding != SymbolBinding::Local)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolBinding {
    Local,
    Global,
    Weak,
    /// `STB_GNU_UNIQUE`: resolved like a weak definition (C++ inline statics come in COMDAT
    /// groups, so copies are expected), exported as a global.
    Unique,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolType {
    NoType,
    Object,
    Function,
    Section,
    File,
    Tls,
    /// `STT_GNU_IFUNC`: its value is the resolver's, and every reference binds to the
    /// function the resolver returns at load (see `crate::ifunc`).
    Ifunc,
    Other,
}

/// ELF visibility, internal folded into hidden; ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SymbolVisibility {
    Default,
    Protected,
    Hidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolDefinition {
    Undefined,
    /// Defined in the section with this index (always a valid index).
    Section(usize),
    Absolute,
    /// A common symbol with this alignment.
    Common {
        align: u64,
    },
}

#[derive(Debug)]
pub(crate) struct ComdatGroup<'data> {
    pub signature: &'data str,
    /// Member section indices (all valid).
    pub members: Vec<usize>,
    /// Which copy the link keeps when several objects have the group.
    pub selection: ComdatSelection,
}

/// COFF's COMDAT selections (ELF groups are all `Any`); the first member's size and bytes
/// stand for the group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ComdatSelection {
    /// Keep the first copy.
    Any,
    /// A second copy is an error.
    NoDuplicates,
    /// Keep the first; copies must have its size.
    SameSize,
    /// Keep the first; copies must have its bytes.
    ExactMatch,
    /// Keep the largest copy (the first of equals).
    Largest,
}

impl<'data> Object<'data> {
    /// The symbol's name for messages: a section symbol is named after its section.
    pub fn symbol_display_name(&self, index: usize) -> &'data str {
        let Some(symbol) = self.symbols.get(index) else {
            return "?";
        };
        match (symbol.kind, symbol.definition) {
            (SymbolType::Section, SymbolDefinition::Section(section)) => {
                self.sections.get(section).map_or("?", |s| s.name)
            }
            _ if index == 0 => "<null symbol>",
            _ => symbol.name,
        }
    }
}

fn object_error(file: &str, problem: impl Into<String>) -> Error {
    Error::Object {
        file: file.to_owned(),
        problem: problem.into(),
    }
}

fn hex_prefix(data: &[u8]) -> String {
    data.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks one input object.
pub(crate) fn read_object<'data>(
    file: &'data str,
    data: &'data [u8],
) -> Result<Object<'data>, Error> {
    if coff::is_coff(data) {
        return coff::read_object(file, data);
    }
    let (header, arch) = check_header(file, data)?;
    let sections = header
        .sections(LE, data)
        .map_err(|e| object_error(file, format!("invalid section table: {e}")))?;
    let symtab = sections
        .symbols(LE, data, elf::SHT_SYMTAB)
        .map_err(|e| object_error(file, format!("invalid symbol table: {e}")))?;
    let reader = Reader {
        file,
        arch,
        data,
        sections,
        symtab,
    };

    let mut object_sections = Vec::with_capacity(reader.sections.len());
    for (index, header) in reader.sections.enumerate() {
        object_sections.push(reader.read_section(index.0, header)?);
    }
    let symbols = reader.read_symbols()?;
    if symbols.iter().any(|s| s.name == GCC_LTO_SLIM) {
        // Its sections hold GCC's intermediate language for the link-time optimiser and no
        // machine code: packed as it is, the module would have no code at all.
        return Err(object_error(
            file,
            "is a GCC LTO object (gcc -flto) that holds no machine code; compile it without \
             -flto, or with -ffat-lto-objects",
        ));
    }
    reader.read_relocations(&mut object_sections, symbols.len())?;
    // A read-only section only learns now whether it needs load-time relocations: if it
    // does, it must live in RelRo, the only read-only kind the loader may write into.
    for section in &mut object_sections {
        if section.class == SectionClass::Loaded(OutputKind::RoData)
            && section.relocs.iter().any(|r| r.r_type == arch.abs64)
        {
            section.class = SectionClass::Loaded(OutputKind::RelRo);
        }
    }
    let comdat_groups = reader.read_groups(&symbols)?;
    Ok(Object {
        name: file,
        arch,
        sections: object_sections,
        symbols,
        comdat_groups,
    })
}

/// Checks that `data` is an ELF64 little-endian relocatable object of an architecture the
/// packer supports, and returns its header and architecture.
fn check_header<'data>(
    file: &str,
    data: &'data [u8],
) -> Result<(&'data Elf, &'static Arch), Error> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            let machine = elf::FileHeader32::<object::Endianness>::parse(data)
                .ok()
                .and_then(|h| h.endian().ok().map(|endian| h.e_machine(endian)))
                .map_or_else(|| "an unknown machine".to_owned(), machine_name);
            return Err(object_error(
                file,
                format!(
                    "is a 32-bit ELF object for {machine}; only x86-64 and aarch64 objects can \
                     be packed"
                ),
            ));
        }
        Ok(kind) => {
            return Err(object_error(
                file,
                format!("is a {kind:?} file, not an ELF object"),
            ));
        }
        Err(_) if data.starts_with(b"\x7fELF") => {
            return Err(object_error(
                file,
                format!(
                    "truncated ELF file: {} bytes, too short for an ELF header",
                    data.len()
                ),
            ));
        }
        Err(_) if is_llvm_bitcode(data) => {
            return Err(object_error(
                file,
                "is LLVM bitcode (clang -flto), not an ELF object; compile it without -flto",
            ));
        }
        Err(_) => {
            return Err(object_error(
                file,
                format!(
                    "not an ELF object file (it starts with {:?})",
                    hex_prefix(data)
                ),
            ));
        }
    }
    let header_size = size_of::<Elf>();
    if data.len() < header_size {
        return Err(object_error(
            file,
            format!(
                "truncated ELF file: {} bytes, too short for the {header_size}-byte ELF header",
                data.len()
            ),
        ));
    }
    let header =
        Elf::parse(data).map_err(|e| object_error(file, format!("invalid ELF header: {e}")))?;
    if !header.is_little_endian() {
        return Err(object_error(
            file,
            "is a big-endian ELF object; only x86-64 and aarch64 objects can be packed",
        ));
    }
    let machine = header.e_machine(LE);
    let Some(arch) = crate::arch::for_machine(machine) else {
        return Err(object_error(
            file,
            format!(
                "is an ELF object for {}, not x86-64 or aarch64",
                machine_name(machine)
            ),
        ));
    };
    let file_type = header.e_type(LE);
    if file_type != elf::ET_REL {
        let what = match file_type {
            elf::ET_EXEC => "an executable (ET_EXEC)".to_owned(),
            elf::ET_DYN => "a shared library or PIE executable (ET_DYN)".to_owned(),
            other => format!("an ELF file of type {}", other.0),
        };
        return Err(object_error(
            file,
            format!(
                "is {what}, not a relocatable object (.o); pack the object files it was built from"
            ),
        ));
    }
    Ok((header, arch))
}

/// The arch table of an object the packer supports, ELF or COFF.
pub(crate) fn arch(data: &[u8]) -> Option<&'static Arch> {
    machine(data)
        .and_then(crate::arch::for_machine)
        .or_else(|| coff::arch(data))
}

/// The `e_machine` of an ELF64 little-endian file, if `data` is one.
pub(crate) fn machine(data: &[u8]) -> Option<elf::Machine> {
    Elf::parse(data)
        .ok()
        .filter(|h| h.is_little_endian())
        .map(|h| h.e_machine(LE))
}

/// The symbol GCC puts in an `-flto` object that has no machine code beside its LTO data.
const GCC_LTO_SLIM: &str = "__gnu_lto_slim";

/// Whether `data` is LLVM bitcode: what clang writes for `-c -flto`, raw (`BC` C0 DE) or in
/// the bitcode wrapper (magic 0x0B17C0DE, little-endian).
pub(crate) fn is_llvm_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xc0\xde") || data.starts_with(&0x0b17_c0de_u32.to_le_bytes())
}

fn machine_name(machine: elf::Machine) -> String {
    match machine.name() {
        Some(name) => format!("{name} (e_machine {})", machine.0),
        None => format!("e_machine {}", machine.0),
    }
}

/// The priority of `.init_array.NNNNN` (or `.fini_array.NNNNN`); 65535 without a suffix, the
/// priority compilers give constructors that do not ask for one (also for a table of type
/// `SHT_INIT_ARRAY` under another name). `None` for a suffix that is not a number.
fn section_priority(name: &str, base: &str) -> Option<u32> {
    match name.strip_prefix(base) {
        Some("") | None => Some(65535),
        Some(suffix) => suffix.strip_prefix('.')?.parse::<u32>().ok(),
    }
}

struct Reader<'data> {
    file: &'data str,
    arch: &'static Arch,
    data: &'data [u8],
    sections: SectionTable<'data, Elf>,
    symtab: SymbolTable<'data, Elf>,
}

impl<'data> Reader<'data> {
    fn section_name(&self, index: usize, header: &ElfSection) -> Result<&'data str, Error> {
        let bytes = self
            .sections
            .section_name(LE, header)
            .map_err(|e| object_error(self.file, format!("section {index}: {e}")))?;
        core::str::from_utf8(bytes).map_err(|_| {
            object_error(
                self.file,
                format!("section {index}: name is not valid UTF-8"),
            )
        })
    }

    /// The file bytes of a section, checked to lie inside the file.
    fn section_data(&self, name: &str, header: &ElfSection) -> Result<&'data [u8], Error> {
        let Some((offset, size)) = header.file_range(LE) else {
            return Ok(&[]);
        };
        let range = offset
            .checked_add(size)
            .filter(|&end| end <= self.data.len() as u64)
            .and_then(|end| Some(usize::try_from(offset).ok()?..usize::try_from(end).ok()?));
        range.and_then(|range| self.data.get(range)).ok_or_else(|| {
            object_error(
                self.file,
                format!(
                    "section {name}: contents {offset:#x}+{size:#x} run past the end of the file ({:#x} bytes)",
                    self.data.len()
                ),
            )
        })
    }

    fn unsupported(&self, section: &str, problem: impl Into<String>) -> Error {
        Error::UnsupportedSection {
            file: self.file.to_owned(),
            section: section.to_owned(),
            problem: problem.into(),
        }
    }

    fn read_section(
        &self,
        index: usize,
        header: &ElfSection,
    ) -> Result<InputSection<'data>, Error> {
        let ignored = |name| InputSection {
            name,
            class: SectionClass::Ignored,
            size: 0,
            align: 1,
            data: &[],
            relocs: Vec::new(),
            discarded: false,
            legacy: None,
            tls_callbacks: None,
        };
        if index == 0 {
            return Ok(ignored(""));
        }
        let name = self.section_name(index, header)?;
        let class = self.classify(name, header)?;
        if class == SectionClass::Ignored {
            return Ok(ignored(name));
        }
        let align = header.sh_addralign(LE).max(1);
        if !align.is_power_of_two() {
            return Err(
                self.unsupported(name, format!("alignment {align:#x} is not a power of two"))
            );
        }
        let max_align = self.arch.page_size;
        if align > max_align {
            return Err(self.unsupported(
                name,
                format!("alignment {align:#x} exceeds the {max_align}-byte page of the module"),
            ));
        }
        Ok(InputSection {
            name,
            class,
            size: header.sh_size(LE),
            align,
            data: self.section_data(name, header)?,
            relocs: Vec::new(),
            discarded: false,
            legacy: Legacy::of(name),
            tls_callbacks: None,
        })
    }

    /// Decides where an input section goes, from its type, flags and (for the cases the
    /// flags do not settle) its conventional name.
    fn classify(&self, name: &str, header: &ElfSection) -> Result<SectionClass, Error> {
        let sh_type = header.sh_type(LE);
        let flags = header.sh_flags(LE);
        let named = |base: &str| {
            name == base
                || name
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        match sh_type {
            elf::SHT_REL => {
                return Err(self.unsupported(
                    name,
                    "SHT_REL relocations are not used on x86-64 or aarch64 (expected SHT_RELA)",
                ));
            }
            elf::SHT_CREL => {
                return Err(
                    self.unsupported(name, "compact relocations (SHT_CREL) are not supported")
                );
            }
            elf::SHT_RELA
            | elf::SHT_GROUP
            | elf::SHT_SYMTAB
            | elf::SHT_STRTAB
            | elf::SHT_SYMTAB_SHNDX => {
                return Ok(SectionClass::Ignored);
            }
            _ => {}
        }
        if !flags.contains(elf::SHF_ALLOC)
            || flags.contains(elf::SHF_EXCLUDE)
            || sh_type == elf::SHT_NOTE
        {
            return Ok(SectionClass::Ignored);
        }
        if flags.contains(elf::SHF_TLS) || named(".tdata") || named(".tbss") {
            // `.tdata` and `.tbss` alike: the layout puts initialised pieces first.
            return Ok(SectionClass::Loaded(OutputKind::Tls));
        }
        if named(".ctors") || named(".dtors") {
            return Err(self.unsupported(
                name,
                ".ctors/.dtors constructor tables are not supported (compilers emit .init_array by default)",
            ));
        }
        if Legacy::of(name).is_some() {
            // Instructions, not a table: fragments of one function, as crti.o and crtn.o
            // frame them for GNU ld; the layout concatenates them between its own prologue
            // and epilogue.
            if sh_type != elf::SHT_PROGBITS || !flags.contains(elf::SHF_EXECINSTR) {
                return Err(self.unsupported(
                    name,
                    "a legacy .init/.fini section must hold code (SHT_PROGBITS, executable)",
                ));
            }
            return Ok(SectionClass::Loaded(OutputKind::Code));
        }
        if flags.contains(elf::SHF_COMPRESSED) {
            return Err(self.unsupported(name, "compressed allocated sections are not supported"));
        }
        if sh_type == elf::SHT_PREINIT_ARRAY || named(".preinit_array") {
            return Ok(SectionClass::Init(TableOrder::elf(0, false)));
        }
        if sh_type == elf::SHT_INIT_ARRAY || named(".init_array") {
            return Ok(SectionClass::Init(TableOrder::elf(
                self.priority(name, ".init_array")?,
                false,
            )));
        }
        if sh_type == elf::SHT_FINI_ARRAY || named(".fini_array") {
            return Ok(SectionClass::Fini(TableOrder::elf(
                self.priority(name, ".fini_array")?,
                true,
            )));
        }
        // clang gives x86-64's .eh_frame the type SHT_X86_64_UNWIND, gcc SHT_PROGBITS: go by
        // name.
        // Sections without file bytes can only be zero-filled, whatever else their flags say.
        let kind = if sh_type == elf::SHT_NOBITS {
            OutputKind::Bss
        } else if name == ".eh_frame" || self.arch.unwind_section_type == Some(sh_type) {
            OutputKind::EhFrame
        } else if flags.contains(elf::SHF_EXECINSTR) {
            OutputKind::Code
        } else if named(".data.rel.ro") {
            // Writable in the object only so that the dynamic linker may relocate it.
            OutputKind::RelRo
        } else if flags.contains(elf::SHF_WRITE) {
            OutputKind::Data
        } else {
            // Moved to RelRo by `read_object` if it turns out to need load-time relocations.
            OutputKind::RoData
        };
        Ok(SectionClass::Loaded(kind))
    }

    fn priority(&self, name: &str, base: &str) -> Result<u32, Error> {
        section_priority(name, base)
            .ok_or_else(|| self.unsupported(name, "cannot read the priority from the section name"))
    }

    fn read_symbols(&self) -> Result<Vec<InputSymbol<'data>>, Error> {
        // Entry 0 is the null symbol, present even when the object has no symbol table, so
        // that relocations with symbol index 0 (value 0) need no special case.
        let mut symbols = Vec::with_capacity(self.symtab.len().max(1));
        symbols.push(InputSymbol {
            name: "",
            binding: SymbolBinding::Local,
            kind: SymbolType::NoType,
            visibility: SymbolVisibility::Default,
            definition: SymbolDefinition::Absolute,
            value: 0,
            size: 0,
        });
        for (index, symbol) in self.symtab.enumerate().skip(1) {
            symbols.push(self.read_symbol(index, symbol)?);
        }
        Ok(symbols)
    }

    fn read_symbol(
        &self,
        index: SymbolIndex,
        symbol: &elf::Sym64<LittleEndian>,
    ) -> Result<InputSymbol<'data>, Error> {
        let name = self
            .symtab
            .symbol_name(LE, symbol)
            .map_err(|e| object_error(self.file, format!("symbol {}: {e}", index.0)))
            .and_then(|bytes| {
                core::str::from_utf8(bytes).map_err(|_| {
                    object_error(
                        self.file,
                        format!("symbol {}: name is not valid UTF-8", index.0),
                    )
                })
            })?;
        let symbol_error = |problem: String| Error::Symbol {
            file: self.file.to_owned(),
            symbol: name.to_owned(),
            problem,
        };
        let binding = match symbol.st_bind() {
            elf::STB_LOCAL => SymbolBinding::Local,
            elf::STB_GLOBAL => SymbolBinding::Global,
            elf::STB_WEAK => SymbolBinding::Weak,
            elf::STB_GNU_UNIQUE => SymbolBinding::Unique,
            other => return Err(symbol_error(format!("unknown binding {}", other.0))),
        };
        let kind = match symbol.st_type() {
            elf::STT_NOTYPE => SymbolType::NoType,
            elf::STT_OBJECT | elf::STT_COMMON => SymbolType::Object,
            elf::STT_FUNC => SymbolType::Function,
            elf::STT_SECTION => SymbolType::Section,
            elf::STT_FILE => SymbolType::File,
            elf::STT_TLS => SymbolType::Tls,
            elf::STT_GNU_IFUNC => SymbolType::Ifunc,
            _ => SymbolType::Other,
        };
        let visibility = match symbol.st_visibility() {
            elf::STV_DEFAULT => SymbolVisibility::Default,
            elf::STV_PROTECTED => SymbolVisibility::Protected,
            _ => SymbolVisibility::Hidden,
        };
        let section = self
            .symtab
            .symbol_section(LE, symbol, index)
            .map_err(|e| symbol_error(e.to_string()))?;
        let definition = match section {
            Some(section) if section.0 < self.sections.len() => {
                SymbolDefinition::Section(section.0)
            }
            Some(section) => {
                return Err(symbol_error(format!(
                    "defined in missing section index {}",
                    section.0
                )));
            }
            None => match symbol.st_shndx(LE) {
                elf::SHN_UNDEF | elf::SHN_XINDEX => SymbolDefinition::Undefined,
                elf::SHN_ABS => SymbolDefinition::Absolute,
                elf::SHN_COMMON => {
                    let align = symbol.st_value(LE).max(1);
                    let max_align = self.arch.page_size;
                    if !align.is_power_of_two() || align > max_align {
                        return Err(symbol_error(format!(
                            "common symbol alignment {align:#x} is not a power of two up to {max_align}"
                        )));
                    }
                    SymbolDefinition::Common { align }
                }
                other => {
                    return Err(symbol_error(format!(
                        "unsupported special section index {:#x}",
                        other.0
                    )));
                }
            },
        };
        Ok(InputSymbol {
            name,
            binding,
            kind,
            visibility,
            definition,
            value: symbol.st_value(LE),
            size: symbol.st_size(LE),
        })
    }

    /// Attaches the entries of every `SHT_RELA` section to the section they apply to.
    fn read_relocations(
        &self,
        sections: &mut [InputSection<'data>],
        symbol_count: usize,
    ) -> Result<(), Error> {
        for (index, header) in self.sections.enumerate() {
            if header.sh_type(LE) != elf::SHT_RELA {
                continue;
            }
            let name = self.section_name(index.0, header)?;
            let target_index = header.sh_info(LE) as usize;
            let Some(target) = sections.get_mut(target_index).filter(|_| target_index != 0) else {
                return Err(object_error(
                    self.file,
                    format!(
                        "relocation section {name} applies to missing section index {target_index}"
                    ),
                ));
            };
            // Relocations of debug info and other ignored sections are never applied.
            if target.class == SectionClass::Ignored {
                continue;
            }
            if header.link(LE) != self.symtab.section() {
                return Err(object_error(
                    self.file,
                    format!("relocation section {name} does not use the object's symbol table"),
                ));
            }
            self.section_data(name, header)?;
            let entries = header
                .rela(LE, self.data)
                .map_err(|e| object_error(self.file, format!("relocation section {name}: {e}")))?
                .map_or(&[][..], |(entries, _)| entries);
            target.relocs.reserve(entries.len());
            for (i, rela) in entries.iter().enumerate() {
                let symbol = rela.r_sym(LE, false) as usize;
                if symbol >= symbol_count {
                    return Err(object_error(
                        self.file,
                        format!(
                            "relocation section {name}: entry {i} refers to missing symbol index {symbol}"
                        ),
                    ));
                }
                target.relocs.push(InputReloc {
                    offset: rela.r_offset(LE),
                    r_type: rela.r_type(LE, false).0,
                    symbol,
                    addend: rela.r_addend(LE),
                });
            }
        }
        Ok(())
    }

    fn read_groups(
        &self,
        symbols: &[InputSymbol<'data>],
    ) -> Result<Vec<ComdatGroup<'data>>, Error> {
        let mut groups = Vec::new();
        for (index, header) in self.sections.enumerate() {
            if header.sh_type(LE) != elf::SHT_GROUP {
                continue;
            }
            let name = self.section_name(index.0, header)?;
            self.section_data(name, header)?;
            let Some((flags, members)) = header
                .group(LE, self.data)
                .map_err(|e| object_error(self.file, format!("group section {name}: {e}")))?
            else {
                continue;
            };
            if !flags.contains(elf::GRP_COMDAT) {
                continue;
            }
            let signature_index = header.sh_info(LE) as usize;
            let signature = symbols
                .get(signature_index)
                .filter(|_| signature_index != 0 && header.link(LE) == self.symtab.section())
                .ok_or_else(|| {
                    object_error(
                        self.file,
                        format!("group section {name}: missing signature symbol {signature_index}"),
                    )
                })?
                .name;
            let members = members
                .iter()
                .map(|member| {
                    let member = member.get(LE) as usize;
                    if member == 0 || member >= self.sections.len() {
                        Err(object_error(
                            self.file,
                            format!("group {signature}: member section index {member} is missing"),
                        ))
                    } else {
                        Ok(member)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(ComdatGroup {
                signature,
                members,
                selection: ComdatSelection::Any,
            });
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_priorities_come_from_the_section_name() {
        assert_eq!(section_priority(".init_array", ".init_array"), Some(65535));
        assert_eq!(
            section_priority(".init_array.00101", ".init_array"),
            Some(101)
        );
        assert_eq!(
            section_priority(".fini_array.65535", ".fini_array"),
            Some(65535)
        );
        assert_eq!(section_priority(".init_array.foo", ".init_array"), None);
        assert_eq!(section_priority(".init_array.", ".init_array"), None);
        assert_eq!(
            section_priority(".init_array.99999999999", ".init_array"),
            None
        );
        assert_eq!(section_priority("my_ctors", ".init_array"), Some(65535));
    }

    #[test]
    fn llvm_bitcode_is_named_with_the_flag_that_made_it() {
        for data in [&b"BC\xc0\xde\x35\x14\0\0"[..], b"\xde\xc0\x17\x0b\0\0\0\0"] {
            let error = read_object("lto.o", data).unwrap_err().to_string();
            assert_eq!(
                error,
                "lto.o: is LLVM bitcode (clang -flto), not an ELF object; compile it without -flto"
            );
        }
        assert!(!is_llvm_bitcode(b"BC\xc0"));
        assert!(!is_llvm_bitcode(b"\x7fELF"));
    }

    #[test]
    fn short_and_foreign_inputs_are_errors() {
        for data in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0",
            b"!<arch>\nxxxxxxxxxxxxxxxx",
            b"MZ",
        ] {
            let error = read_object("in.o", data).unwrap_err().to_string();
            assert!(error.starts_with("in.o: "), "{error}");
        }
    }
}
