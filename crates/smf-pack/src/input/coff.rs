//! Reading COFF x86-64 objects (mingw-w64's gcc and g++, Cranelift's COFF backend) into the
//! packer's own description, as `crate::input` reads ELF objects: after [`read_object`]
//! returns, the [`Object`] is the same shape, with every index checked, so that resolution,
//! layout and relocation need not know which format the object was.
//!
//! What COFF does differently and is settled here (docs/FORMAT.md, "Windows modules"):
//!
//! * Sections are classified by characteristics and by the name before `$` (`.text$foo` is
//!   code, `.pdata$foo` function table entries); the constructor tables `.ctors*`,
//!   `.dtors*`, `.CRT$XI*` and `.CRT$XC*` get their running order (`.CRT$XP*` and
//!   `.CRT$XT*`, which a mingw-w64 program never runs, are plain data), and the TLS
//!   callbacks `.CRT$XL*` theirs; PE thread-local storage (`.tls`, `_tls_index`) is refused.
//! * Relocations keep their addend in the field: it is read into the relocation, with the
//!   `-4 - N` of `REL32_N`, and the flag bits of `crate::arch::x86_64_coff` are set.
//! * An undefined `__imp_NAME` becomes a reference to `NAME`'s pointer slot.
//! * COMDAT sections become groups keyed by their COMDAT symbol (or section name), with their
//!   selection; associative sections join their leader's group.
//! * Weak externals take their default definition, weakly.

use std::collections::HashMap;

use object::pe;
use object::read::coff::{CoffHeader, Symbol as _, SymbolTable};
use object::{FileKind, SectionIndex, SymbolIndex};

use super::{
    ComdatGroup, ComdatSelection, InputReloc, InputSection, InputSymbol, Object, SectionClass,
    SymbolBinding, SymbolDefinition, SymbolType, SymbolVisibility, TableOrder, object_error,
};
use crate::arch::x86_64_coff::{CALL, IMP_SLOT, is_rel32};
use crate::arch::{Arch, for_coff_machine};
use crate::error::Error;
use crate::layout::OutputKind;

/// The PE loader's index of an image's thread-local block, which code using PE TLS reads.
const TLS_INDEX: &str = "_tls_index";

/// The prefix of the symbol that names a dllimport pointer slot.
const IMP_PREFIX: &str = "__imp_";

/// Whether `data` is a COFF object (regular or big-object).
pub(crate) fn is_coff(data: &[u8]) -> bool {
    matches!(
        FileKind::parse(data),
        Ok(FileKind::Coff | FileKind::CoffBig)
    )
}

/// The arch table of a COFF object, if the packer supports its machine.
pub(crate) fn arch(data: &[u8]) -> Option<&'static Arch> {
    let mut offset = 0;
    let machine = match FileKind::parse(data).ok()? {
        FileKind::Coff => pe::ImageFileHeader::parse(data, &mut offset)
            .ok()?
            .machine(),
        FileKind::CoffBig => pe::AnonObjectHeaderBigobj::parse(data, &mut offset)
            .ok()?
            .machine(),
        _ => return None,
    };
    for_coff_machine(machine)
}

/// What a member of an import library, as GNU dlltool makes them (mingw-w64's
/// `libmsvcrt.a`, `libkernel32.a`), stands for. Such a member has import-directory sections
/// (`.idata$2` .. `.idata$7`), which describe a PE image's imports of one DLL; it is not code
/// for a module, whose imports are resolved by name at load time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImportMember {
    /// Not an import library member.
    No,
    /// The function or variable is imported by the name programs use: nothing to link.
    SameName,
    /// `symbol` is imported from the DLL as `import` (libmoldname's and libmsvcrt's POSIX
    /// names: `fdopen` is msvcrt.dll's `_fdopen`): an object defining `symbol` as a jump to
    /// the import `import` stands in for the member.
    Alias { symbol: String, import: String },
}

/// Reads an archive member as an import library member, if it is one.
pub(crate) fn import_member(data: &[u8]) -> ImportMember {
    use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
    if arch(data).is_none() {
        return ImportMember::No;
    }
    let Ok(file) = object::File::parse(data) else {
        return ImportMember::No;
    };
    let idata = |name: &[u8]| file.section_by_name_bytes(name);
    if !file
        .sections()
        .any(|s| s.name_bytes().is_ok_and(|n| n.starts_with(b".idata$")))
    {
        return ImportMember::No;
    }
    // The hint/name entry: a 16-bit hint, then the name the DLL exports.
    let import = idata(b".idata$6")
        .and_then(|s| s.data().ok())
        .and_then(|d| d.get(2..))
        .and_then(|d| d.split(|&b| b == 0).next())
        .and_then(|name| std::str::from_utf8(name).ok());
    // The thunk, `jmp *__imp_NAME(%rip)`, defined in code under the name programs call.
    let symbol = file.symbols().find_map(|symbol| {
        let section = file.section_by_index(symbol.section_index()?).ok()?;
        let code = section.kind() == object::SectionKind::Text;
        (symbol.is_global() && code).then(|| symbol.name().ok())?
    });
    match (symbol, import) {
        (Some(symbol), Some(import)) if !import.is_empty() && symbol != import => {
            ImportMember::Alias {
                symbol: symbol.to_owned(),
                import: import.to_owned(),
            }
        }
        _ => ImportMember::SameName,
    }
}

