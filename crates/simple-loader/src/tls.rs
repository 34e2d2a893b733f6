//! Thread-local storage of modules: one block per module and thread, made on first use.
//!
//! The C library gives thread-local blocks (DTV slots) only to the objects its own dynamic
//! linker loads, so a module's `__thread` variables are served by the loader instead. The
//! packer turns every dynamic-model access into a call to `__tls_get_addr(&pair)`, with `pair`
//! a `tls_index { module, offset }` in the module's GOT; the loader writes its *handle* of the
//! module into `module` (the `tls_module` relocation), and resolves the module's
//! `__tls_get_addr` import to [`TLS_GET_ADDR`] instead of the C library's.
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
//! The handle is a number, not an address: the slot in its low [`SLOT_BITS`] bits and the
//! module's generation above them. The word lies in module memory, so `__tls_get_addr` takes
//! nothing from it on trust: the slot indexes a table the loader owns (bounds-checked), the
//! table entry must hold exactly this handle (so a stale or made-up generation is refused),
//! and the `tls_index` itself must lie inside the image of the module the handle names (so
//! one module cannot pass another's handle). A word that fails any check is a fatal error
//! naming the module, never a read of memory the word points to.
//!
//! Code compiled for the initial-exec model or for TLS descriptors addresses thread-locals at
//! a fixed offset from the thread pointer instead (`tp_offset` and `tls_descriptor`
//! relocations). A module with such code gets a *static* block from the C library
//! ([`crate::sys::static_tls`]); its `__tls_get_addr` pairs, if any, then resolve into that
//! block too, so every access model sees the same variables. The descriptor function reads
//! only the descriptor's own second word (module memory, returned to the module as it is),
//! never loader state.

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use smf_format::{Module as Parsed, SectionKind};

use crate::sys::static_tls::StaticBlock;

/// The argument of `__tls_get_addr`, as the psABI lays it out.
#[repr(C)]
pub(crate) struct TlsIndex {
    module: u64,
    offset: usize,
}

/// Bits of a handle that hold the slot; the generation is in the bits above. A million
/// modules with thread-locals at once is far more than the process's mappings allow
/// (`vm.max_map_count`, 65,530 by default, and each module maps several ranges).
const SLOT_BITS: u32 = 20;
const MAX_SLOTS: usize = 1 << SLOT_BITS;
/// Generations wrap after this many, skipping 0, so that no handle is 0 (a free entry). At
/// a hundred thousand loads a second a wrap takes five years; its only effect is that the
/// handle of a long-unloaded module becomes valid again for a new module of the same slot.
const GENERATION_MODULUS: u64 = (1 << (64 - SLOT_BITS)) - 1;

