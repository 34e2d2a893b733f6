//! One version's symbols arranged for what a reload asks of them: which symbol owns an
//! image address, which symbols hold the module's state, which local symbol has a name.
//!
//! Made from the symbol table in one pass and one sort by the reload that makes a version,
//! and kept by the registry beside the running version until the reload that replaces it:
//! a reload needs it of both the running version and the new one, and the new one is the
//! running one of the next reload, so each version's table is arranged once, not at every
//! reload that involves it. A module that is never reloaded never has one, and a replaced
//! version kept mapped (for pointers into it) keeps none. Its locals by name ([`Locals`]) are
//! looked up only while a version is the new one, so they are made in the same pass and not
//! kept.

use smf_format::{Binding, Module as Parsed, SectionKind, SymbolKind};

/// A version's symbols by address, its state symbols, and its exports by name hash.
#[derive(Debug)]
pub(crate) struct SymbolIndex {
    /// Every symbol that lies in a loaded section ([`smf_format::Symbols::placed`]), sorted
    /// by (start, end, index): `end` is at least `start + 1`, so that a zero-sized symbol
    /// still owns its address. An entry whose name or type does not decode (local ones no
    /// load checked) owns its addresses all the same, and what asks for its name gets none:
    /// a pointer it owns keeps the old version, a comparison naming it finds a difference.
    spans: Vec<Span>,
    /// `reach[i]`: the largest `end` among `spans[..=i]`. A backward scan for the symbols
    /// containing an offset stops where no earlier span reaches past it.
    reach: Vec<u64>,
    /// A coarse index of `spans`: `buckets[b]` is the first span starting at or after
    /// `b << shift`. A search for an address looks only between two buckets' entries, a few
    /// spans, instead of halving the whole list: a reload searches for every pointer it
    /// carries, each search a chain of cache misses in a list of SQLite's size. At most two
    /// buckets per span (the count is the spans rounded up to a power of two), at least a page
    /// each.
    buckets: Vec<u32>,
    shift: u32,
    /// The indices of the symbols that hold the module's state (data in writable sections),
    /// in table order.
    state: Vec<u32>,
    /// The exported symbols, sorted by (stored name hash, index), each with its function
    /// fingerprint if the module records one: what comparing two versions' exports reads.
    exports: Vec<Export>,
}

/// A version's local symbols by stored name hash: what the reload that makes the version
/// finds its locals in by name, to move pointers of the state it carries over.
#[derive(Debug)]
pub(crate) struct Locals {
    /// An open-addressing table (linear probing, a power of two long, at most half full) of
    /// `hash << 32 | index`, [`EMPTY`] where none is. The stored hash is already a hash, so
    /// the table takes no sort and no hashing. The hashes of locals are what the writer
    /// stored, unchecked: a local whose stored hash is not its name's is not found by name.
    /// Every entry lies at most [`MAX_DISPLACEMENT`] entries past its home; a table where
    /// one would not is left empty, and finds no local (their pointers keep the old version).
    table: Vec<u64>,
}

/// An exported symbol as [`SymbolIndex::exports`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Export {
    /// Its name's FNV-1a hash, as stored (checked by the parse for exported symbols).
    pub hash: u32,
    pub index: u32,
    /// Its fingerprint (`docs/FORMAT.md`, *Function fingerprints*), if it has one.
    pub fingerprint: Option<u64>,
}

/// Walks two versions' export lists ([`SymbolIndex::exports`], sorted by hash) together:
/// each name hash either exports, in ascending order, with the exports of each that have it
/// (almost always one or none).
pub(crate) fn by_hash<'a>(
    old: &'a [Export],
    new: &'a [Export],
) -> impl Iterator<Item = (u32, &'a [Export], &'a [Export])> {
    let (mut old, mut new) = (old, new);
    std::iter::from_fn(move || {
        let hash = match (old.first(), new.first()) {
            (Some(x), Some(y)) => x.hash.min(y.hash),
            (Some(x), None) => x.hash,
            (None, Some(y)) => y.hash,
            (None, None) => return None,
        };
        let split = |list: &mut &'a [Export]| {
            let (with, rest) = list.split_at(list.iter().take_while(|e| e.hash == hash).count());
            *list = rest;
            with
        };
        Some((hash, split(&mut old), split(&mut new)))
    })
}