/// A COFF object defining the function `symbol` as `jmp *__imp_IMPORT(%rip)`: a jump
/// through the GOT slot of the import `import`.
pub(crate) fn alias_object(symbol: &str, import: &str) -> Option<Vec<u8>> {
    use object::write::{Object, Relocation, StandardSection, Symbol, SymbolSection};
    use object::{SymbolFlags, SymbolKind, SymbolScope};
    let mut object = Object::new(
        object::BinaryFormat::Coff,
        object::Architecture::X86_64,
        object::Endianness::Little,
    );
    let text = object.section_id(StandardSection::Text);
    let offset = object.append_section_data(text, &[0xff, 0x25, 0, 0, 0, 0], 16);
    object.add_symbol(Symbol {
        name: symbol.as_bytes().to_vec(),
        value: offset,
        size: 6,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    let slot = object.add_symbol(Symbol {
        name: format!("__imp_{import}").into_bytes(),
        value: 0,
        size: 0,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Undefined,
        flags: SymbolFlags::None,
    });
    object
        .add_relocation(
            text,
            Relocation {
                offset: offset + 2,
                symbol: slot,
                addend: -4,
                flags: object::RelocationFlags::Coff {
                    typ: pe::IMAGE_REL_AMD64_REL32,
                },
            },
        )
        .ok()?;
    object.write().ok()
}

/// Reads and checks one COFF object.
pub(crate) fn read_object<'data>(
    file: &'data str,
    data: &'data [u8],
) -> Result<Object<'data>, Error> {
    match FileKind::parse(data) {
        Ok(FileKind::CoffBig) => read::<pe::AnonObjectHeaderBigobj>(file, data),
        _ => read::<pe::ImageFileHeader>(file, data),
    }
}

fn read<'data, Coff: CoffHeader>(
    file: &'data str,
    data: &'data [u8],
) -> Result<Object<'data>, Error> {
    let mut offset = 0;
    let header = Coff::parse(data, &mut offset)
        .map_err(|e| object_error(file, format!("invalid COFF header: {e}")))?;
    let machine = header.machine();
    let Some(arch) = for_coff_machine(machine) else {
        return Err(object_error(
            file,
            format!(
                "is a COFF object for machine {:#06x}; only x86-64 (0x8664) COFF objects can be \
                 packed",
                machine.0
            ),
        ));
    };
    let table = header
        .sections(data, offset)
        .map_err(|e| object_error(file, format!("invalid section table: {e}")))?;
    let symtab = header
        .symbols(data)
        .map_err(|e| object_error(file, format!("invalid symbol table: {e}")))?;
    let reader = Reader {
        file,
        arch,
        data,
        symtab,
        section_count: table.len(),
    };

    let mut sections = Vec::with_capacity(table.len() + 1);
    sections.push(InputSection {
        name: "",
        class: SectionClass::Ignored,
        size: 0,
        align: 1,
        data: &[],
        relocs: Vec::new(),
        discarded: false,
        legacy: None,
        tls_callbacks: None,
    });
    let mut headers = Vec::with_capacity(table.len());
    for (index, section) in table.enumerate() {
        let name = section
            .name(reader.symtab.strings())
            .map_err(|e| object_error(file, format!("section {}: {e}", index.0)))
            .and_then(|bytes| reader.utf8(bytes, || format!("section {}", index.0)))?;
        sections.push(reader.read_section(name, section)?);
        headers.push(section);
    }
    let (symbols, imp_slots) = reader.read_symbols()?;
    let directives = sections
        .iter()
        .zip(core::iter::once(None).chain(headers.iter().map(Some)))
        .filter(|(_, h)| {
            h.is_some_and(|h| {
                h.characteristics
                    .get(object::LittleEndian)
                    .contains(pe::IMAGE_SCN_LNK_INFO)
            })
        })
        .filter_map(|(s, _)| core::str::from_utf8(s.data).ok())
        .collect::<Vec<_>>();
    let symbols = apply_common_alignment(symbols, &directives);
    let symbols = size_data_symbols(symbols, &sections);
    for (index, header) in headers.iter().enumerate() {
        let section = &mut sections[index + 1];
        if section.class == SectionClass::Ignored {
            continue;
        }
        section.relocs = reader.read_relocations(section, header, &symbols, &imp_slots)?;
        // Read-only data that needs load-time relocations lives in RelRo, the only
        // read-only kind the loader may write into.
        if section.class == SectionClass::Loaded(OutputKind::RoData)
            && section.relocs.iter().any(|r| r.r_type == arch.abs64)
        {
            section.class = SectionClass::Loaded(OutputKind::RelRo);
        }
    }
    let comdat_groups = reader.read_comdats(&sections, &headers)?;
    Ok(Object {
        name: file,
        arch,
        sections,
        symbols,
        comdat_groups,
    })
}

