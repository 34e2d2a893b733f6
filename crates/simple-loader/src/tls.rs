//! Thread-local storage of modules: one block per module and thread, made on first use.
//!
//! The C library gives thread-local blocks (DTV slots) only to the objects its own dynamic
//! linker loads, so a module's `__thread` variables are served by the loader instead. The
//! packer turns every dynamic-model access into a call to `__tls_get_addr(&pair)`, with `pair`
//! a `tls_index { module, offset }` in the module's GOT; the loader writes its handle of the
//! module (the address of a [`TlsModule`]) into `module` (the `tls_module` relocation), and
//! resolves the module's `__tls_get_addr` import to [`TLS_GET_ADDR`] instead of the C
//! library's.
//!
//! Each module with a `tls` section holds a process-wide *slot* while it is loaded, and a
//! generation number no other module ever gets. Each thread keeps, behind one pthread key, a
//! table of blocks indexed by slot and tagged with the generation they were made for. A lookup
//! that finds the slot empty, or holding a block of an unloaded module that had the slot
//! before, makes a fresh block from the module's template: its initialised bytes, then
//! zeros. Blocks are freed when their thread exits (the key's destructor), or when the thread
//! next uses the slot for a later module. No thread ever frees another thread's block, so
//! unloading a module needs no cross-thread coordination: blocks other threads hold for it
//! are reclaimed lazily, at most one per slot and thread.
//!
//! Code compiled for the initial-exec model or for TLS descriptors addresses thread-locals at
//! a fixed offset from the thread pointer instead (`tp_offset` and `tls_descriptor`
//! relocations). A module with such code gets a *static* block from the C library
//! ([`crate::sys::static_tls`]); its `__tls_get_addr` pairs, if any, then resolve into that
//! block too, so every access model sees the same variables.

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use smf_format::{Module as Parsed, SectionKind};

use crate::sys::static_tls::StaticBlock;

/// The argument of `__tls_get_addr`, as the psABI lays it out.
#[repr(C)]
struct TlsIndex {
    module: usize,
    offset: usize,
}

/// The loader's description of one module's thread-local block. Its address is the handle
/// written into the module's `tls_index` pairs, so it lives in a `Box` that does not move and
/// outlives the module's image.
#[derive(Debug)]
pub(crate) struct TlsModule {
    slot: usize,
    generation: u64,
    /// Image offset of the template.
    offset: usize,
    /// Address of the template in the mapped image; set once the image is mapped.
    template: AtomicUsize,
    file_size: usize,
    layout: Layout,
    /// The C library's static block, once made ([`TlsModule::make_static`]); then every
    /// access goes there.
    static_block: OnceLock<StaticBlock>,
}

/// Slots in use, and freed slots to hand out again.
#[derive(Default)]
struct Slots {
    next: usize,
    free: Vec<usize>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next: 0,
    free: Vec::new(),
});
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl TlsModule {
    /// The TLS description of `module`, if it has a `tls` section (the reader allows one).
    pub(crate) fn for_module(module: &Parsed<'_>) -> Option<Box<TlsModule>> {
        let section = module
            .loaded_sections()
            .find(|s| s.kind == SectionKind::Tls)?;
        // The reader checked the section lies inside the image (which fits in memory) and
        // that its alignment is a power of two up to a page.
        let size = usize::try_from(section.mem_size).ok()?.max(1);
        let layout = Layout::from_size_align(size, section.align as usize).ok()?;
        let slot = {
            let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
            slots.free.pop().unwrap_or_else(|| {
                slots.next += 1;
                slots.next - 1
            })
        };
        Some(Box::new(TlsModule {
            slot,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            offset: section.vaddr as usize,
            template: AtomicUsize::new(0),
            file_size: section.file_size as usize,
            layout,
            static_block: OnceLock::new(),
        }))
    }

    /// Image offsets of the module's block: the `tls` section's memory.
    pub(crate) fn block(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.layout.size()
    }

    /// Image offsets of the template's initialised bytes (the rest of the block is zeros).
    pub(crate) fn template(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.file_size
    }

    /// Makes the module's static block, whose every copy starts as `template` (the
    /// relocated initialised part of the `tls` section) followed by zeros, and returns its
    /// distance from the thread pointer: the value of `tp_offset` relocations before their
    /// addend. Called once, while the image is mapped and before any of its code runs.
    pub(crate) fn make_static(&self, template: &[u8]) -> std::io::Result<i64> {
        let block = StaticBlock::new(
            template,
            self.layout.size() as u64,
            self.layout.align() as u64,
        )?;
        let offset = block.offset() as i64;
        self.static_block
            .set(block)
            .map_err(|_| std::io::Error::other("the module's static block was already made"))?;
        Ok(offset)
    }

    /// The handle written by `tls_module` relocations.
    pub(crate) fn handle(&self) -> u64 {
        self as *const TlsModule as u64
    }

    /// Records where the image is mapped, before any code of the module runs.
    pub(crate) fn set_base(&self, base: usize) {
        self.template.store(base + self.offset, Ordering::Release);
    }
}

