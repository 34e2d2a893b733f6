//! Static thread-local blocks from the C library, for modules whose code addresses its
//! thread-locals at a fixed offset from the thread pointer (initial-exec accesses and TLS
//! descriptors).
//!
//! Such an offset must be the same in every thread, so the block has to live in the static
//! TLS area the C library lays out below each thread's control block; only glibc's own
//! dynamic linker hands out space there (from the few hundred bytes of surplus it reserves
//! for libraries loaded later). The loader therefore asks it to: it writes a minimal shared
//! object into an anonymous file (no code, a `PT_TLS` segment with the module's template,
//! and one relocation asking for its own block's offset from the thread pointer,
//! `R_X86_64_TPOFF64` or `R_AARCH64_TLS_TPREL` (1030, called `R_AARCH64_TLS_TPREL64` by
//! binutils)) and opens it. Resolving that
//! relocation makes glibc allocate the block in static TLS, copy the template into every
//! running thread's copy, and give every later thread a copy at creation; the relocated word
//! is the block's offset from the thread pointer. Closing the object gives the block back,
//! but glibc reuses static TLS only from the end of the area: blocks closed in the reverse
//! order of their opening are reused, any other order leaves holes (docs/RUNTIME.md).
//!
//! This is glibc-specific; elsewhere the loader refuses such modules.

use std::ffi::{CString, c_void};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use object::elf;
use object::endian::{I64, LittleEndian as LE, U16, U32, U64};
use object::pod::bytes_of;

use crate::sys::arch;

/// A static TLS block, held by a carrier object the C library loaded.
#[derive(Debug)]
pub(crate) struct StaticBlock {
    handle: *mut c_void,
    offset: isize,
    /// The carrier's file, open while the carrier is: glibc recognises an object it already
    /// loaded by the name it was opened with, so no other carrier may be opened through
    /// the same `/proc/self/fd/N` name meanwhile. Closed after `dlclose` (fields drop after
    /// `Drop::drop`).
    _file: OwnedFd,
}

// SAFETY: the handle is only passed to `dlclose`, once, on drop; glibc's dlopen handles are
// process-wide and may be closed from any thread.
unsafe impl Send for StaticBlock {}
// SAFETY: shared references only read `offset`.
unsafe impl Sync for StaticBlock {}

impl StaticBlock {
    /// Allocates a block of `mem_size` bytes aligned to `align` (a power of two), whose first
    /// bytes every thread sees initialised to `template`.
    pub(crate) fn new(template: &[u8], mem_size: u64, align: u64) -> io::Result<StaticBlock> {
        let object = carrier(template, mem_size, align);
        // SAFETY: memfd_create with a valid C string; failure is reported as -1.
        let fd = unsafe { libc::memfd_create(c"smf-static-tls".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned here alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(fd.try_clone()?).write_all(&object)?;
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the object has no initialisers, no code and no dependencies: opening it
        // runs nothing but glibc's own relocation of one word and its TLS setup.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(io::Error::other(refusal(dl_error(), mem_size, align)));
        }
        let mut map: *const LinkMapHead = std::ptr::null();
        // SAFETY: `handle` is a live handle; RTLD_DI_LINKMAP writes one `link_map` pointer.
        let rc = unsafe {
            libc::dlinfo(
                handle,
                libc::RTLD_DI_LINKMAP,
                (&raw mut map).cast::<c_void>(),
            )
        };
        if rc != 0 || map.is_null() {
            let message = dl_error();
            // SAFETY: closing the handle opened above, once.
            unsafe { libc::dlclose(handle) };
            return Err(io::Error::other(message));
        }
        // SAFETY: `map` is the object's live link map; `l_addr` is its load bias, and the
        // relocated word lies inside its one writable segment, at the address the layout
        // gave it.
        let offset = unsafe {
            let word = ((*map).l_addr + OFFSET_WORD) as *const i64;
            word.read()
        };
        Ok(StaticBlock {
            handle,
            offset: offset as isize,
            _file: fd,
        })
    }

    /// The block's offset from the thread pointer (negative on x86-64, where the blocks lie
    /// below the thread control block; positive on aarch64, where they lie above it).
    pub(crate) fn offset(&self) -> isize {
        self.offset
    }

    /// The calling thread's copy of the block: every thread has one at the same distance
    /// from its thread pointer.
    pub(crate) fn address(&self) -> *mut u8 {
        arch::thread_pointer().wrapping_add_signed(self.offset) as *mut u8
    }
}

impl Drop for StaticBlock {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `new` and is closed once. The block goes when its
        // module is detached, after the module's destructors ran; no code of the module
        // reaches the block afterwards (other threads still inside a module being unloaded
        // are the host's error, as for the module's memory).
        unsafe { libc::dlclose(self.handle) };
    }
}