/// Gives each data symbol defined in a section a size, which COFF does not record: up to
/// the next symbol of its section, or the section's end. A reload keeps a data symbol's
/// value by its size (`docs/RELOAD.md`, *State*), and handles check it.
fn size_data_symbols<'data>(
    mut symbols: Vec<InputSymbol<'data>>,
    sections: &[InputSection<'data>],
) -> Vec<InputSymbol<'data>> {
    let mut starts: HashMap<usize, Vec<u64>> = HashMap::new();
    for symbol in &symbols {
        if let SymbolDefinition::Section(section) = symbol.definition {
            starts.entry(section).or_default().push(symbol.value);
        }
    }
    for list in starts.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    for symbol in &mut symbols {
        let SymbolDefinition::Section(section) = symbol.definition else {
            continue;
        };
        if symbol.kind != SymbolType::Object || symbol.size != 0 {
            continue;
        }
        let Some(section_size) = sections.get(section).map(|s| s.size) else {
            continue;
        };
        let next = starts
            .get(&section)
            .and_then(|list| list.iter().find(|&&start| start > symbol.value).copied())
            .unwrap_or(section_size)
            .min(section_size);
        symbol.size = next.saturating_sub(symbol.value);
    }
    symbols
}

/// A number that orders section-name suffixes as the names sort (GNU ld's `SORT_BY_NAME`
/// and the MSVC convention for `$` suffixes): the first 8 bytes, big-endian, zero-padded.
fn name_key(suffix: &str) -> Option<u64> {
    let bytes = suffix.as_bytes();
    if bytes.len() > 8 {
        return None;
    }
    let mut key = [0u8; 8];
    key[..bytes.len()].copy_from_slice(bytes);
    Some(u64::from_be_bytes(key))
}

/// Gives common symbols the alignment that gcc states in `.drectve` (`-aligncomm:NAME,LOG2`),
/// or, without one, that of the largest power of two up to their size and 16 bytes.
fn apply_common_alignment<'data>(
    mut symbols: Vec<InputSymbol<'data>>,
    directives: &[&str],
) -> Vec<InputSymbol<'data>> {
    let mut stated: HashMap<&str, u64> = HashMap::new();
    for directive in directives.iter().flat_map(|d| d.split_ascii_whitespace()) {
        let Some(rest) = directive.strip_prefix("-aligncomm:") else {
            continue;
        };
        let Some((name, log2)) = rest.rsplit_once(',') else {
            continue;
        };
        if let Ok(log2 @ 0..=12) = log2.parse::<u32>() {
            stated.insert(name.trim_matches('"'), 1 << log2);
        }
    }
    for symbol in &mut symbols {
        if let SymbolDefinition::Common { align } = &mut symbol.definition {
            *align = stated.get(symbol.name).copied().unwrap_or_else(|| {
                let natural = 1u64 << (63 - symbol.size.max(1).leading_zeros());
                natural.min(16)
            });
        }
    }
    symbols
}

struct Reader<'data, Coff: CoffHeader> {
    file: &'data str,
    arch: &'static Arch,
    data: &'data [u8],
    symtab: SymbolTable<'data, &'data [u8], Coff>,
    section_count: usize,
}

