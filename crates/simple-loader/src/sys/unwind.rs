//! Registering a module's `.eh_frame` with the unwinder of the C runtime (libgcc's, which
//! libstdc++, glibc's `backtrace` and Rust's own panics use), so that exceptions and
//! backtraces walk through module code.
//!
//! libgcc finds the unwind tables of the objects the dynamic linker loaded by itself
//! (`dl_iterate_phdr`); anything else must be registered. `__register_frame_info_table`
//! takes a null-terminated array of pointers to whole `.eh_frame`s (records back to back up
//! to a zero terminator, as the packer writes them) and a caller-owned `struct object` it
//! links into its list: registration is constant time, and the tables are sorted lazily,
//! once per module, on the first lookup that needs them. (Registering FDE by FDE, as
//! `__register_frame` on a single FDE would need, costs an object per function.) The array
//! form is used rather than `__register_frame_info`, which takes the `.eh_frame` itself,
//! because that one reads the table's first word to skip an empty table: a page fault, and
//! with the kernel's fault-around 16 pages of the module mapped, 64 KiB of resident memory
//! per module that nothing reads until something unwinds (libgcc before GCC 13; later ones
//! read the whole table at registration either way). An empty table in the array form is
//! registered and deregistered like any other. Deregistration must happen before the
//! tables are unmapped, since another thread may be unwinding.

use std::ffi::c_void;

unsafe extern "C" {
    fn __register_frame_info_table(begin: *const c_void, object: *mut c_void);
    fn __deregister_frame_info(begin: *const c_void) -> *mut c_void;
}

/// Room for libgcc's `struct object` (six or seven words depending on its configuration,
/// pointer-aligned); it is opaque to us and only needs to stay at one address while
/// registered.
type ObjectStorage = [usize; 16];

/// A registered `.eh_frame`; deregistered on drop.
#[derive(Debug)]
pub(crate) struct UnwindRegistration {
    /// The array registered: the table's address, then null. Boxed, as the object, so that
    /// its address, which libgcc keeps and identifies the registration by, stays fixed.
    tables: Box<[*const c_void; 2]>,
    _object: Box<ObjectStorage>,
}

// SAFETY: the registration only holds addresses; libgcc serialises access to its lists with
// its own mutex, so registering and deregistering from any thread is allowed.
unsafe impl Send for UnwindRegistration {}
// SAFETY: as above; shared references give no access to anything.
unsafe impl Sync for UnwindRegistration {}

impl UnwindRegistration {
    /// Registers every `.eh_frame` section of the module `parsed`, whose image is at `base`.
    ///
    /// # Safety
    /// The image must be mapped, relocated and protected until the registrations are dropped.
    pub(crate) unsafe fn register_module(
        parsed: &smf_format::Module<'_>,
        base: usize,
    ) -> Vec<UnwindRegistration> {
        parsed
            .loaded_sections()
            .filter(|s| s.kind == smf_format::SectionKind::EhFrame && s.mem_size >= 4)
            .map(|s| {
                // SAFETY: the packer writes `.eh_frame` whole with its terminator, the section
                // is mapped read-only for as long as the image (caller's contract), and the
                // tables' code ranges were resolved into this image's code.
                unsafe { UnwindRegistration::register((base + s.vaddr as usize) as *const u8) }
            })
            .collect()
    }

    /// Registers the tables at `begin`.
    ///
    /// # Safety
    /// `begin` must point to a complete `.eh_frame` ending in a zero terminator, mapped and
    /// unchanged until the registration is dropped, whose code ranges are mapped code.
    unsafe fn register(begin: *const u8) -> UnwindRegistration {
        let tables: Box<[*const c_void; 2]> = Box::new([begin.cast(), std::ptr::null()]);
        let mut object: Box<ObjectStorage> = Box::new([0; 16]);
        let object_ptr: *mut ObjectStorage = &mut *object;
        // SAFETY: `tables` holds a valid table (caller's contract) and the null that ends the
        // array; the array and the object storage (large enough, zeroed) are boxed, so they
        // stay put until `drop` deregisters them. Nothing of the table is read here.
        unsafe { __register_frame_info_table(tables.as_ptr().cast(), object_ptr.cast()) };
        UnwindRegistration {
            tables,
            _object: object,
        }
    }
}

impl Drop for UnwindRegistration {
    fn drop(&mut self) {
        // SAFETY: the array was registered by `register` and is deregistered once, here, by
        // the address libgcc knows it by, while the table is still mapped; libgcc hands back
        // the object storage, which we own.
        unsafe { __deregister_frame_info(self.tables.as_ptr().cast()) };
    }
}