impl Drop for TlsModule {
    fn drop(&mut self) {
        SLOTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .free
            .push(self.slot);
    }
}

/// One thread's block for one slot.
struct Block {
    generation: u64,
    address: *mut u8,
    layout: Layout,
}

/// One thread's blocks, indexed by slot.
#[derive(Default)]
struct ThreadBlocks {
    blocks: Vec<Option<Block>>,
}

impl Drop for ThreadBlocks {
    fn drop(&mut self) {
        for block in self.blocks.drain(..).flatten() {
            // SAFETY: each block was allocated with its recorded layout and is freed once, here.
            unsafe { std::alloc::dealloc(block.address, block.layout) };
        }
    }
}

/// The pthread key whose per-thread value is a `Box<ThreadBlocks>`. pthread rather than
/// `thread_local!` so that a module's own thread-exit handlers, which may run after ours,
/// still find (a fresh) table instead of a destroyed one: glibc runs key destructors again
/// when a destructor sets a value.
fn key() -> libc::pthread_key_t {
    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; the destructor has the required signature.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(free_thread_blocks)) };
        if rc != 0 {
            // Without a key no module can have thread-locals; there is no caller to tell.
            eprintln!("simple-loader: cannot create the thread-local key: error {rc}");
            std::process::abort();
        }
        key
    })
}

extern "C" fn free_thread_blocks(table: *mut c_void) {
    if !table.is_null() {
        // SAFETY: the key's values are only ever `Box<ThreadBlocks>` leaked by `thread_blocks`;
        // the C library calls this once per value, after clearing it.
        drop(unsafe { Box::from_raw(table.cast::<ThreadBlocks>()) });
    }
}

/// The calling thread's table, created on first use.
fn thread_blocks() -> &'static mut ThreadBlocks {
    let key = key();
    // SAFETY: reading this thread's value of a valid key.
    let mut table = unsafe { libc::pthread_getspecific(key) }.cast::<ThreadBlocks>();
    if table.is_null() {
        table = Box::into_raw(Box::default());
        // SAFETY: storing this thread's value of a valid key; the destructor frees it.
        if unsafe { libc::pthread_setspecific(key, table.cast()) } != 0 {
            eprintln!("simple-loader: cannot set a thread-local block table");
            std::process::abort();
        }
    }
    // SAFETY: the table belongs to this thread alone and lives until its exit; the only
    // reference made from it lives for the duration of one `tls_get_addr` call.
    unsafe { &mut *table }
}

/// The loader's `__tls_get_addr`: the address of `offset` in the calling thread's block of
/// `module`. Called by module code only, with a `tls_index` the loader wrote.
extern "C" fn tls_get_addr(index: *const TlsIndex) -> *mut u8 {
    // SAFETY: module code passes the address of a `tls_index` pair of its GOT, whose first
    // word the loader set to the handle of a `TlsModule` that lives as long as the module.
    let (module, offset) = unsafe {
        let index = &*index;
        (&*(index.module as *const TlsModule), index.offset)
    };
    if let Some(block) = module.static_block.get() {
        return block.address().wrapping_add(offset);
    }
    let table = thread_blocks();
    if table.blocks.len() <= module.slot {
        table.blocks.resize_with(module.slot + 1, || None);
    }
    let entry = &mut table.blocks[module.slot];
    let block = match entry {
        Some(block) if block.generation == module.generation => block.address,
        _ => {
            // SAFETY: the layout has a non-zero size.
            let address = unsafe { std::alloc::alloc_zeroed(module.layout) };
            if address.is_null() {
                std::alloc::handle_alloc_error(module.layout);
            }
            let template = module.template.load(Ordering::Acquire) as *const u8;
            // SAFETY: the template is `file_size` readable bytes of the mapped image (the
            // module is running, so it is mapped); the new block holds at least that many.
            unsafe { std::ptr::copy_nonoverlapping(template, address, module.file_size) };
            if let Some(stale) = entry.replace(Block {
                generation: module.generation,
                address,
                layout: module.layout,
            }) {
                // SAFETY: a block of an unloaded module this thread held; freed once, here.
                unsafe { std::alloc::dealloc(stale.address, stale.layout) };
            }
            address
        }
    };
    // The packer checked each offset against the section's size.
    block.wrapping_add(offset)
}