impl<'data, Coff: CoffHeader> Reader<'data, Coff> {
    fn utf8(&self, bytes: &'data [u8], what: impl Fn() -> String) -> Result<&'data str, Error> {
        core::str::from_utf8(bytes)
            .map_err(|_| object_error(self.file, format!("{}: name is not valid UTF-8", what())))
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
        name: &'data str,
        header: &'data pe::ImageSectionHeader,
    ) -> Result<InputSection<'data>, Error> {
        let class = self.classify(name, header)?;
        if class == SectionClass::Ignored {
            return Ok(InputSection {
                name,
                class,
                size: 0,
                align: 1,
                data: &[],
                relocs: Vec::new(),
                discarded: false,
                legacy: None,
                tls_callbacks: None,
            });
        }
        let flags = header.characteristics.get(object::LittleEndian);
        let size = u64::from(header.size_of_raw_data.get(object::LittleEndian));
        let data = if flags.contains(pe::IMAGE_SCN_CNT_UNINITIALIZED_DATA) {
            &[][..]
        } else {
            header.coff_data(self.data).map_err(|()| {
                object_error(
                    self.file,
                    format!(
                        "section {name}: contents {:#x}+{size:#x} run past the end of the file \
                         ({:#x} bytes)",
                        header.pointer_to_raw_data.get(object::LittleEndian),
                        self.data.len()
                    ),
                )
            })?
        };
        Ok(InputSection {
            name,
            class,
            size,
            // At most 8 KiB (IMAGE_SCN_ALIGN_8192BYTES), above the page size: a section
            // starts on a page, so the module can give no more.
            align: header.coff_alignment().min(self.arch.page_size),
            data,
            relocs: Vec::new(),
            discarded: false,
            legacy: None,
            tls_callbacks: name
                .strip_prefix(".CRT$XL")
                .map(|suffix| self.table_order(name, suffix, 0, false))
                .transpose()?,
        })
    }

    /// Where the entries of the table `name` (its `suffix` after the prefix) run: in `group`,
    /// by the suffix as the names sort, null entries skipped.
    fn table_order(
        &self,
        name: &str,
        suffix: &str,
        group: u8,
        backwards: bool,
    ) -> Result<TableOrder, Error> {
        match name_key(suffix) {
            Some(key) => Ok(TableOrder {
                group,
                key,
                backwards,
                skip_null: true,
            }),
            None => Err(self.unsupported(
                name,
                "cannot order a constructor table whose name has more than 8 bytes after its \
                 prefix",
            )),
        }
    }

    /// Decides where a section goes, from its characteristics and its name before `$`.
    fn classify(&self, name: &str, header: &pe::ImageSectionHeader) -> Result<SectionClass, Error> {
        let flags = header.characteristics.get(object::LittleEndian);
        let base = name.split_once('$').map_or(name, |(base, _)| base);
        // gcc's `.pdata.startup` and `.pdata.unlikely` go with `.text.startup` and the like.
        let function_table = base == ".pdata" || base.starts_with(".pdata.");
        // `.drectve` (linker directives; `-aligncomm` is read apart), debug information,
        // `.llvm_addrsig` and the like.
        if flags.contains(pe::IMAGE_SCN_LNK_REMOVE)
            || flags.contains(pe::IMAGE_SCN_LNK_INFO)
            || name.starts_with(".debug")
            || (flags.contains(pe::IMAGE_SCN_MEM_DISCARDABLE) && !function_table)
        {
            return Ok(SectionClass::Ignored);
        }
        if base == ".tls" {
            return Err(self.unsupported(
                name,
                "PE thread-local storage (__declspec(thread), the .tls section) is not \
                 supported in modules; mingw-w64's __thread and C++ thread_local use emulated \
                 TLS, which works",
            ));
        }
        let table = |suffix: &str, group: u8, backwards: bool| {
            self.table_order(name, suffix, group, backwards)
        };
        // The order a Windows executable runs them in (docs/FORMAT.md, "Constructors of
        // Windows modules"): `.CRT$XI*` by name, `.CRT$XC*` by name (both from the C
        // runtime's start-up code), then the `.ctors` list backwards (`__main`); at exit the
        // `.dtors` list.
        if let Some(suffix) = name.strip_prefix(".CRT$XI") {
            return Ok(SectionClass::Init(table(suffix, 0, false)?));
        }
        if let Some(suffix) = name.strip_prefix(".CRT$XC") {
            return Ok(SectionClass::Init(table(suffix, 1, false)?));
        }
        // A mingw-w64 program never runs its own pre-terminators and terminators: msvcrt.dll
        // runs those of its own image only. They stay the data they are, run by no one.
        if name.starts_with(".CRT$XP") || name.starts_with(".CRT$XT") {
            return Ok(SectionClass::Loaded(OutputKind::RoData));
        }
        // TLS callbacks (`docs/FORMAT.md`, "TLS callbacks of Windows modules"): loaded
        // pointers, read as a table too (`InputSection::tls_callbacks`).
        if name.starts_with(".CRT$XL") {
            return Ok(SectionClass::Loaded(OutputKind::RoData));
        }
        if name.starts_with(".CRT$") {
            return Err(self.unsupported(
                name,
                "only the .CRT$XI* and .CRT$XC* initialisers, the .CRT$XP* and .CRT$XT* \
                 terminators and the .CRT$XL* TLS callbacks are supported in modules",
            ));
        }
        if let Some(suffix) = ctor_suffix(name, ".ctors") {
            return Ok(SectionClass::Init(table(suffix, 2, true)?));
        }
        if let Some(suffix) = ctor_suffix(name, ".dtors") {
            return Ok(SectionClass::Fini(table(suffix, 0, false)?));
        }
        let kind = if function_table {
            if header.size_of_raw_data.get(object::LittleEndian) % 12 != 0 {
                return Err(self.unsupported(
                    name,
                    "a function table is a whole number of 12-byte RUNTIME_FUNCTION entries",
                ));
            }
            OutputKind::Pdata
        } else if flags.contains(pe::IMAGE_SCN_CNT_UNINITIALIZED_DATA) {
            OutputKind::Bss
        } else if flags.contains(pe::IMAGE_SCN_MEM_EXECUTE)
            || flags.contains(pe::IMAGE_SCN_CNT_CODE)
        {
            OutputKind::Code
        } else if flags.contains(pe::IMAGE_SCN_MEM_WRITE) {
            OutputKind::Data
        } else {
            // Moved to RelRo by `read` if it turns out to need load-time relocations.
            OutputKind::RoData
        };
        Ok(SectionClass::Loaded(kind))
    }

