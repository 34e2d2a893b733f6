//! Indirection slots for calls into reloadable modules.
//!
//! Each exported function of a reloadable module that something links to gets a slot: an
//! 8-byte cell holding the current version's address, and a trampoline, `jmp *slot`. Other
//! modules' imports and the host's current-version handles resolve to the trampoline, which
//! never moves, so a reload retargets every caller with one atomic store per slot and nothing
//! is re-linked.
//!
//! Slots come in blocks of two pages: a code page of identical 8-byte trampolines and, right
//! after it, a data page of slots. Trampoline `i` at `code + 8i` jumps through the slot at
//! `code + 4096 + 8i`, a RIP-relative displacement that is the same for every `i`, so the code
//! page is written once, made read+execute, and never written again; only the data page,
//! read+write, changes. No page is writable and executable at once.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sys::{PAGE_SIZE, Protection, Reservation};

const TRAMPOLINE_SIZE: usize = 8;
const PER_BLOCK: usize = PAGE_SIZE / TRAMPOLINE_SIZE;

/// `jmp qword ptr [rip + 0xffa]` (the slot one page after the trampoline), then two `int3`.
/// The displacement is from the end of the 6-byte instruction: 4096 - 6 = 0xffa.
const TRAMPOLINE: [u8; TRAMPOLINE_SIZE] = [0xff, 0x25, 0xfa, 0x0f, 0x00, 0x00, 0xcc, 0xcc];

/// Where a slot lives: its trampoline (the stable address callers use) and its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    block: usize,
    index: usize,
}

/// All slots of a registry. Slots are never freed one by one: a reload reuses the slots of
/// the version it replaces, so their number is bounded by the distinct functions linked to.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    blocks: Mutex<Vec<Reservation>>,
    next: Mutex<usize>,
}

impl SlotTable {
    /// A new slot pointing at `target`.
    pub(crate) fn allocate(&self, target: usize) -> io::Result<Slot> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let (block, index) = (*next / PER_BLOCK, *next % PER_BLOCK);
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if block == blocks.len() {
            blocks.push(new_block()?);
        }
        *next += 1;
        let slot = Slot { block, index };
        self.cell_in(&blocks, slot).store(target, Ordering::Release);
        Ok(slot)
    }

    /// The address callers use for `slot`.
    pub(crate) fn trampoline(&self, slot: Slot) -> usize {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks[slot.block].base() as usize + slot.index * TRAMPOLINE_SIZE
    }

    /// Points `slot` at `target`. Calls that already went through the trampoline finish in
    /// the code they jumped to; later calls reach `target`.
    pub(crate) fn retarget(&self, slot: Slot, target: usize) {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        self.cell_in(&blocks, slot).store(target, Ordering::Release);
    }

    /// The address `slot` currently points at.
    #[cfg(test)]
    pub(crate) fn target(&self, slot: Slot) -> usize {
        let blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        self.cell_in(&blocks, slot).load(Ordering::Acquire)
    }

    fn cell_in<'a>(&self, blocks: &'a [Reservation], slot: Slot) -> &'a AtomicUsize {
        let block = &blocks[slot.block];
        // SAFETY: the data page of a block is mapped read+write for the block's lifetime (the
        // borrow of `blocks` bounds it); cell `index` is 8-byte aligned inside it; the memory
        // is only ever accessed atomically, by this type and by trampolines' loads.
        unsafe {
            &*(block
                .base()
                .add(PAGE_SIZE + slot.index * size_of::<usize>())
                as *const AtomicUsize)
        }
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

    #[test]
    fn trampolines_follow_their_slot() {
        let table = SlotTable::default();
        let slots: Vec<Slot> = (0..PER_BLOCK + 3)
            .map(|_| {
                table
                    .allocate(one as extern "C" fn() -> i64 as usize)
                    .unwrap()
            })
            .collect();
        let call = |slot: Slot| {
            // SAFETY: the trampoline jumps to `one` or `two`, both `extern "C" fn() -> i64`.
            let f = unsafe {
                std::mem::transmute::<usize, extern "C" fn() -> i64>(table.trampoline(slot))
            };
            f()
        };
        assert!(slots.iter().all(|&s| call(s) == 1));
        let last = *slots.last().unwrap();
        table.retarget(last, two as extern "C" fn() -> i64 as usize);
        assert_eq!(call(last), 2, "a slot in the second block");
        assert_eq!(call(slots[0]), 1, "other slots are untouched");
        assert_eq!(table.target(last), two as extern "C" fn() -> i64 as usize);
    }
}