// The entry modules call: it aligns the stack before calling `tls_get_addr`, as glibc's
// does, because code compiled by old compilers calls `__tls_get_addr` with a misaligned one.
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_get_addr,\"ax\",@progbits",
    ".p2align 4",
    ".globl smf_loader_tls_get_addr",
    ".hidden smf_loader_tls_get_addr",
    ".type smf_loader_tls_get_addr,@function",
    "smf_loader_tls_get_addr:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "and rsp, -16",
    "call {inner}",
    "mov rsp, rbp",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size smf_loader_tls_get_addr, . - smf_loader_tls_get_addr",
    ".popsection",
    inner = sym tls_get_addr,
);

// The function `tls_descriptor` relocations store in the first word of a TLS descriptor.
// Module code calls it with the descriptor's address in rax and expects, in rax, the
// variable's offset from the thread pointer, every other register preserved (the psABI's
// TLS descriptor convention). For a static block that offset is the descriptor's second
// word, which a `tp_offset` relocation set.
std::arch::global_asm!(
    ".pushsection .text.smf_loader_tls_descriptor,\"ax\",@progbits",
    ".p2align 4",
    ".globl smf_loader_tls_descriptor",
    ".hidden smf_loader_tls_descriptor",
    ".type smf_loader_tls_descriptor,@function",
    "smf_loader_tls_descriptor:",
    ".cfi_startproc",
    "mov rax, qword ptr [rax + 8]",
    "ret",
    ".cfi_endproc",
    ".size smf_loader_tls_descriptor, . - smf_loader_tls_descriptor",
    ".popsection",
);

unsafe extern "C" {
    fn smf_loader_tls_get_addr(index: *const c_void) -> *mut c_void;
    fn smf_loader_tls_descriptor();
}

/// The value of `tls_descriptor` relocations.
pub(crate) fn tls_descriptor_address() -> usize {
    smf_loader_tls_descriptor as *const () as usize
}

/// The address modules with a `tls` section get for their `__tls_get_addr` import.
pub(crate) fn tls_get_addr_address() -> usize {
    smf_loader_tls_get_addr as *const () as usize
}

/// The name of the function thread-local accesses call.
pub(crate) const TLS_GET_ADDR: &str = "__tls_get_addr";

#[cfg(test)]
mod tests {
    use super::*;
    use smf_format::{LoadedSection, ModuleBuilder};

    fn module_with_tls() -> Vec<u8> {
        let mut builder = ModuleBuilder::new();
        builder.add_section(LoadedSection {
            kind: SectionKind::Tls,
            name: ".tls",
            vaddr: 0,
            mem_size: 64,
            align: 16,
            data: vec![7, 8, 9],
        });
        builder.write().unwrap()
    }

    fn get(module: usize, offset: usize) -> *mut u8 {
        tls_get_addr(&TlsIndex { module, offset })
    }

    #[test]
    fn blocks_are_per_thread_copies_and_a_reused_slot_gets_a_fresh_block() {
        let bytes = module_with_tls();
        let parsed = Parsed::parse(&bytes).unwrap();
        // Stand-ins for the mapped templates of two modules (the tls section is at offset 0).
        let first_template = [7u8, 8, 9];
        let second_template = [1u8, 2, 3];

        let first = TlsModule::for_module(&parsed).unwrap();
        first.set_base(first_template.as_ptr() as usize);
        let handle = first.handle() as usize;
        let block = get(handle, 0);
        assert_eq!(block as usize % 16, 0, "aligned as the section says");
        // SAFETY: the block is 64 bytes, this thread's own.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(block, 5), [7, 8, 9, 0, 0]);
            *block.add(1) = 100;
        }
        assert_eq!(
            get(handle, 1),
            block.wrapping_add(1),
            "the same block again"
        );
        // Another thread starts from the template, not from this thread's copy.
        let (other, other_block) = std::thread::spawn(move || {
            let p = get(handle, 1);
            // SAFETY: that thread's own block.
            (unsafe { *p }, p as usize)
        })
        .join()
        .unwrap();
        assert_eq!(other, 8);
        assert_ne!(other_block, block as usize + 1);

        // Unloaded, its slot goes to the next module; this thread's stale block is replaced.
        let slot = first.slot;
        drop(first);
        let second = TlsModule::for_module(&parsed).unwrap();
        assert_eq!(second.slot, slot);
        second.set_base(second_template.as_ptr() as usize);
        let fresh = get(second.handle() as usize, 1);
        // SAFETY: this thread's block for the second module.
        assert_eq!(unsafe { *fresh }, 2);
    }
}