    /// Reads every symbol-table entry, auxiliary records as placeholders, so that entry
    /// `i + 1` of the result is symbol table index `i`: entry 0 is the null symbol, as in ELF,
    /// which the rest of the packer skips. Also returns which entries were `__imp_` names,
    /// now renamed (by the same `i + 1`).
    fn read_symbols(&self) -> Result<(Vec<InputSymbol<'data>>, Vec<bool>), Error> {
        let count = self.symtab.len();
        let mut symbols = Vec::with_capacity(count + 1);
        let mut imp_slots = vec![false; count + 1];
        let placeholder = || InputSymbol {
            name: "",
            binding: SymbolBinding::Local,
            kind: SymbolType::Other,
            visibility: SymbolVisibility::Default,
            definition: SymbolDefinition::Absolute,
            value: 0,
            size: 0,
        };
        symbols.push(InputSymbol {
            kind: SymbolType::NoType,
            ..placeholder()
        });
        let mut weak = Vec::new();
        let mut index = 0;
        while index < count {
            let symbol = self
                .symtab
                .symbol(SymbolIndex(index))
                .map_err(|e| object_error(self.file, format!("symbol {index}: {e}")))?;
            let aux = usize::from(symbol.number_of_aux_symbols());
            if index + aux >= count {
                return Err(object_error(
                    self.file,
                    format!("symbol {index}: {aux} auxiliary records run past the symbol table"),
                ));
            }
            let name = symbol
                .name(self.symtab.strings())
                .map_err(|e| object_error(self.file, format!("symbol {index}: {e}")))
                .and_then(|bytes| self.utf8(bytes, || format!("symbol {index}")))?;
            let mut entry = self.read_symbol(name, symbol)?;
            if entry.definition == SymbolDefinition::Undefined
                && entry.binding == SymbolBinding::Global
            {
                if let Some(target) = name.strip_prefix(IMP_PREFIX).filter(|t| !t.is_empty()) {
                    entry.name = target;
                    imp_slots[index + 1] = true;
                }
            }
            if symbol.has_aux_weak_external() {
                let aux = self
                    .symtab
                    .aux_weak_external(SymbolIndex(index))
                    .map_err(|e| object_error(self.file, format!("symbol {name}: {e}")))?;
                weak.push((index + 1, aux.default_symbol().0 + 1));
            }
            symbols.push(entry);
            symbols.extend((0..aux).map(|_| placeholder()));
            index += 1 + aux;
        }
        // A weak external is its default symbol's definition, weakly (gcc's
        // `__attribute__((weak))` definitions), or a weak reference if that is undefined or
        // the absolute 0 of an undefined weak.
        for (index, default) in weak {
            let Some(target) = symbols.get(default).filter(|_| default != index) else {
                return Err(object_error(
                    self.file,
                    format!(
                        "weak external {}: default symbol {} is missing",
                        index - 1,
                        default - 1
                    ),
                ));
            };
            let (definition, value, kind) = match target.definition {
                SymbolDefinition::Section(_) => (target.definition, target.value, target.kind),
                _ => (SymbolDefinition::Undefined, 0, symbols[index].kind),
            };
            let symbol = &mut symbols[index];
            symbol.binding = SymbolBinding::Weak;
            symbol.definition = definition;
            symbol.value = value;
            symbol.kind = kind;
        }
        Ok((symbols, imp_slots))
    }

