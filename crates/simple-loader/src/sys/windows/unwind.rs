//! Registering a module's function table with the system unwinder, so that C++ exceptions,
//! Rust panics, structured exceptions and stack walks cross module frames.
//!
//! Windows x64 unwinds through `RUNTIME_FUNCTION` entries (`.pdata`), which point at unwind
//! information (`.xdata`); the system finds those of the images it loaded itself, and those
//! of any other code once given with `RtlAddFunctionTable`. The packer keeps a module's
//! entries, sorted, in its `pdata` section as image offsets (`docs/FORMAT.md`), which is what
//! `RtlAddFunctionTable` takes with the image base. Registration happens before the module's
//! constructors run and is removed after its destructors, before its pages are freed.

use windows_sys::Win32::System::Diagnostics::Debug::{
    IMAGE_RUNTIME_FUNCTION_ENTRY, RtlAddFunctionTable, RtlDeleteFunctionTable,
};

/// A registered function table; removed on drop.
#[derive(Debug)]
pub(crate) struct UnwindRegistration {
    table: *const IMAGE_RUNTIME_FUNCTION_ENTRY,
}

// SAFETY: the registration only holds an address; the system serialises changes to its
// function table list.
unsafe impl Send for UnwindRegistration {}
// SAFETY: as above; shared references give no access to anything.
unsafe impl Sync for UnwindRegistration {}

impl UnwindRegistration {
    /// Registers the `pdata` section of the module `parsed`, whose image is at `base`.
    ///
    /// # Safety
    /// The image must be mapped, relocated and protected until the registration is dropped.
    pub(crate) unsafe fn register_module(
        parsed: &smf_format::Module<'_>,
        base: usize,
    ) -> Vec<UnwindRegistration> {
        parsed
            .loaded_sections()
            .filter(|s| s.kind == smf_format::SectionKind::Pdata && s.mem_size > 0)
            .filter_map(|s| {
                let table = (base + s.vaddr as usize) as *const IMAGE_RUNTIME_FUNCTION_ENTRY;
                let count = u32::try_from(s.mem_size / smf_format::raw::PDATA_ENTRY_SIZE).ok()?;
                // SAFETY: the reader checked the section holds whole 12-byte entries; it is
                // mapped read-only for as long as the image (caller's contract), and its
                // offsets are this image's, as RtlAddFunctionTable takes them with `base`.
                let added = unsafe { RtlAddFunctionTable(table, count, base as u64) };
                added.then_some(UnwindRegistration { table })
            })
            .collect()
    }
}

impl Drop for UnwindRegistration {
    fn drop(&mut self) {
        // SAFETY: `table` was registered by `register_module` and is removed once, here,
        // while it is still mapped.
        unsafe { RtlDeleteFunctionTable(self.table) };
    }
}