/// The loader's description of one module's thread-local block. It lives in a `Box` that
/// does not move and outlives the module's image; the handle table points at it while the
/// module is attached.
#[derive(Debug)]
pub(crate) struct TlsModule {
    slot: usize,
    generation: u64,
    /// The word `tls_module` relocations write.
    handle: u64,
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

/// What `__tls_get_addr` finds for a slot: the handle of the module attached to it, where
/// that module's image lies, and what a lookup that finds this thread's block needs. Entries
/// are never freed or moved (a slot passes from module to module), so checking any word
/// against the table reads loader memory only.
#[derive(Debug)]
struct Entry {
    /// The attached module's handle; 0 while no module is attached.
    handle: AtomicU64,
    image_start: AtomicUsize,
    image_len: AtomicUsize,
    /// The attached module's generation, which tags its blocks in each thread's table.
    generation: AtomicU64,
    /// Whether the attached module has a static block, where every access then goes.
    is_static: AtomicBool,
    module: AtomicPtr<TlsModule>,
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            handle: AtomicU64::new(0),
            image_start: AtomicUsize::new(0),
            image_len: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            is_static: AtomicBool::new(false),
            module: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The attached module.
    ///
    /// # Safety
    /// The entry must come from [`attached_entry`], for a `tls_index` of the running
    /// module's code: the entry then held that module's handle, so its `TlsModule` is
    /// attached and lives until its image is unmapped, and the `tls_index` lies in that
    /// image, so the module is still in use (a module unloaded while another thread still
    /// runs its code is the host's error, as for all of its memory).
    unsafe fn module(&self) -> &TlsModule {
        // SAFETY: the caller's contract.
        unsafe { &*self.module.load(Ordering::Relaxed) }
    }
}

/// Entries of the first chunk of the handle table; each further chunk is twice as large, so
/// chunks never move once made and lookups take no lock.
const FIRST_CHUNK: usize = 64;
/// Chunks enough for [`MAX_SLOTS`]: 64 × (2¹⁵ − 1) ≥ 2²⁰.
const CHUNKS: usize = 15;
const _: () = assert!(FIRST_CHUNK * ((1 << CHUNKS) - 1) >= MAX_SLOTS);

/// The handle table's first chunk, static: a process with up to 64 modules with
/// thread-locals at once finds their entries with no load of a chunk pointer.
static FIRST: [Entry; FIRST_CHUNK] = [const { Entry::new() }; FIRST_CHUNK];

/// The rest of the handle table: chunk `c` (from 1) holds `FIRST_CHUNK << c` entries, made
/// (and leaked) when a slot in it is first handed out.
static TABLE: [AtomicPtr<Entry>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// The chunk of `slot` and its index in that chunk.
fn position(slot: usize) -> (usize, usize) {
    let n = slot / FIRST_CHUNK + 1;
    let chunk = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (chunk, slot - FIRST_CHUNK * ((1 << chunk) - 1))
}

/// The table entry of `slot`, if its chunk exists.
fn entry(slot: usize) -> Option<&'static Entry> {
    if slot < FIRST_CHUNK {
        return FIRST.get(slot);
    }
    if slot >= MAX_SLOTS {
        return None;
    }
    let (chunk, index) = position(slot);
    let entries = TABLE[chunk].load(Ordering::Acquire);
    // SAFETY: a non-null chunk pointer is a leaked allocation of `FIRST_CHUNK << chunk`
    // entries, never freed, and `index` is below that.
    (!entries.is_null()).then(|| unsafe { &*entries.add(index) })
}

/// Makes the chunk of `slot` if it does not exist yet. Called with [`SLOTS`] locked, the
/// only place chunks are made.
fn make_entry(slot: usize) {
    let (chunk, _) = position(slot);
    if chunk > 0 && TABLE[chunk].load(Ordering::Acquire).is_null() {
        let entries: Box<[Entry]> = (0..FIRST_CHUNK << chunk).map(|_| Entry::new()).collect();
        TABLE[chunk].store(Box::leak(entries).as_mut_ptr(), Ordering::Release);
    }
}

impl TlsModule {
    /// The TLS description of `module`, if it has a `tls` section (the reader allows one).
    /// `None` too in the impossible case of [`MAX_SLOTS`] modules with thread-locals loaded
    /// at once: the module's handle is then 0, which `__tls_get_addr` refuses.
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
            let slot = match slots.free.pop() {
                Some(slot) => slot,
                None if slots.next < MAX_SLOTS => {
                    slots.next += 1;
                    slots.next - 1
                }
                None => return None,
            };
            make_entry(slot);
            slot
        };
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let handle = ((generation % GENERATION_MODULUS + 1) << SLOT_BITS) | slot as u64;
        Some(Box::new(TlsModule {
            slot,
            generation,
            handle,
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

    /// The handle written by `tls_module` relocations: a number `__tls_get_addr` checks
    /// against the loader's table, not an address.
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// Records where the image is mapped, before any code of the module runs.
    pub(crate) fn set_base(&self, base: usize) {
        self.template.store(base + self.offset, Ordering::Release);
    }

    /// Makes the handle valid for `tls_index` pairs inside `image`, the module's mapped
    /// image, before any code of the module runs. `self` must not move until it is dropped
    /// (it lives in a `Box`), which takes the handle back.
    pub(crate) fn attach(&self, image: Range<usize>) {
        let Some(entry) = entry(self.slot) else {
            return;
        };
        entry.image_start.store(image.start, Ordering::Relaxed);
        entry.image_len.store(image.len(), Ordering::Relaxed);
        entry.generation.store(self.generation, Ordering::Relaxed);
        entry
            .is_static
            .store(self.static_block.get().is_some(), Ordering::Relaxed);
        entry.module.store(
            self as *const TlsModule as *mut TlsModule,
            Ordering::Relaxed,
        );
        entry.handle.store(self.handle, Ordering::Release);
    }
}

impl Drop for TlsModule {
    fn drop(&mut self) {
        if let Some(entry) = entry(self.slot) {
            // Only if attached: a module whose load failed never was.
            let _ =
                entry
                    .handle
                    .compare_exchange(self.handle, 0, Ordering::Release, Ordering::Relaxed);
        }
        SLOTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .free
            .push(self.slot);
    }
}

/// Why `__tls_get_addr` refused a `tls_index`.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No attached module has this handle.
    Unknown,
    /// The handle is that of the module whose image starts here, but the `tls_index` lies
    /// outside that image.
    Foreign { owner: usize },
}

/// The table entry of the module whose handle `word` is, and its slot, provided the
/// `tls_index` at `index` lies in that module's image. Reads only the loader's table,
/// whatever `word` holds.
#[inline]
fn attached_entry(word: u64, index: usize) -> Result<(&'static Entry, usize), Refusal> {
    let slot = (word & (MAX_SLOTS as u64 - 1)) as usize;
    let entry = entry(slot).ok_or(Refusal::Unknown)?;
    if word == 0 || entry.handle.load(Ordering::Acquire) != word {
        return Err(Refusal::Unknown);
    }
    let start = entry.image_start.load(Ordering::Relaxed);
    if index.wrapping_sub(start) >= entry.image_len.load(Ordering::Relaxed) {
        return Err(Refusal::Foreign { owner: start });
    }
    Ok((entry, slot))
}

/// The module whose handle `word` is, as [`attached_entry`] checks it.
#[cfg(test)]
fn attached_module(word: u64, index: usize) -> Result<&'static TlsModule, Refusal> {
    // SAFETY: the tests pass the `tls_index` of an image they keep mapped.
    attached_entry(word, index).map(|(entry, _)| unsafe { entry.module() })
}

/// Reports a refused `tls_index` on stderr and aborts: module code cannot be given an
/// address, and returning anything else would let it write where nobody knows.
#[cold]
#[inline(never)]
fn refuse(word: u64, index: usize, refusal: Refusal) -> ! {
    let module_at = |address| {
        crate::runtime::module_name(address).unwrap_or_else(|| String::from("<no loaded module>"))
    };
    let reason = match refusal {
        Refusal::Unknown => String::from("no loaded module has that handle"),
        Refusal::Foreign { owner } => format!("that is the handle of {}", module_at(owner)),
    };
    let message = format!(
        "simple-loader: fatal: module {} called __tls_get_addr with tls_index {index:#x} whose \
         module word {word:#x} is not its thread-local handle: {reason} (a wrong tls_module \
         relocation?)\n",
        module_at(index),
    );
    // Straight to the file: nothing of Rust's stderr state is needed, and the whole line is
    // one write.
    crate::sys::write_stderr(message.as_bytes());
    std::process::abort();
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

/// The thread key (`sys::ThreadKey`, a pthread key or a fiber-local slot) whose per-thread
/// value is a `Box<ThreadBlocks>`. A key rather than `thread_local!` so that a module's own
/// thread-exit handlers, which may run after ours, still find (a fresh) table instead of a
/// destroyed one: glibc runs key destructors again when a destructor sets a value.
/// [`CURRENT`] caches the value for the fast path.
fn key() -> &'static crate::sys::ThreadKey {
    static KEY: OnceLock<crate::sys::ThreadKey> = OnceLock::new();
    KEY.get_or_init(|| {
        crate::sys::ThreadKey::new(free_thread_blocks).unwrap_or_else(|error| {
            // Without a key no module can have thread-locals; there is no caller to tell.
            eprintln!("simple-loader: cannot create the thread-local key: {error}");
            std::process::abort();
        })
    })
}

thread_local! {
    /// This thread's table as the key holds it, read without a call into the C library.
    /// Const-initialised and without a destructor, so it can be used at any point of a
    /// thread's exit; `free_thread_blocks` clears it.
    static CURRENT: Cell<*mut ThreadBlocks> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn free_thread_blocks(table: *mut c_void) {
    CURRENT.with(|current| current.set(std::ptr::null_mut()));
    if !table.is_null() {
        // SAFETY: the key's values are only ever `Box<ThreadBlocks>` leaked by `thread_blocks`;
        // the C library calls this once per value, after clearing it.
        drop(unsafe { Box::from_raw(table.cast::<ThreadBlocks>()) });
    }
}

/// The calling thread's table, created on first use.
#[inline]
fn thread_blocks() -> &'static mut ThreadBlocks {
    let table = CURRENT.with(Cell::get);
    if table.is_null() {
        return new_thread_blocks();
    }
    // SAFETY: as below; `CURRENT` holds the key's value, or null once the key's destructor
    // took it.
    unsafe { &mut *table }
}

/// The calling thread's table from the key, made if the thread has none yet (or no longer
/// has one, when a module's code runs after the key's destructor at thread exit).
#[cold]
#[inline(never)]
fn new_thread_blocks() -> &'static mut ThreadBlocks {
    let key = key();
    let mut table = key.get().cast::<ThreadBlocks>();
    if table.is_null() {
        table = Box::into_raw(Box::default());
        // The key's destructor frees it.
        if key.set(table.cast()).is_err() {
            eprintln!("simple-loader: cannot set a thread-local block table");
            std::process::abort();
        }
    }
    CURRENT.with(|current| current.set(table));
    // SAFETY: the table belongs to this thread alone and lives until its exit; the only
    // reference made from it lives for the duration of one `tls_get_addr` call.
    unsafe { &mut *table }
}