    fn read_symbol(
        &self,
        name: &'data str,
        symbol: &Coff::Symbol,
    ) -> Result<InputSymbol<'data>, Error> {
        let symbol_error = |problem: String| Error::Symbol {
            file: self.file.to_owned(),
            symbol: name.to_owned(),
            problem,
        };
        let number = symbol.section_number();
        let definition = match number.index() {
            Some(section) if (section as usize) <= self.section_count => {
                SymbolDefinition::Section(section as usize)
            }
            Some(section) => {
                return Err(symbol_error(format!(
                    "defined in missing section number {section}"
                )));
            }
            None if number == pe::IMAGE_SYM_UNDEFINED => match symbol.value() {
                0 => SymbolDefinition::Undefined,
                // Alignment set by `apply_common_alignment`.
                _ => SymbolDefinition::Common { align: 1 },
            },
            None => SymbolDefinition::Absolute,
        };
        let class = symbol.storage_class();
        let binding = match class {
            pe::IMAGE_SYM_CLASS_EXTERNAL | pe::IMAGE_SYM_CLASS_WEAK_EXTERNAL => {
                SymbolBinding::Global
            }
            _ => SymbolBinding::Local,
        };
        let kind = if symbol.has_aux_section() {
            SymbolType::Section
        } else if class == pe::IMAGE_SYM_CLASS_FILE {
            SymbolType::File
        } else if symbol.derived_type() == pe::IMAGE_SYM_DTYPE_FUNCTION {
            SymbolType::Function
        } else if matches!(
            class,
            pe::IMAGE_SYM_CLASS_EXTERNAL | pe::IMAGE_SYM_CLASS_STATIC
        ) && matches!(definition, SymbolDefinition::Section(_))
        {
            SymbolType::Object
        } else if matches!(definition, SymbolDefinition::Common { .. }) {
            SymbolType::Object
        } else {
            SymbolType::NoType
        };
        let kind = match (kind, definition) {
            // A label in code: a function if global, as in hand-written assembly.
            (SymbolType::Object, SymbolDefinition::Section(_)) if self.in_code(symbol) => {
                SymbolType::NoType
            }
            (kind, _) => kind,
        };
        Ok(InputSymbol {
            name,
            binding,
            kind,
            // The runtime support object's functions are the module's own, never exported
            // (as libc_nonshared.a's are hidden for ELF).
            visibility: if self.file == crate::runtime::NAME && binding != SymbolBinding::Local {
                SymbolVisibility::Hidden
            } else {
                SymbolVisibility::Default
            },
            definition,
            value: u64::from(symbol.value()),
            size: match definition {
                SymbolDefinition::Common { .. } => u64::from(symbol.value()),
                _ => 0,
            },
        })
    }

    /// Whether a symbol is defined in an executable section.
    fn in_code(&self, symbol: &Coff::Symbol) -> bool {
        let Some(section) = symbol.section_number().index() else {
            return false;
        };
        let mut offset = 0;
        let Ok(header) = Coff::parse(self.data, &mut offset) else {
            return false;
        };
        header
            .sections(self.data, offset)
            .ok()
            .and_then(|t| t.section(SectionIndex(section as usize)).ok())
            .is_some_and(|h| {
                let flags = h.characteristics.get(object::LittleEndian);
                flags.contains(pe::IMAGE_SCN_CNT_CODE) || flags.contains(pe::IMAGE_SCN_MEM_EXECUTE)
            })
    }

    /// The section's relocations, with their addends read from the field.
    fn read_relocations(
        &self,
        section: &InputSection<'data>,
        header: &pe::ImageSectionHeader,
        symbols: &[InputSymbol<'data>],
        imp_slots: &[bool],
    ) -> Result<Vec<InputReloc>, Error> {
        let name = section.name;
        let entries = header
            .coff_relocations(self.data)
            .map_err(|e| object_error(self.file, format!("relocations of section {name}: {e}")))?;
        let mut relocs = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let offset = u64::from(entry.virtual_address.get(object::LittleEndian));
            let table_index = entry.symbol_table_index.get(object::LittleEndian) as usize;
            let symbol = table_index.saturating_add(1);
            let typ = entry.typ.get(object::LittleEndian);
            let Some(target) = symbols.get(symbol).filter(|s| s.kind != SymbolType::Other) else {
                return Err(object_error(
                    self.file,
                    format!(
                        "relocation {i} of section {name} refers to missing symbol index \
                         {table_index}"
                    ),
                ));
            };
            let width = match typ {
                pe::IMAGE_REL_AMD64_ABSOLUTE => 0,
                pe::IMAGE_REL_AMD64_ADDR64 => 8,
                pe::IMAGE_REL_AMD64_SECTION => 2,
                _ => 4,
            };
            let field = usize::try_from(offset)
                .ok()
                .and_then(|start| section.data.get(start..start.checked_add(width)?));
            let Some(field) = field else {
                return Err(object_error(
                    self.file,
                    format!(
                        "relocation {i} of section {name} at {offset:#x} runs past the \
                         section's {:#x} bytes in the file",
                        section.data.len()
                    ),
                ));
            };
            let mut addend = match *field {
                [] => 0,
                [a, b] => i64::from(u16::from_le_bytes([a, b])),
                [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
                [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
                _ => 0,
            };
            let mut r_type = u32::from(typ.0);
            if let Some(n) = is_rel32(typ) {
                // The displacement counts from the end of the instruction, `4 + N` bytes
                // after the field's start.
                addend -= 4 + i64::from(n);
                // A call or jump (`e8`/`e9` before the field) or a symbol typed as a
                // function: an import is reached through its stub. (libgcc's `___chkstk_ms`
                // and hand-written assembly leave functions untyped.)
                let opcode = usize::try_from(offset)
                    .ok()
                    .and_then(|o| o.checked_sub(1))
                    .and_then(|o| section.data.get(o));
                let in_code = section.class == SectionClass::Loaded(OutputKind::Code);
                if target.kind == SymbolType::Function
                    || (in_code && matches!(opcode, Some(0xe8 | 0xe9)))
                {
                    r_type |= CALL;
                }
            }
            if target.name == TLS_INDEX && target.definition == SymbolDefinition::Undefined {
                return Err(self.unsupported(
                    name,
                    format!(
                        "refers to {TLS_INDEX}: PE thread-local storage (__declspec(thread)) is \
                         not supported in modules; mingw-w64's __thread and C++ thread_local \
                         use emulated TLS, which works"
                    ),
                ));
            }
            if imp_slots.get(symbol) == Some(&true) {
                r_type |= IMP_SLOT;
            }
            relocs.push(InputReloc {
                offset,
                r_type,
                symbol,
                addend,
            });
        }
        Ok(relocs)
    }

    /// One group per COMDAT section, keyed by its COMDAT symbol (the first symbol after the
    /// section's own that is defined in it; gas's `.linkonce` sections have none and are
    /// keyed by their name); associative sections join the group of their leader.
    fn read_comdats(
        &self,
        sections: &[InputSection<'data>],
        headers: &[&pe::ImageSectionHeader],
    ) -> Result<Vec<ComdatGroup<'data>>, Error> {
        // (selection, associated section) of each COMDAT section, from its section symbol.
        let mut definitions: HashMap<usize, (pe::ComdatSelection, usize, Option<usize>)> =
            HashMap::new();
        let count = self.symtab.len();
        let mut index = 0;
        while index < count {
            let Ok(symbol) = self.symtab.symbol(SymbolIndex(index)) else {
                break;
            };
            let next = index + 1 + usize::from(symbol.number_of_aux_symbols());
            if let Some(section) = symbol.section_number().index().map(|s| s as usize) {
                let is_comdat = headers.get(section.wrapping_sub(1)).is_some_and(|h| {
                    h.characteristics
                        .get(object::LittleEndian)
                        .contains(pe::IMAGE_SCN_LNK_COMDAT)
                });
                if is_comdat {
                    if symbol.has_aux_section() && !definitions.contains_key(&section) {
                        let aux = self
                            .symtab
                            .aux_section(SymbolIndex(index))
                            .map_err(|e| object_error(self.file, format!("symbol {index}: {e}")))?;
                        let associated = usize::from(aux.number.get(object::LittleEndian))
                            | usize::from(aux.high_number.get(object::LittleEndian)) << 16;
                        definitions.insert(section, (aux.selection, associated, None));
                    } else if let Some(entry) = definitions.get_mut(&section) {
                        entry.2.get_or_insert(index);
                    }
                }
            }
            index = next;
        }
        // A COMDAT section without a section symbol (mingw-w64's libstdc++.a has `.pdata$F`
        // so) has no selection: GNU ld keeps the first of its name, as for `Any`.
        for (index, header) in headers.iter().enumerate() {
            let flags = header.characteristics.get(object::LittleEndian);
            if flags.contains(pe::IMAGE_SCN_LNK_COMDAT) {
                definitions
                    .entry(index + 1)
                    .or_insert((pe::IMAGE_COMDAT_SELECT_ANY, 0, None));
            }
        }
        let symbol_name = |index: usize| -> Result<&'data str, Error> {
            let symbol = self
                .symtab
                .symbol(SymbolIndex(index))
                .map_err(|e| object_error(self.file, format!("symbol {index}: {e}")))?;
            let bytes = symbol
                .name(self.symtab.strings())
                .map_err(|e| object_error(self.file, format!("symbol {index}: {e}")))?;
            self.utf8(bytes, || format!("symbol {index}"))
        };
        let mut sorted: Vec<_> = definitions.into_iter().collect();
        sorted.sort_by_key(|(section, _)| *section);
        let mut groups: Vec<ComdatGroup<'data>> = Vec::new();
        let mut group_of: HashMap<usize, usize> = HashMap::new();
        let mut associative = Vec::new();
        let mut unwind_of = Vec::new();
        for (section, (selection, associated, key)) in sorted {
            let Some(member) = sections.get(section) else {
                continue;
            };
            let selection = match selection {
                pe::IMAGE_COMDAT_SELECT_ANY => ComdatSelection::Any,
                pe::IMAGE_COMDAT_SELECT_NODUPLICATES => ComdatSelection::NoDuplicates,
                pe::IMAGE_COMDAT_SELECT_SAME_SIZE => ComdatSelection::SameSize,
                pe::IMAGE_COMDAT_SELECT_EXACT_MATCH => ComdatSelection::ExactMatch,
                pe::IMAGE_COMDAT_SELECT_LARGEST => ComdatSelection::Largest,
                pe::IMAGE_COMDAT_SELECT_ASSOCIATIVE => {
                    associative.push((section, associated));
                    continue;
                }
                other => {
                    return Err(self.unsupported(
                        member.name,
                        format!("COMDAT selection {} is not supported", other.0),
                    ));
                }
            };
            let signature = match key {
                Some(index) => symbol_name(index)?,
                None => {
                    // Older gcc (as in mingw-w64's libstdc++.a) makes a function's
                    // `.xdata$F` and `.pdata$F` COMDATs of their own, with no symbol, beside
                    // `.text$F` keyed by `F`; they describe that code and must go with it.
                    if let Some((".pdata" | ".xdata", suffix)) = member.name.split_once('$') {
                        unwind_of.push((section, member.name, suffix, selection));
                        continue;
                    }
                    member.name
                }
            };
            group_of.insert(section, groups.len());
            groups.push(ComdatGroup {
                signature,
                members: vec![section],
                selection,
            });
        }
        // Keyless `.pdata$F`/`.xdata$F` join this object's `.text$F` group; without one they
        // are keyed by their name, as GNU ld keys them.
        for (section, name, suffix, selection) in unwind_of {
            let leader = groups.iter().position(|group| {
                sections
                    .get(group.members[0])
                    .and_then(|s| s.name.strip_prefix(".text$"))
                    == Some(suffix)
            });
            match leader {
                Some(group) => {
                    groups[group].members.push(section);
                    group_of.insert(section, group);
                }
                None => {
                    group_of.insert(section, groups.len());
                    groups.push(ComdatGroup {
                        signature: name,
                        members: vec![section],
                        selection,
                    });
                }
            }
        }
        // Associative sections follow their leader, which may itself be associative.
        let mut pending = associative;
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|&(section, leader)| match group_of.get(&leader).copied() {
                Some(group) => {
                    groups[group].members.push(section);
                    group_of.insert(section, group);
                    false
                }
                None => true,
            });
            if pending.len() == before {
                let (section, leader) = pending[0];
                let name = sections.get(section).map_or("?", |s| s.name);
                return Err(self.unsupported(
                    name,
                    format!(
                        "associative COMDAT section follows section {leader}, which is not a \
                         COMDAT section"
                    ),
                ));
            }
        }
        Ok(groups)
    }
}

