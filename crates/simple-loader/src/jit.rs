//! The GDB JIT interface: how a debugger learns the function names of loaded modules.
//!
//! GDB (and LLDB) put a breakpoint on `__jit_debug_register_code` and, when it is hit, read
//! `__jit_debug_descriptor`: a list of in-memory object files, with the entry just added or
//! removed. For each module the loader writes a small ELF relocatable object with one
//! section per code section, whose address (`sh_addr`) is where that code is mapped, and a
//! symbol table of the module's functions, plus a copy of its `.eh_frame` at the run-time
//! address of the original. That is enough for backtraces to name module functions and walk
//! through their frames, and for `break function` to work, including pending breakpoints set
//! before the module is loaded. A module with a source map (`srcmap`, packed from `-g`
//! objects) also gets DWARF made from it (`debug_sections`): one compilation unit whose line
//! table is the source map at run-time addresses, with a `DW_TAG_subprogram` per function, so
//! that `break file.c:LINE`, `list` and the source lines of `bt` work in module code.

use std::sync::Mutex;

use object::elf;

use crate::symbolize::ModuleSymbols;

/// `jit_code_entry` of the GDB JIT interface.
#[repr(C)]
struct JitCodeEntry {
    next: *mut JitCodeEntry,
    prev: *mut JitCodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `jit_descriptor` of the GDB JIT interface.
#[repr(C)]
pub struct JitDescriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut JitCodeEntry,
    first_entry: *mut JitCodeEntry,
}

const JIT_NOACTION: u32 = 0;
const JIT_REGISTER: u32 = 1;
const JIT_UNREGISTER: u32 = 2;

/// Read by debuggers, by name. Only touched under [`LOCK`].
#[unsafe(no_mangle)]
pub static mut __jit_debug_descriptor: JitDescriptor = JitDescriptor {
    version: 1,
    action_flag: JIT_NOACTION,
    relevant_entry: std::ptr::null_mut(),
    first_entry: std::ptr::null_mut(),
};

/// Debuggers break here to learn that the descriptor changed.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    // Keeps the call (and the function) from being optimised away.
    std::hint::black_box(());
}

static LOCK: Mutex<()> = Mutex::new(());

/// One module's entry in the descriptor's list; removed on drop.
#[derive(Debug)]
pub(crate) struct JitRegistration {
    entry: *mut JitCodeEntry,
    _object: Box<[u8]>,
}

// SAFETY: the entry is owned by this registration and only linked or unlinked under LOCK.
unsafe impl Send for JitRegistration {}
// SAFETY: shared references give access to nothing.
unsafe impl Sync for JitRegistration {}

impl JitRegistration {
    /// Describes `symbols` to debuggers, with the module's unwind tables (`eh_frames`:
    /// run-time address and bytes). `None` when the module has no code.
    pub(crate) fn new(
        symbols: &ModuleSymbols,
        eh_frames: &[(usize, &[u8])],
    ) -> Option<JitRegistration> {
        if symbols.code.is_empty() {
            return None;
        }
        let object = elf_object(symbols, eh_frames)?.into_boxed_slice();
        let entry = Box::into_raw(Box::new(JitCodeEntry {
            next: std::ptr::null_mut(),
            prev: std::ptr::null_mut(),
            symfile_addr: object.as_ptr(),
            symfile_size: object.len() as u64,
        }));
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let descriptor = &raw mut __jit_debug_descriptor;
        // SAFETY: the descriptor and the entries linked into it are only changed under LOCK,
        // which we hold; `entry` is a fresh allocation.
        unsafe {
            let first = (*descriptor).first_entry;
            (*entry).next = first;
            if !first.is_null() {
                (*first).prev = entry;
            }
            (*descriptor).first_entry = entry;
            (*descriptor).relevant_entry = entry;
            (*descriptor).action_flag = JIT_REGISTER;
        }
        __jit_debug_register_code();
        Some(JitRegistration {
            entry,
            _object: object,
        })
    }
}