/// The alignment every thread pointer has with glibc (`TCB_ALIGNMENT`: 64 bytes on x86, the
/// generic 32 elsewhere, aarch64 among them); more only if the program's own thread-locals
/// (those of the executable and the libraries loaded with it) ask for more.
const THREAD_POINTER_ALIGN: u64 = if cfg!(target_arch = "x86_64") { 64 } else { 32 };

/// Why glibc refused a block, for the user. glibc says `cannot allocate memory in static TLS
/// block` both when its reserve is used up and when the block is aligned beyond its thread
/// pointers' alignment (`dl_tls_static_align`: every thread's copy must lie at the same
/// offset from its thread pointer, so it cannot align a block more than the pointers are).
/// Only the first is helped by a larger reserve; the second is told apart by asking for the
/// same size at the thread pointers' alignment, which is given back at once (the last block
/// opened, so glibc takes its space back).
fn refusal(reason: String, mem_size: u64, align: u64) -> String {
    if align > THREAD_POINTER_ALIGN && StaticBlock::new(&[], mem_size, THREAD_POINTER_ALIGN).is_ok()
    {
        format!(
            "{reason}: glibc has room for the block's {mem_size} bytes but not at its \
             {align}-byte alignment: it aligns a static block of an object loaded after \
             start-up to at most its thread pointers' alignment ({THREAD_POINTER_ALIGN} bytes \
             unless the program's own thread-locals need more), and a larger reserve does \
             not change that; the module's thread-locals must be aligned to at most \
             {THREAD_POINTER_ALIGN} bytes, or reached through the general- or local-dynamic \
             model"
        )
    } else {
        format!(
            "{reason} (glibc's reserve for them can be raised with \
             GLIBC_TUNABLES=glibc.rtld.optional_static_tls=BYTES)"
        )
    }
}

/// The first field of glibc's `struct link_map` (`<link.h>`): the object's load bias.
#[repr(C)]
struct LinkMapHead {
    l_addr: usize,
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call on this thread.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "the C library's dynamic linker gave no reason".to_owned()
    } else {
        // SAFETY: non-null, NUL-terminated, read before any other dl call.
        unsafe { std::ffi::CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }
}

const EHDR: usize = size_of::<elf::FileHeader64<LE>>();
const PHDR: usize = size_of::<elf::ProgramHeader64<LE>>();
const PHNUM: usize = 4;
const DYN: usize = size_of::<elf::Dyn64<LE>>();
const DYNAMIC_TAGS: usize = 10;
const SYM: usize = size_of::<elf::Sym64<LE>>();
const RELA: usize = size_of::<elf::Rela64<LE>>();

const DYNAMIC: usize = EHDR + PHNUM * PHDR;
const DYNSYM: usize = DYNAMIC + DYNAMIC_TAGS * DYN;
const DYNSTR: usize = DYNSYM + 2 * SYM;
const RELA_TABLE: usize = DYNSTR + 8;
const OFFSET_WORD: usize = RELA_TABLE + RELA;
const HEADERS_END: usize = OFFSET_WORD + 8;