/// The suffix of a `.ctors`/`.dtors` table name after `base` (`""` or `.NNNNN`), if it is one.
fn ctor_suffix<'a>(name: &'a str, base: &str) -> Option<&'a str> {
    let suffix = name.strip_prefix(base)?;
    (suffix.is_empty() || suffix.starts_with('.')).then_some(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_order_as_strings() {
        let key = |s| name_key(s).unwrap();
        assert!(key("") < key(".00101"));
        assert!(key(".00101") < key(".65434"));
        assert!(key("A") < key("AA"));
        assert!(key("AA") < key("U"));
        assert!(key("U") < key("Z"));
        assert_eq!(name_key("123456789"), None);
        assert_eq!(ctor_suffix(".ctors", ".ctors"), Some(""));
        assert_eq!(ctor_suffix(".ctors.65434", ".ctors"), Some(".65434"));
        assert_eq!(ctor_suffix(".ctorsx", ".ctors"), None);
    }

    #[test]
    fn common_alignment_comes_from_the_directives() {
        let common = |name, size| InputSymbol {
            name,
            binding: SymbolBinding::Global,
            kind: SymbolType::Object,
            visibility: SymbolVisibility::Default,
            definition: SymbolDefinition::Common { align: 1 },
            value: size,
            size,
        };
        let symbols = apply_common_alignment(
            vec![common("a", 100), common("b", 4), common("c", 3)],
            &[" -aligncomm:\"a\",5 -aligncomm:c,3"],
        );
        let aligns: Vec<_> = symbols
            .iter()
            .map(|s| match s.definition {
                SymbolDefinition::Common { align } => align,
                _ => 0,
            })
            .collect();
        assert_eq!(aligns, [32, 4, 8]);
    }
}
