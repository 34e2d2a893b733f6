//! Indirection slots for calls into reloadable modules.
//!
//! Each exported function of a reloadable module that something links to gets a slot: an
//! 8-byte cell holding the current version's address, and a trampoline that jumps through
//! it (`jmp *slot` on x86-64, `ldr x16, slot; br x16` on aarch64). Other
//! modules' imports and the host's current-version handles resolve to the trampoline, which
//! never moves, so a reload retargets every caller with one atomic store per slot and nothing
//! is re-linked.
//!
//! Slots come in blocks of two pages: a code page of identical 8-byte trampolines and, right
//! after it, a data page of slots. Trampoline `i` at `code + 8i` jumps through the slot at
//! `code + 4096 + 8i`, a PC-relative displacement that is the same for every `i`, so the code
//! page is written once, made read+execute, and never written again; only the data page,
//! read+write, changes. No page is writable and executable at once.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use smf_format::typeinfo::OwnedType;

use crate::module::Module;
use crate::sys::{PAGE_SIZE, Protection, Reservation};

const TRAMPOLINE_SIZE: usize = 8;
const PER_BLOCK: usize = PAGE_SIZE / TRAMPOLINE_SIZE;

/// An indirect jump through the word one page after the trampoline (`sys::arch`).
const TRAMPOLINE: [u8; TRAMPOLINE_SIZE] = crate::sys::arch::slot_trampoline(PAGE_SIZE);

/// The trampoline and cell pages of a registry. Cells are handed out as [`Slot`]s and come
/// back when their slot is dropped, so the pages in use are bounded by the slots alive at
/// once, not by how many were ever made.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    cells: Mutex<Cells>,
}

#[derive(Debug, Default)]
struct Cells {
    blocks: Vec<Reservation>,
    /// Cells never handed out start at `next`; `free` holds those given back.
    next: usize,
    free: Vec<usize>,
}

impl Cells {
    fn cell(&self, index: usize) -> &AtomicUsize {
        let block = &self.blocks[index / PER_BLOCK];
        // SAFETY: the data page of a block is mapped read+write for the block's lifetime (the
        // borrow of `self` bounds it); cell `index` is 8-byte aligned inside it; the memory
        // is only ever accessed atomically, by this type and by trampolines' loads.
        unsafe {
            &*(block
                .base()
                .add(PAGE_SIZE + (index % PER_BLOCK) * size_of::<usize>())
                as *const AtomicUsize)
        }
    }

    fn trampoline(&self, index: usize) -> usize {
        self.blocks[index / PER_BLOCK].base() as usize + (index % PER_BLOCK) * TRAMPOLINE_SIZE
    }
}

/// One function's indirection: a trampoline that never moves and the cell it jumps through.
///
/// Whatever can call through the trampoline holds the slot (the registry while the module is
/// loaded, importing modules, `Current` handles), and the slot holds the version its cell
/// points into, so that version stays mapped while anything can reach it. Dropping the last
/// holder gives the cell back to the table.
#[derive(Debug)]
pub(crate) struct Slot {
    table: Arc<SlotTable>,
    index: usize,
    trampoline: usize,
    /// The function's type (from the module's `typeinfo`) that callers were linked against;
    /// `None` when the module recorded none.
    linked_type: Mutex<Option<Arc<OwnedType>>>,
    /// The version the cell points into (`None` only in this file's tests).
    target: Mutex<Option<Arc<Module>>>,
}

impl SlotTable {
    /// A new slot whose cell points at `address`, a function of `module`.
    pub(crate) fn allocate(
        self: &Arc<Self>,
        module: Option<Arc<Module>>,
        address: usize,
        linked_type: Option<OwnedType>,
    ) -> io::Result<Slot> {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let index = match cells.free.pop() {
            Some(index) => index,
            None => {
                if cells.next == cells.blocks.len() * PER_BLOCK {
                    let block = new_block()?;
                    cells.blocks.push(block);
                }
                cells.next += 1;
                cells.next - 1
            }
        };
        cells.cell(index).store(address, Ordering::Release);
        let trampoline = cells.trampoline(index);
        Ok(Slot {
            table: Arc::clone(self),
            index,
            trampoline,
            linked_type: Mutex::new(linked_type.map(Arc::new)),
            target: Mutex::new(module),
        })
    }

    /// Pages of trampolines and cells mapped now.
    #[cfg(test)]
    fn blocks(&self) -> usize {
        self.cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocks
            .len()
    }
}

impl Slot {
    /// The address callers use.
    pub(crate) fn trampoline(&self) -> usize {
        self.trampoline
    }