/// The carrier object: one read-write `PT_LOAD` holding everything (its dynamic section,
/// symbol table, relocation and the relocated word, then the template), `PT_DYNAMIC`,
/// `PT_TLS` and a non-executable `PT_GNU_STACK`. Addresses equal file offsets.
fn carrier(template: &[u8], mem_size: u64, align: u64) -> Vec<u8> {
    let align = align.max(1);
    let template_at = (HEADERS_END as u64).next_multiple_of(align);
    let end = template_at + template.len() as u64;
    let e = LE;

    let mut out = Vec::with_capacity(end as usize);
    out.extend_from_slice(bytes_of(&elf::FileHeader64::<LE> {
        e_ident: elf::Ident {
            magic: elf::ELFMAG,
            class: elf::ELFCLASS64,
            data: elf::ELFDATA2LSB,
            version: elf::EV_CURRENT,
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(e, elf::ET_DYN),
        e_machine: U16::new(e, arch::ELF_MACHINE),
        e_version: U32::new(e, u32::from(elf::EV_CURRENT.0)),
        e_entry: U64::new(e, 0),
        e_phoff: U64::new(e, EHDR as u64),
        e_shoff: U64::new(e, 0),
        e_flags: U32::new(e, elf::FileFlags(0)),
        e_ehsize: U16::new(e, EHDR as u16),
        e_phentsize: U16::new(e, PHDR as u16),
        e_phnum: U16::new(e, PHNUM as u16),
        e_shentsize: U16::new(e, size_of::<elf::SectionHeader64<LE>>() as u16),
        e_shnum: U16::new(e, 0),
        e_shstrndx: U16::new(e, elf::SHN_UNDEF),
    }));
    let segment = |p_type, flags, offset: u64, file_size: u64, mem_size: u64, align: u64| {
        elf::ProgramHeader64::<LE> {
            p_type: U32::new(e, p_type),
            p_flags: U32::new(e, flags),
            p_offset: U64::new(e, offset),
            p_vaddr: U64::new(e, offset),
            p_paddr: U64::new(e, offset),
            p_filesz: U64::new(e, file_size),
            p_memsz: U64::new(e, mem_size),
            p_align: U64::new(e, align),
        }
    };
    let rw = elf::PF_R | elf::PF_W;
    let dynamic_size = (DYNAMIC_TAGS * DYN) as u64;
    for header in [
        segment(elf::PT_LOAD, rw, 0, end, end, arch::MAX_PAGE_SIZE),
        segment(
            elf::PT_DYNAMIC,
            rw,
            DYNAMIC as u64,
            dynamic_size,
            dynamic_size,
            8,
        ),
        segment(
            elf::PT_TLS,
            elf::PF_R,
            template_at,
            template.len() as u64,
            mem_size,
            align,
        ),
        segment(elf::PT_GNU_STACK, rw, 0, 0, 0, 16),
    ] {
        out.extend_from_slice(bytes_of(&header));
    }
    for (tag, value) in [
        (elf::DT_SYMTAB, DYNSYM as u64),
        (elf::DT_SYMENT, SYM as u64),
        (elf::DT_STRTAB, DYNSTR as u64),
        (elf::DT_STRSZ, 1),
        (elf::DT_RELA, RELA_TABLE as u64),
        (elf::DT_RELASZ, RELA as u64),
        (elf::DT_RELAENT, RELA as u64),
        (elf::DT_FLAGS, elf::DF_STATIC_TLS.0),
        (elf::DT_NULL, 0),
        (elf::DT_NULL, 0),
    ] {
        out.extend_from_slice(bytes_of(&elf::Dyn64::<LE> {
            d_tag: I64::new(e, tag),
            d_val: U64::new(e, value),
        }));
    }
    // The null symbol, then a local thread-local symbol at the start of the block.
    let symbol = |info, shndx| elf::Sym64::<LE> {
        st_name: U32::new(e, 0),
        st_info: info,
        st_other: elf::SymbolOther::default(),
        st_shndx: U16::new(e, shndx),
        st_value: U64::new(e, 0),
        st_size: U64::new(e, 0),
    };
    out.extend_from_slice(bytes_of(&symbol(
        elf::SymbolInfo::default(),
        elf::SHN_UNDEF,
    )));
    out.extend_from_slice(bytes_of(&symbol(
        elf::SymbolInfo::new(elf::STB_LOCAL, elf::STT_TLS),
        elf::SHN_ABS,
    )));
    out.extend_from_slice(&[0; 8]); // the string table: one empty name
    let mut rela = elf::Rela64::<LE> {
        r_offset: U64::new(e, OFFSET_WORD as u64),
        r_info: U64::new(e, 0),
        r_addend: I64::new(e, 0),
    };
    rela.set_r_info(e, false, 1, arch::TPOFF_RELOCATION);
    out.extend_from_slice(bytes_of(&rela));
    out.extend_from_slice(&[0; 8]); // the word glibc relocates
    debug_assert_eq!(out.len(), HEADERS_END);
    out.resize(template_at as usize, 0);
    out.extend_from_slice(template);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taken by every test that asks glibc for static TLS. glibc gives a closed block's room
    /// back only while nothing allocated after it is still open, so a test's blocks held
    /// while another test runs its many open-close rounds would exhaust the reserve.
    static RESERVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn reserve() -> std::sync::MutexGuard<'static, ()> {
        RESERVE.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn block_bytes(block: &StaticBlock, len: usize) -> Vec<u8> {
        // SAFETY: the calling thread's copy of a live block of at least `len` bytes.
        unsafe { std::slice::from_raw_parts(block.address(), len) }.to_vec()
    }

    #[test]
    fn every_thread_gets_its_own_copy_at_the_same_offset() {
        let _reserve = reserve();
        // A thread running before the block exists gets its copy initialised too.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<isize>();
        let early = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            let offset = go_rx.recv().unwrap();
            let start = arch::thread_pointer().wrapping_add_signed(offset);
            // SAFETY: this thread's copy of the block, 32 bytes.
            unsafe { std::slice::from_raw_parts(start as *const u8, 6) }.to_vec()
        });
        ready_rx.recv().unwrap();

        let block = StaticBlock::new(&[1, 2, 3, 4], 32, 16).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert!(block.offset() < 0, "below the thread pointer on x86-64");
        } else {
            // TLS variant I: above the thread pointer and glibc's 16-byte thread control block.
            assert!(
                block.offset() >= 16,
                "above the thread control block on aarch64"
            );
        }
        assert_eq!(block.offset() % 16, 0, "aligned as asked");
        assert_eq!(block_bytes(&block, 6), [1, 2, 3, 4, 0, 0]);
        go_tx.send(block.offset()).unwrap();
        assert_eq!(early.join().unwrap(), [1, 2, 3, 4, 0, 0]);

        // Writes stay in the writing thread's copy; a later thread starts from the template.
        // SAFETY: this thread's copy of the block.
        unsafe { *block.address() = 9 };
        let offset = block.offset();
        let late = std::thread::spawn(move || {
            let start = arch::thread_pointer().wrapping_add_signed(offset);
            // SAFETY: this thread's copy of the block.
            unsafe { std::slice::from_raw_parts(start as *const u8, 6) }.to_vec()
        });
        assert_eq!(late.join().unwrap(), [1, 2, 3, 4, 0, 0]);
        assert_eq!(block_bytes(&block, 1), [9]);
    }

    #[test]
    fn blocks_alive_at_once_are_distinct() {
        let _reserve = reserve();
        let blocks: Vec<_> = (0..4u8)
            .map(|i| StaticBlock::new(&[i; 8], 8, 8).unwrap())
            .collect();
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(block_bytes(block, 8), [i as u8; 8]);
        }
    }

    #[test]
    fn an_alignment_beyond_the_thread_pointers_is_named_as_the_cause() {
        let _reserve = reserve();
        // A page: more than this test program's own thread-locals ask for, so glibc refuses
        // it; the same 64 bytes at the thread pointers' alignment would fit.
        let error = StaticBlock::new(&[1; 8], 64, 4096).unwrap_err().to_string();
        assert!(
            error.contains("cannot allocate memory in static TLS block"),
            "{error}"
        );
        assert!(error.contains("not at its 4096-byte alignment"), "{error}");
        assert!(!error.contains("GLIBC_TUNABLES"), "{error}");
        // The probe gave its block back: the reserve is as large as before.
        for _ in 0..200 {
            drop(StaticBlock::new(&[1; 8], 64, THREAD_POINTER_ALIGN).unwrap());
        }
    }

    #[test]
    fn a_full_reserve_points_at_the_tunable() {
        let _reserve = reserve();
        let error = StaticBlock::new(&[], 1 << 30, THREAD_POINTER_ALIGN)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("GLIBC_TUNABLES=glibc.rtld.optional_static_tls"),
            "{error}"
        );
        assert!(!error.contains("alignment"), "{error}");
    }

    #[test]
    fn blocks_are_given_back_when_closed() {
        let _reserve = reserve();
        // Far more blocks than the static TLS surplus could hold at once.
        for round in 0..200u8 {
            let block = StaticBlock::new(&[round; 64], 128, THREAD_POINTER_ALIGN).unwrap();
            assert_eq!(block_bytes(&block, 64), [round; 64]);
        }
    }
}
