//! Placing a parsed module in memory: one reservation, payloads mapped from the file (or
//! copied) to their image addresses, load-time relocations applied, then each section given
//! its final protection.

use std::fs::File;
use std::io;
use std::ops::Range;

use smf_format::{Module as Parsed, RelocKind, Section, SectionKind};

use crate::tls::TlsModule;

use crate::sys::{FileMap, PAGE_SIZE, Protection, Reservation};

/// A module's mapped image. Dropping it unmaps the memory.
#[derive(Debug)]
pub(crate) struct Image {
    reservation: Reservation,
    /// For an image whose payloads were read from the file ([`Source::Read`]): the file
    /// bytes of the sections that relocations and the module's code write (data, relro, tls),
    /// by section index, as read. The parsed view holds no payloads, and a reload compares
    /// the file bytes of exported symbols ([`Image::file_payload`]). `None` otherwise.
    written_payloads: Option<Vec<(u32, Box<[u8]>)>>,
}

fn page_range(start: u64, len: u64) -> std::ops::Range<usize> {
    // Both values were checked by the reader to lie inside the image, which fits in memory.
    let start = start as usize;
    let end = (start + len as usize).next_multiple_of(PAGE_SIZE);
    start..end
}

/// The protection a section's pages end with.
fn final_protection(kind: SectionKind) -> Protection {
    match kind {
        SectionKind::Code => Protection::ReadExecute,
        SectionKind::Data | SectionKind::Bss => Protection::ReadWrite,
        _ => Protection::Read,
    }
}

/// Where the image's payload bytes come from.
#[derive(Debug)]
pub(crate) enum Source<'a> {
    /// The parsed module's own bytes, in memory: payloads are copied.
    Memory,
    /// The file the parsed module's bytes are a mapping of: payloads are mapped from it.
    File(&'a File),
    /// The file, whose payloads are read into the image (each byte copied once, by the
    /// kernel), the parsed module holding only its head (`Module::parse_head`): a module
    /// that must not depend on its file once loaded, which may be rewritten in place.
    /// `file_size` is the size the file had when it was opened, which the head was checked
    /// against.
    Read { file: &'a File, file_size: u64 },
    /// A read-only mapping of the file's payloads (`tail`, from file offset `offset` to the
    /// end), kept apart from the head the module was parsed from (`Module::parse_head`).
    /// When the payloads are laid out as the image, this mapping becomes the image;
    /// otherwise payloads are mapped from `file` as for [`Source::File`].
    Tail {
        file: &'a File,
        tail: FileMap,
        offset: u64,
    },
}

/// The file bytes of `module`'s payloads: its own bytes, or `tail` for a module parsed from
/// its head.
fn file_bytes<'a>(module: &Parsed<'a>, tail: Option<&'a (FileMap, u64)>) -> FileBytes<'a> {
    match tail {
        Some((map, offset)) => FileBytes {
            bytes: map.bytes(),
            offset: *offset,
        },
        None => FileBytes {
            bytes: module.data(),
            offset: 0,
        },
    }
}

/// File bytes the image is made from: `bytes` starts at file offset `offset`.
#[derive(Clone, Copy)]
struct FileBytes<'a> {
    bytes: &'a [u8],
    offset: u64,
}

impl<'a> FileBytes<'a> {
    /// The payload of `section` (its `data`, for a module parsed from the whole file).
    fn payload<'s>(&self, section: &Section<'s>) -> &'s [u8]
    where
        'a: 's,
    {
        if self.offset == 0 {
            return section.data;
        }
        // The reader checked the range lies inside the file; a module parsed from its head
        // has its payloads past `offset`.
        section
            .file_offset
            .checked_sub(self.offset)
            .and_then(|start| {
                let start = start as usize;
                self.bytes.get(start..start + section.file_size as usize)
            })
            .unwrap_or(&[])
    }

    /// Whether the file's bytes that a mapping of the section's last page would show inside
    /// the section past its payload (up to `mem_size` or the page's end) are zeros, as the
    /// format says the rest of `mem_size` reads. The writer pads with zeros, but a reader
    /// accepts other bytes there, such as a table. Bytes of the page past `mem_size` belong
    /// to no section and are not read: as with a shared library's last segment page, the
    /// image shows the file's bytes there. Past the end of the file a mapping reads zeros.
    ///
    /// A section whose `mem_size` is its `file_size` (all but `bss`-like tails) needs no
    /// read at all, which keeps the image's pages untouched until they are protected.
    fn tail_is_zero(&self, section: &Section<'_>) -> bool {
        static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];
        // A compressed payload is decompressed, never mapped.
        if section.is_compressed() {
            return false;
        }
        if section.file_size == 0 || section.mem_size == section.file_size {
            return true;
        }
        let Some(end) = (section.file_offset + section.file_size).checked_sub(self.offset) else {
            return false;
        };
        let page_end = (end + self.offset)
            .next_multiple_of(PAGE_SIZE as u64)
            .min(section.file_offset + section.mem_size)
            .saturating_sub(self.offset)
            .min(self.bytes.len() as u64);
        self.bytes
            .get(end as usize..page_end as usize)
            .is_some_and(|tail| ZEROS.get(..tail.len()) == Some(tail))
    }
}