    /// The type callers were linked against, if the module recorded one.
    pub(crate) fn linked_type(&self) -> Option<Arc<OwnedType>> {
        self.linked_type
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the type callers are linked against from now on (a reload that changed it
    /// was let through, see `TypeChanges::Report`).
    pub(crate) fn set_linked_type(&self, ty: Option<OwnedType>) {
        *self.linked_type.lock().unwrap_or_else(|p| p.into_inner()) = ty.map(Arc::new);
    }

    /// Points the slot at `address`, a function of `module`, and returns the version it
    /// pointed into. Calls that already went through the trampoline finish in the code they
    /// jumped to (the caller keeps that version alive for them); later calls reach `address`.
    pub(crate) fn retarget(&self, module: Arc<Module>, address: usize) -> Option<Arc<Module>> {
        let mut target = self.target.lock().unwrap_or_else(|p| p.into_inner());
        let cells = self.table.cells.lock().unwrap_or_else(|p| p.into_inner());
        cells.cell(self.index).store(address, Ordering::Release);
        target.replace(module)
    }

    /// The address the slot currently points at.
    #[cfg(test)]
    fn target(&self) -> usize {
        let cells = self.table.cells.lock().unwrap_or_else(|p| p.into_inner());
        cells.cell(self.index).load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut cells = self.table.cells.lock().unwrap_or_else(|p| p.into_inner());
        // Nothing holds the slot, so nothing that may call through it is mapped: the cell
        // may serve another function. Until then its trampoline faults instead of jumping
        // into whatever the target becomes once it is unmapped.
        cells.cell(self.index).store(0, Ordering::Release);
        cells.free.push(self.index);
    }
}

fn new_block() -> io::Result<Reservation> {
    let block = Reservation::new(2 * PAGE_SIZE)?;
    block.protect(0..PAGE_SIZE, Protection::ReadWrite)?;
    let code: Vec<u8> = TRAMPOLINE.iter().copied().cycle().take(PAGE_SIZE).collect();
    // SAFETY: the code page was just made writable and no one else knows the block yet.
    unsafe { block.write(0, &code)? };
    block.protect(0..PAGE_SIZE, Protection::Read)?;
    block.flush_instruction_cache(0..PAGE_SIZE);
    block.protect(0..PAGE_SIZE, Protection::ReadExecute)?;
    block.protect(PAGE_SIZE..2 * PAGE_SIZE, Protection::ReadWrite)?;
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn one() -> i64 {
        1
    }
    extern "C" fn two() -> i64 {
        2
    }

    fn call(slot: &Slot) -> i64 {
        // SAFETY: the trampoline jumps to `one` or `two`, both `extern "C" fn() -> i64`.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> i64>(slot.trampoline()) };
        f()
    }

    #[test]
    fn trampolines_follow_their_slot() {
        let table = Arc::new(SlotTable::default());
        let slots: Vec<Slot> = (0..PER_BLOCK + 3)
            .map(|_| {
                table
                    .allocate(None, one as extern "C" fn() -> i64 as usize, None)
                    .unwrap()
            })
            .collect();
        assert!(slots.iter().all(|s| call(s) == 1));
        let last = slots.last().unwrap();
        assert!(last.target.lock().unwrap().is_none());
        let cells = last.table.cells.lock().unwrap();
        cells
            .cell(last.index)
            .store(two as extern "C" fn() -> i64 as usize, Ordering::Release);
        drop(cells);
        assert_eq!(call(last), 2, "a slot in the second block");
        assert_eq!(call(&slots[0]), 1, "other slots are untouched");
        assert_eq!(last.target(), two as extern "C" fn() -> i64 as usize);
    }

    #[test]
    fn dropped_slots_give_their_cells_back() {
        let table = Arc::new(SlotTable::default());
        for _ in 0..10 * PER_BLOCK {
            let slot = table
                .allocate(None, one as extern "C" fn() -> i64 as usize, None)
                .unwrap();
            assert_eq!(call(&slot), 1);
        }
        assert_eq!(
            table.blocks(),
            1,
            "one block serves slots made and dropped in turn"
        );
        let kept: Vec<Slot> = (0..PER_BLOCK + 1)
            .map(|_| {
                table
                    .allocate(None, two as extern "C" fn() -> i64 as usize, None)
                    .unwrap()
            })
            .collect();
        assert_eq!(table.blocks(), 2);
        let trampolines: std::collections::HashSet<usize> =
            kept.iter().map(Slot::trampoline).collect();
        assert_eq!(
            trampolines.len(),
            kept.len(),
            "live slots never share a cell"
        );
        assert!(kept.iter().all(|s| call(s) == 2));
    }
}
