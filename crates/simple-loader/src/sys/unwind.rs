//! Registering a module's `.eh_frame` with the unwinder of the C runtime (libgcc's, which
//! libstdc++, glibc's `backtrace` and Rust's own panics use), so that exceptions and
//! backtraces walk through module code.
//!
//! libgcc finds the unwind tables of the objects the dynamic linker loaded by itself
//! (`dl_iterate_phdr`); anything else must be registered. `__register_frame_info` takes the
//! start of a whole `.eh_frame` (records back to back up to a zero terminator, as the packer
//! writes it) and a caller-owned `struct object` it links into its list: registration is
//! constant time, and the tables are sorted lazily, once per module, on the first lookup that
//! needs them. (Registering FDE by FDE, as `__register_frame` on a single FDE would need,
//! costs an object per function.) Deregistration must happen before the tables are
//! unmapped, since another thread may be unwinding.

use std::ffi::c_void;

unsafe extern "C" {
    fn __register_frame_info(begin: *const c_void, object: *mut c_void);
    fn __deregister_frame_info(begin: *const c_void) -> *mut c_void;
}

/// Room for libgcc's `struct object` (six or seven words depending on its configuration,
/// pointer-aligned); it is opaque to us and only needs to stay at one address while
/// registered.
type ObjectStorage = [usize; 16];

/// A registered `.eh_frame`; deregistered on drop.
#[derive(Debug)]
pub(crate) struct UnwindRegistration {
    begin: *const c_void,
    // Boxed so its address stays fixed while libgcc links it into its lists.
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
            .filter_map(|s| {
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
    unsafe fn register(begin: *const u8) -> Option<UnwindRegistration> {
        // SAFETY: the caller guarantees at least the 4-byte terminator is readable.
        if unsafe { begin.cast::<u32>().read_unaligned() } == 0 {
            // An empty table: libgcc would ignore it, and then refuse to deregister it.
            return None;
        }
        let mut object: Box<ObjectStorage> = Box::new([0; 16]);
        let object_ptr: *mut ObjectStorage = &mut *object;
        // SAFETY: `begin` is a valid table (caller's contract); the object storage is large
        // enough, zeroed, and boxed so that it stays put until `drop` deregisters it.
        unsafe { __register_frame_info(begin.cast(), object_ptr.cast()) };
        Some(UnwindRegistration {
            begin: begin.cast(),
            _object: object,
        })
    }
}

impl Drop for UnwindRegistration {
    fn drop(&mut self) {
        // SAFETY: `begin` was registered by `register` and is deregistered once, here, while
        // the table is still mapped; libgcc hands back the object storage, which we own.
        unsafe { __deregister_frame_info(self.begin) };
    }
}
