//! Placing a parsed module in memory: one reservation, payloads copied to their image
//! addresses, load-time relocations applied, then each section given its final protection.

use std::io;

use smf_format::{Module as Parsed, RelocKind, SectionKind};

use crate::sys::{PAGE_SIZE, Protection, Reservation};

/// A module's mapped image. Dropping it unmaps the memory.
#[derive(Debug)]
pub(crate) struct Image {
    reservation: Reservation,
}

fn page_range(start: u64, len: u64) -> std::ops::Range<usize> {
    // Both values were checked by the reader to lie inside the image, which fits in memory.
    let start = start as usize;
    let end = (start + len as usize).next_multiple_of(PAGE_SIZE);
    start..end
}

impl Image {
    /// Maps `module`, resolving `Abs64` relocations with `imports[index]` and `TlsModule`
    /// relocations with `tls_module` (the handle of the module's thread-local block).
    ///
    /// Pages go through: inaccessible → read+write (copy, relocate) → final protection. Code
    /// is never writable and executable at once: it is written while read+write and only
    /// then made read+execute.
    pub(crate) fn map(
        module: &Parsed<'_>,
        imports: &[usize],
        tls_module: u64,
    ) -> Result<Image, (&'static str, io::Error)> {
        let image_size = usize::try_from(module.header().image_size).map_err(|_| {
            (
                "reserving the image",
                io::Error::from(io::ErrorKind::OutOfMemory),
            )
        })?;
        let reservation = Reservation::new(image_size).map_err(|e| ("reserving the image", e))?;
        let base = reservation.base() as u64;

        for section in module.loaded_sections() {
            let pages = page_range(section.vaddr, section.mem_size);
            reservation
                .protect(pages, Protection::ReadWrite)
                .map_err(|e| ("making a section writable", e))?;
            // SAFETY: the section's pages were just made writable, and the reservation is
            // not yet visible to any other code or thread.
            unsafe { reservation.write(section.vaddr as usize, section.data) }
                .map_err(|e| ("copying a section", e))?;
        }

        for reloc in module.relocations() {
            let value = match reloc.kind {
                RelocKind::Abs64 => {
                    // The reader checked the index against the import table, which `imports` mirrors.
                    let target = reloc
                        .import
                        .and_then(|i| imports.get(i as usize))
                        .ok_or_else(|| {
                            (
                                "applying a relocation",
                                io::Error::other(format!(
                                    "relocation at {:#x} names no resolved import",
                                    reloc.offset
                                )),
                            )
                        })?;
                    (*target as u64).wrapping_add(reloc.addend as u64)
                }
                RelocKind::Relative64 => base.wrapping_add(reloc.addend as u64),
                RelocKind::TlsModule => tls_module,
            };
            // SAFETY: the reader checked that the 8 bytes lie inside a data or relro section,
            // both writable at this point; nothing else can see the image yet.
            unsafe { reservation.write(reloc.offset as usize, &value.to_le_bytes()) }
                .map_err(|e| ("applying a relocation", e))?;
        }

        for section in module.loaded_sections() {
            let pages = page_range(section.vaddr, section.mem_size);
            let protection = match section.kind {
                SectionKind::Code => Protection::ReadExecute,
                SectionKind::Data | SectionKind::Bss => Protection::ReadWrite,
                _ => Protection::Read,
            };
            if protection == Protection::ReadExecute {
                // Drop write permission first, then flush, then allow execution.
                reservation
                    .protect(pages.clone(), Protection::Read)
                    .map_err(|e| ("protecting code", e))?;
                reservation.flush_instruction_cache(pages.clone());
            }
            reservation
                .protect(pages, protection)
                .map_err(|e| ("protecting a section", e))?;
        }
        Ok(Image { reservation })
    }

    pub(crate) fn base(&self) -> usize {
        self.reservation.base() as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.reservation.len()
    }

    /// Reads bytes of a read+write section (data or bss) at image offset `offset` into `out`.
    ///
    /// # Safety
    /// The range must lie in a data or bss section of this image (those stay read+write).
    pub(crate) unsafe fn read_data(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        // SAFETY: data and bss pages are readable for the image's lifetime (caller's contract).
        unsafe { self.reservation.read_into(offset as usize, out) }
    }

    /// For each page of the bss range `start..end` (rounded out to pages), whether it was
    /// ever written (bss is anonymous memory: a page never written reads as zeros). When the
    /// system cannot tell, every page counts as written.
    pub(crate) fn bss_pages_touched(&self, start: u64, end: u64) -> Vec<bool> {
        let first = start as usize & !(PAGE_SIZE - 1);
        let last = (end as usize).next_multiple_of(PAGE_SIZE);
        let pages = (last - first) / PAGE_SIZE;
        self.reservation
            .resident(first..last)
            .unwrap_or_else(|_| vec![true; pages])
    }

    /// Overwrites bytes of a read+write section (data or bss) at image offset `offset`.
    ///
    /// # Safety
    /// The range must lie in a data or bss section of this image, and no code of the image
    /// may run concurrently (the reload that calls this holds the module back from callers).
    pub(crate) unsafe fn write_data(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: data and bss pages are writable for the image's lifetime (caller's contract).
        unsafe { self.reservation.write(offset as usize, bytes) }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // Unwind tables, debugger and profiler entries go before the pages they describe.
        crate::runtime::detach(self.base());
    }
}