impl Drop for JitRegistration {
    fn drop(&mut self) {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let descriptor = &raw mut __jit_debug_descriptor;
        // SAFETY: `entry` is linked into the descriptor's list (by `new`), which is only
        // changed under LOCK; it is unlinked once, here, then freed.
        unsafe {
            let entry = self.entry;
            if !(*entry).prev.is_null() {
                (*(*entry).prev).next = (*entry).next;
            } else {
                (*descriptor).first_entry = (*entry).next;
            }
            if !(*entry).next.is_null() {
                (*(*entry).next).prev = (*entry).prev;
            }
            (*descriptor).relevant_entry = entry;
            (*descriptor).action_flag = JIT_UNREGISTER;
            __jit_debug_register_code();
            (*descriptor).relevant_entry = std::ptr::null_mut();
            (*descriptor).action_flag = JIT_NOACTION;
            drop(Box::from_raw(entry));
        }
    }
}

/// An ELF relocatable object naming the functions of `symbols`: one `SHT_NOBITS` section per
/// code section at its run-time address, a copy of each `.eh_frame` at the address of the
/// original, and a symbol per function, relative to its section.
///
/// Written directly, in one pass over the functions: a general ELF writer (deduplicating and
/// suffix-sorting the string table) took most of the time of loading a module with a few
/// thousand functions, and this object is made at every load.
fn elf_object(symbols: &ModuleSymbols, eh_frames: &[(usize, &[u8])]) -> Option<Vec<u8>> {
    const HEADER_SIZE: usize = 64;
    const SYMBOL_SIZE: usize = 24;
    const SECTION_HEADER_SIZE: usize = 64;
    // DWARF sections made from the source map, if the module has one.
    let debug = debug_sections(symbols).unwrap_or_default();
    // Section indices: null, the code sections, the `.eh_frame` copies, the DWARF sections,
    // then the tables.
    let first_eh = 1 + symbols.code.len();
    let symtab_index = first_eh + eh_frames.len() + debug.len();
    let (strtab_index, shstrtab_index) = (symtab_index + 1, symtab_index + 2);
    let section_count = shstrtab_index + 1;

    // Section names, each once; `.eh_frame` is shared by every copy.
    let mut shstrtab = vec![0u8];
    let mut name = |text: &str| {
        let offset = shstrtab.len() as u32;
        shstrtab.extend_from_slice(text.as_bytes());
        shstrtab.push(0);
        offset
    };
    let code_names: Vec<u32> = (0..symbols.code.len())
        .map(|i| {
            if i == 0 {
                name(".text")
            } else {
                name(&format!(".text.{i}"))
            }
        })
        .collect();
    let eh_name = name(".eh_frame");
    let debug_names: Vec<u32> = debug.iter().map(|(section, _)| name(section)).collect();
    let (symtab_name, strtab_name, shstrtab_name) =
        (name(".symtab"), name(".strtab"), name(".shstrtab"));

    // Sized once: the object is about 40 bytes per function, and growing it by doubling
    // would copy it several times over. The names take at most the module's string table
    // (unless the table shares bytes between names; the object then grows).
    let names = symbols.names_len_bound();
    let eh_bytes: usize = eh_frames.iter().map(|(_, bytes)| bytes.len() + 8).sum();
    let debug_bytes: usize = debug.iter().map(|(_, bytes)| bytes.len()).sum();
    let capacity = HEADER_SIZE
        + eh_bytes
        + debug_bytes
        + 8
        + SYMBOL_SIZE * (symbols.functions().len() + 1)
        + names
        + 1
        + shstrtab.len()
        + 8
        + SECTION_HEADER_SIZE * section_count;
    let mut out = Vec::with_capacity(capacity);
    out.resize(HEADER_SIZE, 0);
    let mut eh_offsets = Vec::with_capacity(eh_frames.len());
    for (_, bytes) in eh_frames {
        out.resize(out.len().next_multiple_of(8), 0);
        eh_offsets.push(out.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut debug_offsets = Vec::with_capacity(debug.len());
    for (_, bytes) in &debug {
        debug_offsets.push(out.len());
        out.extend_from_slice(bytes);
    }

    // The symbol table (the null symbol, then one per function inside a code section) and
    // the names it points to.
    out.resize(out.len().next_multiple_of(8), 0);
    let symtab_offset = out.len();
    // Room for every entry, filled in place; the names follow the table.
    out.resize(
        symtab_offset + SYMBOL_SIZE * (symbols.functions().len() + 1),
        0,
    );
    let strtab_offset = out.len();
    out.push(0);
    let info = (elf::STB_GLOBAL.0 << 4) | elf::STT_FUNC.0;
    let mut entries = 1;
    for function in symbols.functions() {
        let Some(section) = symbols
            .code
            .iter()
            .position(|&(start, end)| (start..end).contains(&function.start))
        else {
            continue;
        };
        let st_name = u32::try_from(out.len() - strtab_offset).ok()?;
        out.extend_from_slice(symbols.name_of(function).as_bytes());
        out.push(0);
        let shndx = u16::try_from(1 + section).ok()?;
        let mut entry = [0u8; SYMBOL_SIZE];
        entry[0..4].copy_from_slice(&st_name.to_le_bytes());
        entry[4] = info;
        entry[5] = elf::STV_DEFAULT.0;
        entry[6..8].copy_from_slice(&shndx.to_le_bytes());
        let value = (function.start - symbols.code[section].0) as u64;
        entry[8..16].copy_from_slice(&value.to_le_bytes());
        entry[16..24].copy_from_slice(&((function.end - function.start) as u64).to_le_bytes());
        let at = symtab_offset + SYMBOL_SIZE * entries;
        out[at..at + SYMBOL_SIZE].copy_from_slice(&entry);
        entries += 1;
    }
    // A function outside every code section (none, in a module the reader accepted) leaves
    // unused zero bytes after the table.
    let symtab_size = SYMBOL_SIZE * entries;
    let strtab_len = out.len() - strtab_offset;
    let shstrtab_offset = out.len();
    out.extend_from_slice(&shstrtab);
    out.resize(out.len().next_multiple_of(8), 0);
    let section_headers = out.len();

    let mut header = |name: u32,
                      kind: u32,
                      flags: u64,
                      address: u64,
                      offset: usize,
                      size: usize,
                      link: u32,
                      info: u32,
                      align: u64,
                      entry_size: u64| {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&address.to_le_bytes());
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        out.extend_from_slice(&(size as u64).to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&entry_size.to_le_bytes());
    };
    header(0, elf::SHT_NULL.0, 0, 0, 0, 0, 0, 0, 0, 0);
    let code_flags = (elf::SHF_ALLOC | elf::SHF_EXECINSTR).0;
    for (&(start, end), &name) in symbols.code.iter().zip(&code_names) {
        header(
            name,
            elf::SHT_NOBITS.0,
            code_flags,
            start as u64,
            0,
            end - start,
            0,
            0,
            16,
            0,
        );
    }
    for ((address, bytes), &offset) in eh_frames.iter().zip(&eh_offsets) {
        let flags = elf::SHF_ALLOC.0;
        header(
            eh_name,
            elf::SHT_PROGBITS.0,
            flags,
            *address as u64,
            offset as usize,
            bytes.len(),
            0,
            0,
            8,
            0,
        );
    }
    for (((_, bytes), &offset), &name) in debug.iter().zip(&debug_offsets).zip(&debug_names) {
        header(
            name,
            elf::SHT_PROGBITS.0,
            0,
            0,
            offset,
            bytes.len(),
            0,
            0,
            1,
            0,
        );
    }
    // sh_link: the string table; sh_info: one past the last local symbol (the null one).
    let strtab_link = u32::try_from(strtab_index).ok()?;
    header(
        symtab_name,
        elf::SHT_SYMTAB.0,
        0,
        0,
        symtab_offset,
        symtab_size,
        strtab_link,
        1,
        8,
        SYMBOL_SIZE as u64,
    );
    header(
        strtab_name,
        elf::SHT_STRTAB.0,
        0,
        0,
        strtab_offset,
        strtab_len,
        0,
        0,
        1,
        0,
    );
    header(
        shstrtab_name,
        elf::SHT_STRTAB.0,
        0,
        0,
        shstrtab_offset,
        shstrtab.len(),
        0,
        0,
        1,
        0,
    );

    // The file header.
    let mut ident = [0u8; 16];
    ident[..4].copy_from_slice(&elf::ELFMAG);
    ident[4] = elf::ELFCLASS64.0;
    ident[5] = elf::ELFDATA2LSB.0;
    ident[6] = elf::EV_CURRENT.0;
    ident[7] = elf::ELFOSABI_NONE.0;
    let mut head = Vec::with_capacity(HEADER_SIZE);
    head.extend_from_slice(&ident);
    head.extend_from_slice(&elf::ET_REL.0.to_le_bytes());
    head.extend_from_slice(&crate::sys::arch::ELF_MACHINE.0.to_le_bytes());
    head.extend_from_slice(&u32::from(elf::EV_CURRENT.0).to_le_bytes());
    head.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    head.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    head.extend_from_slice(&(section_headers as u64).to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    head.extend_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
    head.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    head.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    head.extend_from_slice(&(SECTION_HEADER_SIZE as u16).to_le_bytes());
    head.extend_from_slice(&u16::try_from(section_count).ok()?.to_le_bytes());
    head.extend_from_slice(&u16::try_from(shstrtab_index).ok()?.to_le_bytes());
    out[..HEADER_SIZE].copy_from_slice(&head);
    debug_assert!(
        out.len() <= capacity,
        "{} bytes, {capacity} reserved",
        out.len()
    );
    Some(out)
}

/// DWARF describing the module's source map at run-time addresses: `.debug_abbrev`,
/// `.debug_info`, `.debug_line` and `.debug_str`, by name. One compilation unit named after
/// the module covers its image; its line table has a sequence per run of source-map rows
/// (each ends at an end row), and a `DW_TAG_subprogram` per function gives gdb the blocks
/// that `break file:LINE` and `bt` place addresses in. `None` without a source map.
fn debug_sections(symbols: &ModuleSymbols) -> Option<Vec<(&'static str, Vec<u8>)>> {
    use gimli::write::{
        Address, AttributeValue, DwarfUnit, EndianVec, LineProgram, LineString, Sections,
    };
    let map = symbols.checked_source_map().filter(|map| !map.is_empty())?;
    let encoding = gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size: 8,
    };
    let mut dwarf = DwarfUnit::new(encoding);
    // gimli refuses empty names and names holding a NUL; a module's name is chosen by its host.
    let module_name = match symbols.module.replace('\0', "?") {
        name if name.is_empty() => String::from("<module>"),
        name => name,
    };
    let working_dir = std::env::current_dir()
        .ok()
        .map(|dir| dir.to_string_lossy().into_owned())
        .filter(|dir| !dir.is_empty() && !dir.contains('\0'))
        .unwrap_or_else(|| String::from("/"));
    let mut program = LineProgram::new(
        encoding,
        gimli::LineEncoding::default(),
        LineString::String(working_dir.clone().into_bytes()),
        None,
        LineString::String(module_name.clone().into_bytes()),
        None,
    );
    let directory = program.default_directory();
    // The source map's file names are not empty and hold no NUL (the reader checked them at
    // load), as gimli requires.
    let files: Vec<_> = (0..map.file_count())
        .map(|index| {
            let name = map.file(index).unwrap_or("?");
            program.add_file(
                LineString::String(name.as_bytes().to_vec()),
                directory,
                None,
            )
        })
        .collect();
    let base = symbols.base as u64;
    let mut start = None;
    for row in map.rows() {
        if row.is_end() {
            if let Some(start) = start.take() {
                program.end_sequence(row.address - start);
            }
            continue;
        }
        let Some(&file) = files.get(row.file as usize) else {
            continue;
        };
        let start = *start.get_or_insert_with(|| {
            program.begin_sequence(Some(Address::Constant(base + row.address)));
            row.address
        });
        let line = program.row();
        line.address_offset = row.address - start;
        line.file = file;
        line.line = u64::from(row.line);
        line.column = u64::from(row.column);
        line.is_statement = true;
        program.generate_row();
    }
    dwarf.unit.line_program = program;

    let root = dwarf.unit.root();
    let entry = dwarf.unit.get_mut(root);
    entry.set(
        gimli::DW_AT_name,
        AttributeValue::String(module_name.into_bytes()),
    );
    entry.set(
        gimli::DW_AT_comp_dir,
        AttributeValue::String(working_dir.into_bytes()),
    );
    entry.set(
        gimli::DW_AT_producer,
        AttributeValue::String(b"simple-loader (from the module's srcmap)".to_vec()),
    );
    entry.set(
        gimli::DW_AT_language,
        AttributeValue::Language(gimli::DW_LANG_C99),
    );
    entry.set(
        gimli::DW_AT_low_pc,
        AttributeValue::Address(Address::Constant(base)),
    );
    entry.set(
        gimli::DW_AT_high_pc,
        AttributeValue::Udata(symbols.len as u64),
    );
    for function in symbols.functions() {
        let name = symbols.name_of(function);
        if name.is_empty() || name.contains('\0') || function.end <= function.start {
            continue;
        }
        let id = dwarf.unit.add(root, gimli::DW_TAG_subprogram);
        let entry = dwarf.unit.get_mut(id);
        entry.set(
            gimli::DW_AT_name,
            AttributeValue::String(name.as_bytes().to_vec()),
        );
        entry.set(gimli::DW_AT_external, AttributeValue::Flag(true));
        entry.set(
            gimli::DW_AT_low_pc,
            AttributeValue::Address(Address::Constant(function.start as u64)),
        );
        entry.set(
            gimli::DW_AT_high_pc,
            AttributeValue::Udata((function.end - function.start) as u64),
        );
    }
    let mut sections = Sections::new(EndianVec::new(gimli::LittleEndian));
    dwarf.write(&mut sections).ok()?;
    let mut out = Vec::new();
    sections
        .for_each(|id, data| {
            if !data.slice().is_empty() {
                out.push((id.name(), data.slice().to_vec()));
            }
            Ok::<(), ()>(())
        })
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::{ElfFile64, FileHeader as _};
    use object::{Object, ObjectSection, ObjectSymbol, SymbolSection};
    use smf_format::{
        Binding, ImageLayout, LoadedSection, ModuleBuilder, SectionKind, Symbol, SymbolKind,
        Visibility,
    };

    /// Two code sections with functions `a`, `b` (in the first) and `c` (in the second).
    fn module() -> Vec<u8> {
        let mut builder = ModuleBuilder::new();
        builder.arch = crate::HOST_ARCH.unwrap_or(builder.arch);
        builder.platform = crate::HOST_PLATFORM;
        let mut layout = ImageLayout::new();
        let mut sections = Vec::new();
        for name in [".text", ".text2"] {
            let vaddr = layout.place(64).unwrap();
            let index = builder.add_section(LoadedSection {
                kind: SectionKind::Code,
                name,
                vaddr,
                mem_size: 64,
                align: 16,
                data: vec![0xc3; 64],
            });
            sections.push((index, vaddr));
        }
        for (name, (section, vaddr), offset, size) in [
            ("a", sections[0], 0, 16),
            ("b", sections[0], 16, 8),
            ("c", sections[1], 32, 4),
        ] {
            builder.add_symbol(Symbol {
                name,
                kind: SymbolKind::Function,
                binding: Binding::Global,
                visibility: Visibility::Default,
                section: Some(section),
                value: vaddr + offset,
                size,
                type_id: 0,
                version: 0,
            });
        }
        builder.write().unwrap()
    }

    #[test]
    fn the_object_names_each_function_at_its_run_time_address() {
        let bytes = module();
        let parsed = crate::module::parse_owned(bytes);
        let base = 0x7000_0000_0000;
        let symbols = ModuleSymbols::new(&parsed, base, 0x3000, "test.smf");
        let eh_frame = [1u8, 2, 3, 4, 0, 0, 0, 0];
        let object = elf_object(&symbols, &[(base + 0x2000, &eh_frame)]).unwrap();

        let file = ElfFile64::<object::Endianness>::parse(&*object).unwrap();
        assert_eq!(
            file.elf_header().e_type(object::Endianness::Little),
            elf::ET_REL
        );
        let sections: Vec<_> = file
            .sections()
            .map(|s| (s.name().unwrap().to_owned(), s.address(), s.size()))
            .collect();
        assert_eq!(
            sections,
            [
                (".text".to_owned(), base as u64, 64),
                (".text.1".to_owned(), base as u64 + 0x1000, 64),
                (".eh_frame".to_owned(), base as u64 + 0x2000, 8),
                (".symtab".to_owned(), 0, 4 * 24),
                (".strtab".to_owned(), 0, 7),
                (".shstrtab".to_owned(), 0, 51),
            ]
        );
        let eh = file.section_by_name(".eh_frame").unwrap();
        assert_eq!(eh.data().unwrap(), eh_frame);
        let functions: Vec<_> = file
            .symbols()
            .map(|s| {
                let section = match s.section() {
                    SymbolSection::Section(index) => index.0,
                    other => panic!("{other:?}"),
                };
                (
                    s.name().unwrap().to_owned(),
                    section,
                    s.address(),
                    s.size(),
                    s.is_global(),
                )
            })
            .collect();
        assert_eq!(
            functions,
            [
                ("a".to_owned(), 1, 0, 16, true),
                ("b".to_owned(), 1, 16, 8, true),
                ("c".to_owned(), 2, 32, 4, true),
            ]
        );
    }

    /// Whether an object in the descriptor's list has a section at `address`.
    fn described_at(address: u64) -> bool {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let descriptor = &raw const __jit_debug_descriptor;
        // SAFETY: the list is only changed under LOCK, which we hold; each entry's object
        // lives as long as the entry is linked.
        let mut entry = unsafe { (*descriptor).first_entry };
        while !entry.is_null() {
            // SAFETY: as above.
            let object = unsafe {
                std::slice::from_raw_parts((*entry).symfile_addr, (*entry).symfile_size as usize)
            };
            let file = ElfFile64::<object::Endianness>::parse(object).unwrap();
            if file.sections().any(|s| s.address() == address) {
                return true;
            }
            // SAFETY: as above.
            entry = unsafe { (*entry).next };
        }
        false
    }

    #[test]
    fn modules_are_described_to_debuggers_only_when_asked() {
        for debugger in [false, true] {
            let bytes = module();
            let source = crate::ModuleSource::Bytes {
                bytes,
                name: "jit-test".into(),
            };
            let options = crate::LoadOptions::default()
                .with_verify_hash(false)
                .with_debugger(debugger);
            // SAFETY: the module's code is `ret` instructions, never called.
            let module = unsafe { crate::load(source, &options, None) }.unwrap();
            let base = module.base() as u64;
            assert_eq!(described_at(base), debugger, "debugger: {debugger}");
            drop(module);
            assert!(!described_at(base), "still described after unload");
        }
    }
}