/// Reads `out.len()` bytes of `file` from `offset` into `out`. A file shorter than that (cut
/// short after the loader learnt its size) is an error, as is any read error.
fn read_exactly(file: &File, mut out: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !out.is_empty() {
        match crate::sys::read_at(file, out, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ends at {offset:#x}, inside a payload that should end at \
                         {:#x}: it was cut short after it was opened",
                        offset + out.len() as u64
                    ),
                ));
            }
            Ok(read) => {
                out = &mut out[read..];
                offset += read as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The protection a section mapped from the file starts with: its final one, except for
/// `relro` and `tls`, which relocations write first.
fn initial_protection(kind: SectionKind) -> Protection {
    match kind {
        SectionKind::RelRo | SectionKind::Tls => Protection::ReadWrite,
        kind => final_protection(kind),
    }
}

/// Image offset of the end of a section's last page that holds file bytes.
fn file_end(section: &Section<'_>) -> usize {
    (section.vaddr + section.file_size).next_multiple_of(PAGE_SIZE as u64) as usize
}

/// The longest run at the start of `sections` (in image order) that one mapping of the file
/// can place: each section starts on the page after the previous one's file pages (so no
/// zero pages and no gap lie between them), at the same distance from its file offset, and
/// each one's last page can be mapped as the file holds it (`zero_tail`, by section index).
/// The first section must already have passed that check; a section without file bytes
/// ends a run.
fn file_run<'s, 'data>(
    zero_tail: &[bool],
    sections: &'s [&'s Section<'data>],
) -> &'s [&'s Section<'data>] {
    let Some(first) = sections.first() else {
        return sections;
    };
    let distance = first.file_offset.wrapping_sub(first.vaddr);
    let mut len = 1;
    for pair in sections.windows(2) {
        let (previous, section) = (pair[0], pair[1]);
        let joins = previous.file_size > 0
            && section.file_size > 0
            && section.vaddr as usize == file_end(previous)
            && section.file_offset.wrapping_sub(section.vaddr) == distance
            && zero_tail[section.index as usize];
        if !joins {
            break;
        }
        len += 1;
    }
    &sections[..len]
}

/// The pages load-time relocations write, as runs of consecutive pages: the reader's runs
/// of written bytes (no whole page inside one goes unwritten) rounded out to pages, with
/// runs that touch merged.
fn written_pages(module: &Parsed<'_>) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for span in module.relocated_ranges() {
        let first = span.start as usize / PAGE_SIZE * PAGE_SIZE;
        let end = (span.end as usize).next_multiple_of(PAGE_SIZE);
        match runs.last_mut() {
            Some(run) if first <= run.end => run.end = run.end.max(end),
            _ => runs.push(first..end),
        }
    }
    runs
}

/// Runs of written pages beyond which populating them one call each stops being worth it
/// (the rest fault in at their first write, as they would anyway).
const MAX_POPULATE_RUNS: usize = 64;

/// The operation named when a module's static thread-local block cannot be made.
pub(crate) const MAKING_STATIC_TLS: &str = "making a static thread-local block";