/// A free entry of [`Locals::table`] (no symbol has index `u32::MAX`: a table's count
/// is a `u32`).
const EMPTY: u64 = u64::MAX;

/// How far from its home entry a local may lie in [`Locals::table`]. Stored hashes of locals
/// are what the writer stored, unchecked: a table where many share one (a writer that stores
/// no real hash for locals, or a hostile one) would take time quadratic in their number to
/// fill and to search. Honest hashes, at most half filling the table, place even millions of
/// locals a few dozen entries from home at most.
const MAX_DISPLACEMENT: usize = 1024;

/// Spans a reload looks at, in all, to find the owners of the pointers it carries
/// ([`SymbolIndex::owner`]): searches stop (and the pointers they are for keep the old
/// version) past it. A search looks at the few spans near the address, and at the spans
/// before those that reach past it (symbols that contain others): a table where most symbols
/// contain most others would otherwise cost every search the whole table.
pub(crate) const OWNER_SEARCH_BUDGET: usize = 1 << 24;

/// Spans [`SymbolIndex::sized_at`] looks back over for one with a size.
const SIZED_LOOK_BACK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: u64,
    end: u64,
    index: u32,
    /// Whether the symbol has a size.
    sized: bool,
    /// Whether the symbol is local (an exported one owns an address first).
    local: bool,
    kind: SymbolKind,
}

/// A symbol as a reload's pointer translation reads it: which entry, where, what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Located {
    pub index: usize,
    pub value: u64,
    pub size: u64,
    pub kind: SymbolKind,
    pub local: bool,
}

/// [`SymbolIndex::buckets`] and [`SymbolIndex::shift`] of `spans` (sorted by start).
fn buckets(spans: &[Span]) -> (Vec<u32>, u32) {
    let Some(last) = spans.last() else {
        return (Vec::new(), 63);
    };
    // Enough bits that the buckets up to the last start number at most the spans rounded up
    // to a power of two.
    let wanted = (spans.len() as u64).next_power_of_two().trailing_zeros();
    let bits = u64::BITS - last.start.leading_zeros();
    let shift = bits.saturating_sub(wanted).clamp(12, 63);
    let count = (last.start >> shift) as usize + 1;
    let mut buckets = Vec::with_capacity(count);
    let mut at = 0;
    for b in 0..count as u64 {
        while spans.get(at).is_some_and(|span| span.start < b << shift) {
            at += 1;
        }
        buckets.push(at as u32);
    }
    (buckets, shift)
}

/// `reach[i]` of `spans` (see [`SymbolIndex::reach`]).
fn reach(spans: &[Span]) -> Vec<u64> {
    spans
        .iter()
        .scan(0, |reach, span| {
            *reach = span.end.max(*reach);
            Some(*reach)
        })
        .collect()
}

impl SymbolIndex {
    /// The arrangement of `file`'s symbols.
    pub(crate) fn new(file: &Parsed<'_>) -> Self {
        SymbolIndex::arrange(file, false).0
    }

    /// The arrangement of `file`'s symbols, and its locals by name, made in the same pass.
    pub(crate) fn with_locals(file: &Parsed<'_>) -> (Self, Locals) {
        let (index, keys) = SymbolIndex::arrange(file, true);
        (index, Locals::from_keys(keys))
    }

