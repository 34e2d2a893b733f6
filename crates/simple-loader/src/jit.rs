//! The GDB JIT interface: how a debugger learns the function names of loaded modules.
//!
//! GDB (and LLDB) put a breakpoint on `__jit_debug_register_code` and, when it is hit, read
//! `__jit_debug_descriptor`: a list of in-memory object files, with the entry just added or
//! removed. For each module the loader writes a small ELF relocatable object with one
//! section per code section, whose address (`sh_addr`) is where that code is mapped, and a
//! symbol table of the module's functions, plus a copy of its `.eh_frame` at the run-time
//! address of the original. That is enough for backtraces to name module functions and walk
//! through their frames, and for `break function` to work, including pending breakpoints set
//! before the module is loaded. There is no line information: modules carry no debug info.

use std::sync::Mutex;

use object::elf;
use object::write::elf::{FileHeader, SectionHeader, Sym, Writer};
use object::{Endianness, write::StringId};

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
fn elf_object(symbols: &ModuleSymbols, eh_frames: &[(usize, &[u8])]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = Writer::new(Endianness::Little, true, &mut out);
    writer.reserve_file_header();
    let eh_offsets: Vec<u64> = eh_frames
        .iter()
        .map(|(_, bytes)| writer.reserve(bytes.len() as u64, 8))
        .collect();
    writer.reserve_null_section_index();
    let section_names: Vec<String> = (0..symbols.code.len())
        .map(|i| {
            if i == 0 {
                ".text".into()
            } else {
                format!(".text.{i}")
            }
        })
        .collect();
    let mut sections = Vec::with_capacity(symbols.code.len());
    for name in &section_names {
        let name = writer.add_section_name(name.as_bytes());
        sections.push((name, writer.reserve_section_index()));
    }
    let eh_sections: Vec<_> = eh_frames
        .iter()
        .map(|_| {
            let name = writer.add_section_name(b".eh_frame");
            (name, writer.reserve_section_index())
        })
        .collect();
    writer.reserve_null_symbol_index();
    let mut functions: Vec<(StringId, usize, &crate::symbolize::Function)> = Vec::new();
    for function in &symbols.functions {
        let Some(section) = symbols
            .code
            .iter()
            .position(|&(start, end)| (start..end).contains(&function.start))
        else {
            continue;
        };
        let name = writer.add_string(symbols.name_of(function).as_bytes());
        writer.reserve_symbol_index(Some(sections[section].1));
        functions.push((name, section, function));
    }
    writer.reserve_symtab_section_index();
    writer.reserve_strtab_section_index();
    writer.reserve_shstrtab_section_index();
    writer.reserve_symtab();
    writer.reserve_strtab().ok()?;
    writer.reserve_shstrtab().ok()?;
    writer.reserve_section_headers();

    writer
        .write_file_header(&FileHeader {
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            e_type: elf::ET_REL,
            e_machine: elf::EM_X86_64,
            e_entry: 0,
            e_flags: elf::FileFlags(0),
        })
        .ok()?;
    for (_, bytes) in eh_frames {
        writer.write_align(8);
        writer.write(bytes);
    }
    writer.write_null_symbol();
    for (name, section, function) in &functions {
        let (start, _) = symbols.code[*section];
        writer.write_symbol(&Sym {
            section: Some(sections[*section].1.0),
            st_name: writer.string_offset(Some(*name)),
            st_info: elf::SymbolInfo::new(elf::STB_GLOBAL, elf::STT_FUNC),
            st_other: elf::SymbolOther(0).with_visibility(elf::STV_DEFAULT),
            st_shndx: elf::SymbolSection(0),
            st_value: (function.start - start) as u64,
            st_size: (function.end - function.start) as u64,
        });
    }
    writer.write_strtab();
    writer.write_shstrtab();
    writer.write_null_section_header();
    for (i, &(start, end)) in symbols.code.iter().enumerate() {
        writer.write_section_header(&SectionHeader {
            sh_name: writer.section_name_offset(Some(sections[i].0)),
            sh_type: elf::SHT_NOBITS,
            sh_flags: elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0),
            sh_addr: start as u64,
            sh_offset: 0,
            sh_size: (end - start) as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 16,
            sh_entsize: 0,
        });
    }
    for (i, (address, bytes)) in eh_frames.iter().enumerate() {
        writer.write_section_header(&SectionHeader {
            sh_name: writer.section_name_offset(Some(eh_sections[i].0)),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: elf::SectionFlags(elf::SHF_ALLOC.0),
            sh_addr: *address as u64,
            sh_offset: eh_offsets[i],
            sh_size: bytes.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 8,
            sh_entsize: 0,
        });
    }
    writer.write_symtab_section_header(1);
    writer.write_strtab_section_header();
    writer.write_shstrtab_section_header();
    Some(out)
}