/// The loader's `__tls_get_addr`: the address of `offset` in the calling thread's block of
/// the module whose handle `module` is. Called by module code only, with a `tls_index` of
/// its GOT; the handle in it is checked before anything of the loader's is read through it.
pub(crate) extern "C" fn tls_get_addr(index: *const TlsIndex) -> *mut u8 {
    // SAFETY: module code passes the address of a `tls_index` pair, as for the C library's
    // `__tls_get_addr`; the words are plain integers, and neither is trusted below.
    let (word, offset) = unsafe { ((*index).module, (*index).offset) };
    let (entry, slot) = match attached_entry(word, index as usize) {
        Ok(found) => found,
        Err(refusal) => refuse(word, index as usize, refusal),
    };
    if entry.is_static.load(Ordering::Relaxed) {
        // SAFETY: `entry` is from `attached_entry`, for the running module's `tls_index`.
        if let Some(block) = unsafe { entry.module() }.static_block.get() {
            return block.address().wrapping_add(offset);
        }
    }
    let generation = entry.generation.load(Ordering::Relaxed);
    let table = thread_blocks();
    let block = match table.blocks.get(slot) {
        Some(Some(block)) if block.generation == generation => block.address,
        // SAFETY: as above.
        _ => new_block(table, slot, unsafe { entry.module() }),
    };
    // The packer checked each offset against the section's size; the address goes back to
    // the module unread.
    block.wrapping_add(offset)
}