impl Image {
    /// Maps `module`, resolving `Abs64` relocations with `imports[index]` and the
    /// thread-local ones with `tls`, the module's thread-local block. A module that needs a
    /// static block gets it here, once its template is relocated: the other relocations
    /// are applied first, then the block is made from the template, then the `tp_offset`
    /// relocations get its offset.
    ///
    /// With a file `source`, each payload is mapped from the file (private, copy-on-write)
    /// straight with its final protection, except `relro` and `tls`, which are read+write
    /// until relocated: code is never written, and only the pages that relocations write are
    /// copied, by the kernel. A [`Source::Tail`] laid out as the image becomes the image
    /// itself. Without a file (or for a section whose file bytes past its payload, inside its
    /// `mem_size`, are not zeros), pages go through: inaccessible → read+write (copy,
    /// relocate) → final protection. Either way no page is writable and executable at once:
    /// copied code is written while read+write and only then made read+execute.
    ///
    /// # Safety
    /// The module's `irelative` resolvers run here, before this returns: its code must be
    /// fit to run in this process, as for [`crate::load`].
    pub(crate) unsafe fn map(
        module: &Parsed<'_>,
        imports: &[usize],
        tls: Option<&TlsModule>,
        source: Source<'_>,
    ) -> Result<Image, (&'static str, io::Error)> {
        let image_size = usize::try_from(module.header().image_size).map_err(|_| {
            (
                "reserving the image",
                io::Error::from(io::ErrorKind::OutOfMemory),
            )
        })?;
        let (file, mut tail, read_from) = match source {
            Source::Memory => (None, None, None),
            Source::Read { file, .. } => (None, None, Some(file)),
            Source::File(file) => (Some(file), None, None),
            Source::Tail { file, tail, offset } => (Some(file), Some((tail, offset)), None),
        };
        let mut written_payloads = read_from.map(|_| Vec::new());
        // By section index: whether the section was mapped from the file, and whether its
        // last page can be mapped as the file holds it (`FileBytes::tail_is_zero`).
        let mut mapped = vec![false; module.sections().len()];
        let zero_tail: Vec<bool> = {
            let bytes = file_bytes(module, tail.as_ref());
            module
                .sections()
                .iter()
                .map(|s| bytes.tail_is_zero(s))
                .collect()
        };
        let mut sections: Vec<&Section<'_>> = module.loaded_sections().collect();
        sections.sort_by_key(|s| s.vaddr);
        // The protection of the pages of the first run of sections if the reservation is
        // made as one mapping of them, which saves a system call: the whole file when one
        // mapping places every section and fills the image (no zero pages past the last
        // payload), or the tail when it holds the payloads as the image lays them out.
        let first_run = sections
            .first()
            .filter(|first| first.vaddr == 0 && first.file_size > 0)
            .filter(|first| zero_tail[first.index as usize])
            .map(|_| file_run(&zero_tail, &sections))
            .unwrap_or(&[]);
        let run_end = first_run.last().map_or(0, |last| file_end(last));
        let holds_every_payload =
            first_run.len() == sections.iter().filter(|s| s.file_size > 0).count();
        // Zero pages past the last payload (bss) are added to the tail's mapping.
        let adopt = holds_every_payload
            && tail
                .as_ref()
                .zip(first_run.first())
                .is_some_and(|((map, offset), first)| {
                    first.file_offset == *offset
                        && map.bytes().len().next_multiple_of(PAGE_SIZE) == run_end
                });
        // The file's mapping must also end the image: no zero pages past the last payload.
        let whole = tail.is_none()
            && file.is_some()
            && holds_every_payload
            && first_run
                .last()
                .is_some_and(|last| page_range(last.vaddr, last.mem_size).end <= run_end)
            && run_end == image_size.next_multiple_of(PAGE_SIZE);
        let adopted = tail.take_if(|_| adopt).map(|(map, _)| map);
        // The zero pages added past an adopted tail's pages, and the protection they are
        // made with when every section there starts with the same one (they are then not
        // protected again below). A page there between two sections, which no section owns,
        // then has that protection too, as the tail of a shared library's last segment has
        // its segment's.
        let added = run_end..image_size.next_multiple_of(PAGE_SIZE);
        let mut in_added = sections
            .iter()
            .filter(|s| page_range(s.vaddr, s.mem_size).end > added.start)
            .map(|s| initial_protection(s.kind));
        let added_protection = in_added
            .next()
            .filter(|first| in_added.all(|p| p == *first))
            .filter(|_| adopted.is_some());
        let (reservation, premapped) = if let Some(map) = adopted {
            let reservation = Reservation::from_file_map(map, image_size, added_protection);
            (reservation, Some(Protection::Read))
        } else if let (true, Some(file), Some(first)) = (whole, file, first_run.first()) {
            let protection = initial_protection(first.kind);
            let reservation =
                Reservation::map_file_anywhere(image_size, file, first.file_offset, protection);
            (reservation, Some(protection))
        } else {
            (Reservation::new(image_size), None)
        };
        let reservation = reservation.map_err(|e| ("reserving the image", e))?;
        // Whether `pages` are added zero pages already made with `protection`.
        let made_with = |pages: &Range<usize>, protection: Protection| {
            added_protection == Some(protection)
                && added.start <= pages.start
                && pages.end <= added.end
        };
        let bytes = file_bytes(module, tail.as_ref());
        let base = reservation.base() as u64;
        let mut next = 0;
        while let Some(&first) = sections.get(next) {
            // A section without file bytes has nothing to map, and its file offset may be
            // anything (FORMAT.md requires alignment only when `file_size` > 0).
            let Some(file) =
                file.filter(|_| first.file_size > 0 && zero_tail[first.index as usize])
            else {
                let pages = page_range(first.vaddr, first.mem_size);
                if !made_with(&pages, Protection::ReadWrite) {
                    reservation
                        .protect(pages, Protection::ReadWrite)
                        .map_err(|e| ("making a section writable", e))?;
                }
                if let Some(compressed) = first.compressed() {
                    // Straight into the image: exactly `raw_size` bytes, which the reader
                    // checked lie inside the section (`raw_size` <= `mem_size`).
                    // SAFETY: the section's pages were just made writable, and the
                    // reservation is not yet visible to any other code or thread.
                    unsafe {
                        reservation.fill(
                            first.vaddr as usize,
                            compressed.raw_size as usize,
                            |out| compressed.decompress_into(out),
                        )
                    }
                    .map_err(|e| ("decompressing a section", e))?
                    .map_err(|e| ("decompressing a section", io::Error::other(e.to_string())))?;
                    next += 1;
                    continue;
                }
                if let (Some(read_from), Some(written)) = (read_from, written_payloads.as_mut()) {
                    let (at, len) = (first.vaddr as usize, first.file_size as usize);
                    // One system call allocates the pages the read fills, instead of a fault
                    // per page inside it.
                    reservation.populate_for_write(page_range(first.vaddr, first.file_size));
                    // SAFETY: as above.
                    unsafe {
                        reservation.fill(at, len, |out| {
                            read_exactly(read_from, out, first.file_offset)
                        })
                    }
                    .map_err(|e| ("reading a section from the file", e))?
                    .map_err(|e| ("reading a section from the file", e))?;
                    if first.kind.accepts_relocations() && len > 0 {
                        let mut copy = vec![0; len].into_boxed_slice();
                        // SAFETY: the section's pages are read+write, and just written.
                        unsafe { reservation.read_into(at, &mut copy) }
                            .map_err(|e| ("reading a section from the file", e))?;
                        written.push((first.index, copy));
                    }
                    next += 1;
                    continue;
                }
                // SAFETY: the section's pages were just made writable, and the reservation
                // is not yet visible to any other code or thread.
                unsafe { reservation.write(first.vaddr as usize, bytes.payload(first)) }
                    .map_err(|e| ("copying a section", e))?;
                next += 1;
                continue;
            };
            // The writer puts payloads in image order, each on the page after the previous
            // one, in the file as in the image: such a run of sections is one mapping.
            let run = file_run(&zero_tail, &sections[next..]);
            let span = run
                .last()
                .map_or(0, |last| file_end(last) - first.vaddr as usize);
            let mapped_with = match premapped.filter(|_| next == 0) {
                Some(protection) => protection,
                None => {
                    let protection = initial_protection(first.kind);
                    reservation
                        .map_file(
                            first.vaddr as usize,
                            span,
                            file,
                            first.file_offset,
                            protection,
                        )
                        .map_err(|e| ("mapping sections from the file", e))?;
                    protection
                }
            };
            for (i, section) in run.iter().enumerate() {
                let protection = initial_protection(section.kind);
                let file_pages = section.vaddr as usize..file_end(section);
                // A section after one of its protection was protected with it.
                let joined = i > 0 && protection == initial_protection(run[i - 1].kind);
                if protection != mapped_with && !joined {
                    // Runs of one protection are merged: the kernel joins adjacent mappings.
                    let same = run[i..]
                        .iter()
                        .take_while(|s| initial_protection(s.kind) == protection)
                        .last()
                        .map_or(file_pages.end, |s| file_end(s));
                    reservation
                        .protect(file_pages.start..same, protection)
                        .map_err(|e| ("protecting a section", e))?;
                }
                // Past the file's pages (only the last of a run has any), zero pages of the
                // reservation.
                let pages = page_range(section.vaddr, section.mem_size);
                let zero_pages = file_pages.end..pages.end;
                if !made_with(&zero_pages, protection) {
                    reservation
                        .protect(zero_pages, protection)
                        .map_err(|e| ("protecting a section", e))?;
                }
                mapped[section.index as usize] = true;
            }
            next += run.len().max(1);
        }
        drop(tail);

        if file.is_some() {
            // One system call per run of written pages instead of a fault per page.
            for run in written_pages(module).into_iter().take(MAX_POPULATE_RUNS) {
                reservation.populate_for_write(run);
            }
        }

        // Packed relative relocations first: the addend is the word in place, which an
        // explicit relocation of the same word (applied after) then replaces.
        for offset in module.relative_relocations() {
            // SAFETY: the reader checked that the 8 bytes lie inside a data, relro or tls
            // section, all readable and writable at this point; nothing else can see the
            // image yet.
            unsafe { reservation.add_u64(offset as usize, base) }
                .map_err(|e| ("applying a relocation", e))?;
        }

        let tls_handle = tls.map_or(0, TlsModule::handle);
        // Whether the module addresses thread-locals from the thread pointer, and so needs a
        // static block.
        let mut needs_static = false;
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
                RelocKind::TlsModule => tls_handle,
                RelocKind::TlsDescriptor => {
                    needs_static = true;
                    crate::tls::tls_descriptor_address() as u64
                }
                // Once the static block exists, below; it is made from the template, which
                // these words must then not be part of.
                RelocKind::TpOffset => {
                    needs_static = true;
                    if tls.is_some_and(|t| t.block().contains(&(reloc.offset as usize))) {
                        return Err((
                            MAKING_STATIC_TLS,
                            io::Error::other("a tp_offset relocation writes the template itself"),
                        ));
                    }
                    continue;
                }
                // Last, once the code is executable (below).
                RelocKind::Irelative => continue,
            };
            // SAFETY: the reader checked that the 8 bytes lie inside a data, relro or tls
            // section, all writable at this point; nothing else can see the image yet.
            unsafe { reservation.write_u64(reloc.offset as usize, value) }
                .map_err(|e| ("applying a relocation", e))?;
        }

        if needs_static {
            // The reader allows these relocations only in a module with a tls section, which
            // always has its `TlsModule`.
            let tls = tls.ok_or_else(|| (MAKING_STATIC_TLS, io::Error::other("no tls section")))?;
            let initialised = tls.template();
            let mut template = vec![0; initialised.len()];
            // SAFETY: the tls section is read+write until the end of this function.
            unsafe { reservation.read_into(initialised.start, &mut template) }
                .map_err(|e| (MAKING_STATIC_TLS, e))?;
            let tp_offset = tls
                .make_static(&template)
                .map_err(|e| (MAKING_STATIC_TLS, e))?;
            for reloc in module.relocations() {
                if reloc.kind == RelocKind::TpOffset {
                    let value = (tp_offset as u64).wrapping_add(reloc.addend as u64);
                    // SAFETY: as above.
                    unsafe { reservation.write_u64(reloc.offset as usize, value) }
                        .map_err(|e| ("applying a relocation", e))?;
                }
            }
        }

        let protect = |section: &Section<'_>| -> Result<(), (&'static str, io::Error)> {
            let pages = page_range(section.vaddr, section.mem_size);
            let protection = final_protection(section.kind);
            if mapped[section.index as usize] {
                // Mapped with its final protection, or read+write until now (relro, tls).
                // Code mapped from the file needs no instruction-cache flush: no store of
                // this process wrote its bytes, and the kernel makes the instruction cache
                // coherent with a file page before mapping it executable.
                if matches!(section.kind, SectionKind::RelRo | SectionKind::Tls) {
                    reservation
                        .protect(pages, protection)
                        .map_err(|e| ("protecting a section", e))?;
                }
                return Ok(());
            }
            if protection == Protection::ReadWrite {
                // Copied sections were made read+write; data and bss stay so.
                return Ok(());
            }
            if protection == Protection::ReadExecute {
                // Drop write permission first, then flush, then allow execution.
                reservation
                    .protect(pages.clone(), Protection::Read)
                    .map_err(|e| ("protecting code", e))?;
                reservation.flush_instruction_cache(pages.clone());
            }
            reservation
                .protect(pages, protection)
                .map_err(|e| ("protecting a section", e))
        };
        // Everything but relro first: indirect-function resolvers are module code, which
        // must be executable, and their results go into relro (or data), which must still
        // be writable.
        for section in module.loaded_sections() {
            if section.kind != SectionKind::RelRo {
                protect(&section)?;
            }
        }
        for reloc in module.relocations() {
            if reloc.kind != RelocKind::Irelative {
                continue;
            }
            let resolver = base.wrapping_add(reloc.addend as u64) as usize;
            // SAFETY: the reader checked that `addend` lies in a code section of this image,
            // now mapped read+execute and fully relocated; the caller vouched for the module's
            // code (`map`'s contract). It is called as the system's dynamic linker calls one.
            let chosen = unsafe { crate::sys::arch::call_ifunc_resolver(resolver) };
            // SAFETY: the reader checked that the 8 bytes lie inside a data or relro section;
            // data is read+write for good, relro until the loop below.
            unsafe { reservation.write_u64(reloc.offset as usize, chosen) }
                .map_err(|e| ("applying a relocation", e))?;
        }
        for section in module.loaded_sections() {
            if section.kind == SectionKind::RelRo {
                protect(&section)?;
            }
        }
        Ok(Image {
            reservation,
            written_payloads,
        })
    }

    pub(crate) fn base(&self) -> usize {
        self.reservation.base() as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.reservation.len()
    }

    /// The file bytes of `section`'s payload when they were read into this image
    /// ([`Source::Read`]), whose module's parsed view has none: a copy made as they were read
    /// for a section the image writes (data, relro, tls), the image's own bytes for the
    /// others (code, read-only data, unwind tables), which are never written once loaded.
    /// `None` for an image made otherwise, or a section without file bytes.
    pub(crate) fn file_payload(&self, section: &Section<'_>) -> Option<&[u8]> {
        let written = self.written_payloads.as_ref()?;
        if section.file_size == 0 || !section.kind.is_loaded() {
            return None;
        }
        if section.kind.accepts_relocations() {
            return written
                .iter()
                .find(|(index, _)| *index == section.index)
                .map(|(_, bytes)| &**bytes);
        }
        // SAFETY: the section's pages are readable (read-only or read+execute) for as long as
        // the image is mapped, and nothing writes them: relocations write only sections that
        // accept them, and the module's code cannot write read-only pages.
        unsafe {
            self.reservation
                .bytes(section.vaddr as usize, section.file_size as usize)
        }
        .ok()
    }

    /// Reads bytes of a read+write section (data or bss) at image offset `offset` into `out`,
    /// word by word with atomic loads: the module's code may be running on other threads.
    ///
    /// # Safety
    /// The range must lie in a data or bss section of this image (those stay read+write).
    pub(crate) unsafe fn read_data(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        // SAFETY: data and bss pages are readable for the image's lifetime (caller's contract).
        unsafe { self.reservation.read_shared(offset as usize, out) }
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

    /// Overwrites bytes of a read+write section (data or bss) at image offset `offset`, word
    /// by word with atomic stores: threads the module's constructors started may be running.
    ///
    /// # Safety
    /// The range must lie in a data or bss section of this image (those stay read+write).
    pub(crate) unsafe fn write_data(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: data and bss pages are writable for the image's lifetime (caller's contract).
        unsafe { self.reservation.write_shared(offset as usize, bytes) }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // Unwind tables, debugger and profiler entries go before the pages they describe.
        crate::runtime::detach(self.base());
    }
}