    /// The arrangement of `file`'s symbols, and the keys of its locals' table
    /// ([`Locals::table`]) if `with_locals`.
    fn arrange(file: &Parsed<'_>, with_locals: bool) -> (Self, Vec<u64>) {
        let symbols = file.symbols();
        // Whether each section holds state: looked up once per symbol, by index.
        let writable: Vec<bool> = file
            .sections()
            .iter()
            .map(|s| matches!(s.kind, SectionKind::Data | SectionKind::Bss))
            .collect();
        let mut spans = Vec::with_capacity(symbols.len());
        let mut state = Vec::new();
        let mut local_keys = Vec::with_capacity(if with_locals { symbols.len() } else { 0 });
        let mut exports = Vec::new();
        // Both in table order: the fingerprints are merged in as the exports are listed.
        let mut fingerprints = file.fingerprints().peekable();
        // One pass over the table. Names are read only of the symbols a reload goes on to use
        // (the state, the owners of carried pointers, the locals they name): decoding every
        // entry's was half of arranging SQLite's table.
        for (i, entry) in symbols.summaries() {
            let local = entry.binding == Some(Binding::Local);
            if local {
                if with_locals {
                    local_keys.push(u64::from(entry.name_hash) << 32 | i as u64);
                }
            } else {
                // Exported (the parse refused unknown bindings but of locals).
                while fingerprints.next_if(|&(at, _)| at < i).is_some() {}
                let fingerprint = fingerprints.next_if(|&(at, _)| at == i).map(|(_, f)| f);
                exports.push(Export {
                    hash: entry.name_hash,
                    index: i as u32,
                    fingerprint,
                });
            }
            let Some(symbol) = entry.placed else {
                continue;
            };
            spans.push(Span {
                start: symbol.value,
                end: symbol.value.saturating_add(symbol.size.max(1)),
                index: i as u32,
                sized: symbol.size > 0,
                local,
                kind: symbol.kind,
            });
            if symbol.kind == SymbolKind::Data && writable[symbol.section as usize] {
                state.push(i as u32);
            }
        }
        // The packer writes the table as runs in address order (locals, then the others): a
        // merge sort finds the runs and merges them, where a quicksort sorted anew.
        spans.sort();
        let reach = reach(&spans);
        let (buckets, shift) = buckets(&spans);
        // (hash, index) is unique: the fingerprint never decides the order.
        exports.sort_unstable_by_key(|e: &Export| u64::from(e.hash) << 32 | u64::from(e.index));
        let index = SymbolIndex {
            spans,
            reach,
            buckets,
            shift,
            state,
            exports,
        };
        (index, local_keys)
    }

    /// The number of spans that start at or before `offset`: where a search for the spans
    /// containing it starts (backwards).
    fn starting_by(&self, offset: u64) -> usize {
        let b = usize::try_from(offset >> self.shift).unwrap_or(usize::MAX);
        let lo = match self.buckets.get(b) {
            Some(&lo) => lo as usize,
            // Past the last bucket: after every span's bucket start.
            None => self.buckets.last().map_or(0, |&lo| lo as usize),
        };
        let hi = self
            .buckets
            .get(b.saturating_add(1))
            .map_or(self.spans.len(), |&hi| hi as usize);
        lo + self.spans[lo..hi].partition_point(|span| span.start <= offset)
    }

    /// The exported symbols by (name hash, index), with their fingerprints.
    pub(crate) fn exports(&self) -> &[Export] {
        &self.exports
    }

    /// The indices of the state symbols (data in writable sections), in table order.
    pub(crate) fn state(&self) -> &[u32] {
        &self.state
    }

    /// The symbol that owns image offset `offset`: of those containing it, an exported one
    /// before a local one, then the first in the symbol table. Each span looked at takes one
    /// from `budget`; none is found once it is spent (see [`OWNER_SEARCH_BUDGET`]).
    pub(crate) fn owner(&self, offset: u64, budget: &mut usize) -> Option<Located> {
        let mut best: Option<Span> = None;
        let mut j = self.starting_by(offset);
        while j > 0 && self.reach[j - 1] > offset {
            *budget = budget.checked_sub(1)?;
            j -= 1;
            let span = self.spans[j];
            let better = |b: Span| (span.local, span.index) < (b.local, b.index);
            if offset < span.end && best.is_none_or(better) {
                best = Some(span);
            }
        }
        best.map(|span| Located {
            index: span.index as usize,
            value: span.start,
            size: if span.sized { span.end - span.start } else { 0 },
            kind: span.kind,
            local: span.local,
        })
    }