/// Makes this thread's block for `module` in `slot`, from the template, replacing a block
/// of a module that had the slot before.
#[cold]
#[inline(never)]
fn new_block(table: &mut ThreadBlocks, slot: usize, module: &TlsModule) -> *mut u8 {
    if table.blocks.len() <= slot {
        table.blocks.resize_with(slot + 1, || None);
    }
    // SAFETY: the layout has a non-zero size.
    let address = unsafe { std::alloc::alloc_zeroed(module.layout) };
    if address.is_null() {
        std::alloc::handle_alloc_error(module.layout);
    }
    let template = module.template.load(Ordering::Acquire) as *const u8;
    // SAFETY: the template is `file_size` readable bytes of the mapped image (the module is
    // running, so it is mapped); the new block holds at least that many.
    unsafe { std::ptr::copy_nonoverlapping(template, address, module.file_size) };
    if let Some(stale) = table.blocks[slot].replace(Block {
        generation: module.generation,
        address,
        layout: module.layout,
    }) {
        // SAFETY: a block of an unloaded module this thread held; freed once, here.
        unsafe { std::alloc::dealloc(stale.address, stale.layout) };
    }
    address
}

// The entry points modules call, `smf_loader_tls_get_addr` (which calls `tls_get_addr`) and
// the TLS descriptor resolver `smf_loader_tls_descriptor`, are in assembly, in `sys::arch`.
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

    /// Tests that count on a freed slot being the next one handed out run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

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

    /// A stand-in for a mapped image: the template (the tls section is at offset 0) and two
    /// `tls_index` pairs, as a GOT holds them.
    #[repr(C)]
    struct Image {
        template: [u8; 16],
        pairs: [TlsIndex; 2],
    }

    impl Image {
        fn new(template: [u8; 3]) -> Box<Image> {
            let mut bytes = [0; 16];
            bytes[..3].copy_from_slice(&template);
            Box::new(Image {
                template: bytes,
                pairs: [
                    TlsIndex {
                        module: 0,
                        offset: 0,
                    },
                    TlsIndex {
                        module: 0,
                        offset: 1,
                    },
                ],
            })
        }

        fn range(&self) -> Range<usize> {
            let start = self as *const Image as usize;
            start..start + size_of::<Image>()
        }

        /// Loads `module` "into" this image: relocates its pairs and attaches it.
        fn load(&mut self, module: &TlsModule) {
            for pair in &mut self.pairs {
                pair.module = module.handle();
            }
            module.set_base(self.range().start);
            module.attach(self.range());
        }

        fn get(&self, pair: usize) -> *mut u8 {
            tls_get_addr(&self.pairs[pair])
        }
    }

    #[test]
    fn blocks_are_per_thread_copies_and_a_reused_slot_gets_a_fresh_block() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = module_with_tls();
        let parsed = Parsed::parse(&bytes).unwrap();
        let mut first_image = Image::new([7, 8, 9]);
        let mut second_image = Image::new([1, 2, 3]);

        let first = TlsModule::for_module(&parsed).unwrap();
        first_image.load(&first);
        let block = first_image.get(0);
        assert_eq!(block as usize % 16, 0, "aligned as the section says");
        // SAFETY: the block is 64 bytes, this thread's own.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(block, 5), [7, 8, 9, 0, 0]);
            *block.add(1) = 100;
        }
        assert_eq!(
            first_image.get(1),
            block.wrapping_add(1),
            "the same block again"
        );
        // Another thread starts from the template, not from this thread's copy.
        let image = &*first_image;
        let (other, other_block) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let p = image.get(1);
                    // SAFETY: that thread's own block.
                    (unsafe { *p }, p as usize)
                })
                .join()
                .unwrap()
        });
        assert_eq!(other, 8);
        assert_ne!(other_block, block as usize + 1);

        // Unloaded, its slot goes to the next module; this thread's stale block is replaced.
        let slot = first.slot;
        drop(first);
        let second = TlsModule::for_module(&parsed).unwrap();
        assert_eq!(second.slot, slot);
        second_image.load(&second);
        let fresh = second_image.get(1);
        // SAFETY: this thread's block for the second module.
        assert_eq!(unsafe { *fresh }, 2);
    }

    #[test]
    fn a_module_word_is_checked_against_the_loaders_table_before_use() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = module_with_tls();
        let parsed = Parsed::parse(&bytes).unwrap();
        let mut image = Image::new([7, 8, 9]);
        let mut other_image = Image::new([1, 2, 3]);
        let module = TlsModule::for_module(&parsed).unwrap();
        let other = TlsModule::for_module(&parsed).unwrap();
        let index = image.range().start + size_of::<[u8; 16]>();
        assert_eq!(
            attached_module(module.handle(), index).err(),
            Some(Refusal::Unknown),
            "a handle is valid only once its module is attached"
        );
        image.load(&module);
        other_image.load(&other);
        assert_eq!(
            attached_module(module.handle(), index).map(|m| m.slot),
            Ok(module.slot)
        );

        let start = image.range().start;
        for (word, why) in [
            (0, "zero"),
            (u64::MAX, "all ones"),
            ((MAX_SLOTS - 1) as u64, "a slot whose chunk was never made"),
            (
                &*module as *const TlsModule as u64,
                "the address of the loader's record",
            ),
            (start as u64, "an address in the image"),
            (
                module.handle() + (1 << SLOT_BITS),
                "the right slot with another generation",
            ),
            (
                module.handle() ^ (other.slot ^ module.slot) as u64,
                "the other module's slot with this generation",
            ),
        ] {
            assert_eq!(
                attached_module(word, index).err(),
                Some(Refusal::Unknown),
                "{why}: {word:#x}"
            );
        }
        assert_eq!(
            attached_module(other.handle(), index).err(),
            Some(Refusal::Foreign {
                owner: other_image.range().start
            }),
            "another module's handle, in a pair outside that module's image"
        );

        let handle = module.handle();
        drop(module);
        assert_eq!(
            attached_module(handle, index).err(),
            Some(Refusal::Unknown),
            "the handle of an unloaded module"
        );
        let reused = TlsModule::for_module(&parsed).unwrap();
        image.load(&reused);
        assert_ne!(reused.handle(), handle, "a new generation in the same slot");
        assert_eq!(
            attached_module(handle, index).err(),
            Some(Refusal::Unknown),
            "the old handle stays refused when its slot is reused"
        );
    }

    #[test]
    fn every_slot_has_one_place_in_the_table() {
        let mut expected = (0, 0);
        for slot in 0..MAX_SLOTS {
            if expected.1 == FIRST_CHUNK << expected.0 {
                expected = (expected.0 + 1, 0);
            }
            assert_eq!(position(slot), expected, "slot {slot}");
            expected.1 += 1;
        }
        assert!(expected.0 < CHUNKS);
    }
}