    /// The symbol with a size that starts last at or before `target`, if `target` lies inside
    /// it: (start, index). Looks back over at most [`SIZED_LOOK_BACK`] spans (symbols without
    /// a size in a row).
    pub(crate) fn sized_at(&self, target: u64) -> Option<(u64, usize)> {
        let after = self.starting_by(target);
        let span = self.spans[..after]
            .iter()
            .rev()
            .take(SIZED_LOOK_BACK)
            .find(|span| span.sized)?;
        (target < span.end).then_some((span.start, span.index as usize))
    }
}

impl Locals {
    /// The table of `keys` (`hash << 32 | index`, one per local symbol).
    fn from_keys(keys: Vec<u64>) -> Locals {
        let mut table = vec![EMPTY; (keys.len() * 2).next_power_of_two()];
        let mask = table.len() - 1;
        for key in keys {
            let mut at = (key >> 32) as usize & mask;
            let mut displacement = 0;
            while table[at] != EMPTY {
                displacement += 1;
                if displacement > MAX_DISPLACEMENT {
                    return Locals { table: vec![EMPTY] };
                }
                at = (at + 1) & mask;
            }
            table[at] = key;
        }
        Locals { table }
    }

    /// The local symbol of `file` (the table these locals were made from) named `name` of
    /// `kind` that lies in a loaded section, if exactly one does, found by `hash`, the name's
    /// FNV-1a hash. The hashes of locals are what the writer stored, unchecked (docs/FORMAT.md):
    /// where one is not its name's, the symbol is not found, and a reload leaves a pointer to it
    /// where it was.
    pub(crate) fn local(
        &self,
        file: &Parsed<'_>,
        hash: u32,
        name: &str,
        kind: SymbolKind,
    ) -> Option<Located> {
        let symbols = file.symbols();
        let hash = u64::from(hash);
        let mask = self.table.len() - 1;
        let start = hash as usize & mask;
        let mut found = None;
        // Every local of this hash lies between its home entry and the next free one, and at
        // most `MAX_DISPLACEMENT` past its home. Only the entries of the hash are read, and of
        // those only the names that match decoded.
        let probed = (start..self.table.len()).chain(0..start);
        for key in probed
            .take(MAX_DISPLACEMENT + 1)
            .map(|at| self.table[at])
            .take_while(|&key| key != EMPTY)
        {
            if key >> 32 != hash {
                continue;
            }
            let index = key as u32 as usize;
            if symbols.name(index) != Some(name) {
                continue;
            }
            let Some(placed) = symbols.placed_at(index).filter(|p| p.kind == kind) else {
                continue;
            };
            if found.is_some() {
                // Several share the name: none is the same object.
                return None;
            }
            found = Some(Located {
                index,
                value: placed.value,
                size: placed.size,
                kind,
                local: true,
            });
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(spans: &[(u64, u64, bool)]) -> SymbolIndex {
        let mut spans: Vec<Span> = spans
            .iter()
            .enumerate()
            .map(|(i, &(start, size, local))| Span {
                start,
                end: start + size.max(1),
                index: i as u32,
                sized: size > 0,
                local,
                kind: SymbolKind::Data,
            })
            .collect();
        spans.sort_unstable();
        let reach = reach(&spans);
        let (buckets, shift) = buckets(&spans);
        SymbolIndex {
            spans,
            reach,
            buckets,
            shift,
            state: vec![],
            exports: vec![],
        }
    }

    /// The coarse index finds where the spans starting at or before an address end, as a
    /// search of the whole list does: for lists of many sizes and spreads, addresses inside,
    /// between and past them, at bucket edges.
    #[test]
    fn the_bucketed_search_agrees_with_a_search_of_all_spans() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for (count, spread) in [
            (0, 1),
            (1, 1 << 12),
            (7, 1 << 20),
            (300, 1 << 16),
            (2000, 1 << 30),
            (50, u64::MAX >> 1),
        ] {
            let spans: Vec<(u64, u64, bool)> = (0..count)
                .map(|_| (next(spread), next(64), next(2) == 0))
                .collect();
            let index = index(&spans);
            assert!(index.buckets.len() <= index.spans.len().next_power_of_two());
            let mut probes: Vec<u64> = (0..500).map(|_| next(spread.saturating_mul(2))).collect();
            for span in &index.spans {
                probes.extend([span.start.saturating_sub(1), span.start, span.start + 1]);
            }
            let step = 1u64 << index.shift.min(62);
            for b in 0..index.buckets.len() as u64 + 2 {
                let edge = b.saturating_mul(step);
                probes.extend([edge.saturating_sub(1), edge, edge.saturating_add(1)]);
            }
            probes.extend([0, u64::MAX]);
            for offset in probes {
                assert_eq!(
                    index.starting_by(offset),
                    index.spans.partition_point(|span| span.start <= offset),
                    "{count} spans over {spread:#x}, offset {offset:#x}"
                );
            }
        }
    }

    /// Locals whose stored hashes all agree (which no load checks) leave the table empty
    /// instead of filling it in time quadratic in their number; honest hashes fill it, each
    /// local near its home.
    #[test]
    fn a_table_of_locals_whose_hashes_crowd_together_is_left_empty() {
        let crowded: Vec<u64> = (0..20_000).collect();
        assert_eq!(Locals::from_keys(crowded).table, vec![EMPTY]);
        let spread: Vec<u64> = (0..20_000u64)
            .map(|i| u64::from(smf_format::fnv1a32(format!("local_{i}").as_bytes())) << 32 | i)
            .collect();
        let locals = Locals::from_keys(spread.clone());
        let mask = locals.table.len() - 1;
        let mut placed: Vec<u64> = Vec::new();
        for (at, &key) in locals.table.iter().enumerate() {
            if key != EMPTY {
                let home = (key >> 32) as usize & mask;
                assert!((at.wrapping_sub(home) & mask) <= MAX_DISPLACEMENT);
                placed.push(key);
            }
        }
        placed.sort_unstable_by_key(|&key| key as u32);
        assert_eq!(placed, spread);
    }

    /// Owner searches stop once their budget is spent: where every symbol contains the next,
    /// each search would otherwise look at the whole table.
    #[test]
    fn owner_searches_stop_when_their_budget_is_spent() {
        // 10,000 symbols, each from its own start to the end of them all.
        let spans: Vec<(u64, u64, bool)> = (0..10_000).map(|i| (i, 10_000 - i, true)).collect();
        let index = index(&spans);
        let mut budget = 100;
        assert_eq!(index.owner(9_999, &mut budget), None);
        assert_eq!(budget, 0);
        let mut budget = 20_000;
        assert_eq!(index.owner(9_999, &mut budget).map(|o| o.index), Some(0));
        assert_eq!(budget, 10_000, "every span looked at once");
    }

    #[test]
    fn an_address_is_owned_by_an_exported_symbol_before_a_local_one() {
        // 0: local 0x10..0x30; 1: exported 0x20..0x28; 2: local, zero-sized at 0x40.
        let index = index(&[(0x10, 0x20, true), (0x20, 8, false), (0x40, 0, true)]);
        let owner = |offset| {
            index
                .owner(offset, &mut usize::MAX.clone())
                .map(|o| o.index)
        };
        assert_eq!(owner(0x18), Some(0));
        assert_eq!(owner(0x20), Some(1));
        assert_eq!(owner(0x2f), Some(0));
        assert_eq!(owner(0x30), None);
        assert_eq!(owner(0x40), Some(2));
        assert_eq!(owner(0x41), None);
        let found = index
            .owner(0x2f, &mut 8)
            .map(|o| (o.value, o.size, o.local));
        assert_eq!(found, Some((0x10, 0x20, true)));
        let found = index
            .owner(0x40, &mut 8)
            .map(|o| (o.value, o.size, o.local));
        assert_eq!(
            found,
            Some((0x40, 0, true)),
            "a zero-sized symbol has size 0"
        );
        // A zero-sized symbol is nobody's size.
        assert_eq!(index.sized_at(0x40), None);
        assert_eq!(index.sized_at(0x24), Some((0x20, 1)));
        assert_eq!(index.sized_at(0x2c), None, "the last sized symbol ended");
    }
}
