//! What a reload does to a module's state, and what it reports.
//!
//! The design is documented in `docs/RELOAD.md`: data symbols whose name, size and type id
//! match are copied from the old version into the new one at the swap (with pointers into the
//! old image moved to the same symbol in the new one), everything else starts fresh.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use smf_format::{SectionKind, Symbol, SymbolKind};

use crate::module::Module;
use crate::symbol_index::{Locals, Located, OWNER_SEARCH_BUDGET, SymbolIndex};
use crate::sys::arch;

/// Exported function run on the old version just before the swap.
pub const BEFORE_RELOAD_HOOK: &str = "smf_before_reload";
/// Exported function run on the new version just after the swap.
pub const AFTER_RELOAD_HOOK: &str = "smf_after_reload";

/// What one reload did.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// The module's canonical path, or the name it was loaded under from memory.
    pub path: std::path::PathBuf,
    /// The version now running (unchanged for a no-op).
    pub version: u32,
    /// The module version (from its version table) of the version now running, if it has
    /// one.
    pub module_version: Option<smf_format::Version>,
    /// The module version of the version it replaced.
    pub previous_module_version: Option<smf_format::Version>,
    /// The file's content was the running version's: nothing was done.
    pub unchanged: bool,
    /// Exported symbols the new version has and the old did not.
    pub added: Vec<String>,
    /// Exported symbols the old version had and the new does not.
    pub removed: Vec<String>,
    /// Exported symbols of both versions whose behaviour may differ: where both versions
    /// record a function fingerprint for one, the fingerprints differ; otherwise its kind or
    /// size changed or its bytes differ other than in fields that only locate something that
    /// moved (docs/RELOAD.md).
    pub changed: Vec<String>,
    /// Data symbols whose values were carried over from the old version.
    pub kept: Vec<String>,
    /// Data symbols that start fresh, each with the reason.
    pub reset: Vec<(String, String)>,
    /// Functions linked to handles or other modules whose type changed, each with the
    /// difference: let through because the options say [`crate::TypeChanges::Report`] (by
    /// default such a reload is refused).
    pub type_changes: Vec<(String, String)>,
    /// Whether kept data points into the old version's image (or one it retained) where no
    /// symbol of the new one corresponds, so that image stays mapped as long as the new
    /// version lives.
    pub retains_old: bool,
    /// From the start of the reload to the new code being reachable.
    pub duration: Duration,
    /// The module now running.
    pub module: Arc<Module>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unchanged {
            write!(
                f,
                "{}: unchanged, still version {}",
                self.path.display(),
                self.version
            )?;
            if let Some(v) = self.module_version {
                write!(f, " (module version {v})")?;
            }
            return Ok(());
        }
        write!(
            f,
            "{}: now version {} ({:.2?})",
            self.path.display(),
            self.version,
            self.duration
        )?;
        match (self.previous_module_version, self.module_version) {
            (Some(old), Some(new)) if old != new => {
                write!(f, "\n  module version: {old} -> {new}")?
            }
            (_, Some(new)) => write!(f, "\n  module version: {new}")?,
            (Some(old), None) => write!(f, "\n  module version: {old} -> none")?,
            (None, None) => {}
        }
        let list = |f: &mut std::fmt::Formatter<'_>, title: &str, names: &[String]| {
            if names.is_empty() {
                Ok(())
            } else {
                write!(f, "\n  {title}: {}", names.join(", "))
            }
        };
        list(f, "added", &self.added)?;
        list(f, "removed", &self.removed)?;
        list(f, "changed", &self.changed)?;
        list(f, "kept", &self.kept)?;
        for (name, why) in &self.reset {
            write!(f, "\n  reset: {name} ({why})")?;
        }
        for (name, change) in &self.type_changes {
            write!(f, "\n  type changed: {name}: {change}")?;
        }
        if self.retains_old {
            write!(
                f,
                "\n  kept data points into an earlier version, which stays mapped"
            )?;
        }
        Ok(())
    }
}

/// The hasher of the reload's maps of symbol names: eight bytes at a time, each word mixed
/// in by a rotation and a multiplication (as rustc's FxHash does), and a last multiplication
/// that spreads the result over the top bits the table takes its control bits from. Names
/// come from modules the host runs, so no adversary picks them to collide; SipHash, the
/// default, hashing the names of every local symbol of SQLite's module was a tenth of its
/// reload.
#[derive(Default)]
struct NameHasher(u64);

/// A map keyed by symbol names.
type ByName<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn write_isize(&mut self, value: isize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0.wrapping_mul(MIX)
    }
}

/// One version's symbols for everything a reload does with them (carrying state, moving
/// pointers, comparing code): the module's [`SymbolIndex`], made once per version, and its
/// state symbols decoded.
pub(crate) struct Decoded<'a> {
    module: &'a Module,
    index: &'a SymbolIndex,
    /// Its locals by name: for the new version, whose locals carried pointers move to.
    locals: Option<Locals>,
    /// The symbols that hold the module's state (data in writable sections), in table order.
    state: Vec<Symbol<'a>>,
}

impl<'a> Decoded<'a> {
    /// The version a reload replaces, with its symbols arranged (`index`).
    pub(crate) fn old(module: &'a Module, index: &'a SymbolIndex) -> Self {
        Decoded::with(module, index, None)
    }

    /// The version a reload makes, with its symbols arranged and its locals by name.
    pub(crate) fn new(module: &'a Module, index: &'a SymbolIndex, locals: Locals) -> Self {
        Decoded::with(module, index, Some(locals))
    }

    fn with(module: &'a Module, index: &'a SymbolIndex, locals: Option<Locals>) -> Self {
        let file = module.file();
        let state = index
            .state()
            .iter()
            .filter_map(|&i| file.symbol(i as usize)?.ok())
            .collect();
        Decoded {
            module,
            index,
            locals,
            state,
        }
    }

    /// The state symbols by name; `None` for a name that several share (two local statics of
    /// different objects), which is then never carried over.
    fn state_by_name(&self) -> ByName<&'a str, Option<Symbol<'a>>> {
        let mut by_name: ByName<&str, Option<Symbol<'_>>> =
            ByName::with_capacity_and_hasher(self.state.len(), Default::default());
        for symbol in &self.state {
            by_name
                .entry(symbol.name)
                .and_modify(|unique| *unique = None)
                .or_insert(Some(*symbol));
        }
        by_name
    }

    /// The symbol with a size that starts last at or before `target`, if `target` lies inside
    /// it: (start, index).
    fn sized_at(&self, target: u64) -> Option<(u64, usize)> {
        self.index.sized_at(target)
    }
}

/// The page size state is copied by, and bss residency is told in.
const PAGE: u64 = crate::sys::PAGE_SIZE as u64;

/// The outcome of carrying state from `old` to `new`.
pub(crate) struct Carried {
    pub kept: Vec<String>,
    pub reset: Vec<(String, String)>,
    pub retains_old: bool,
    /// Versions older than `old` that `old` retained and kept data still points into: the
    /// new version must retain them too.
    pub older: Vec<Arc<Module>>,
}

/// Copies the values of matching data symbols from `old` into `new`.
pub(crate) fn carry_state<'a>(old: &Decoded<'a>, new: &Decoded<'a>) -> Carried {
    let (old_symbols, new_symbols) = (old, new);
    let (old, new) = (old.module, new.module);
    let mut carried = Carried {
        kept: Vec::new(),
        reset: Vec::new(),
        retains_old: false,
        older: Vec::new(),
    };
    let (old_state, new_state) = (old_symbols.state_by_name(), new_symbols.state_by_name());
    let translator = Translator::new(old_symbols, new_symbols);
    // Which pages of the old version's bss were ever written: one system call per bss
    // section, at the first bss value, rather than one per value.
    let bss_touched: OnceCell<Vec<(u64, Vec<bool>)>> = OnceCell::new();
    let touched_pages = || {
        bss_touched.get_or_init(|| {
            old.file()
                .sections()
                .iter()
                .filter(|s| s.kind == SectionKind::Bss && s.mem_size > 0)
                .map(|s| {
                    let first = s.vaddr & !(PAGE - 1);
                    let end = s.vaddr.saturating_add(s.mem_size);
                    (first, old.image().bss_pages_touched(s.vaddr, end))
                })
                .collect()
        })
    };
    // A page of the old value and of the new one, reused by every value.
    let mut buffers = ([0u8; PAGE as usize], [0u8; PAGE as usize]);
    for &symbol in &new_symbols.state {
        let name = symbol.name.to_owned();
        if new_state.get(symbol.name).copied().flatten().is_none() {
            carried
                .reset
                .push((name, "several data symbols share this name".into()));
            continue;
        }
        let Some(previous) = old_state.get(symbol.name).copied().flatten() else {
            carried.reset.push((name, "new".into()));
            continue;
        };
        let size = match carried_bytes(old, &previous, new, &symbol) {
            Ok(size) => size,
            Err(why) => {
                carried.reset.push((name, why));
                continue;
            }
        };
        let in_bss = old
            .file()
            .sections()
            .get(previous.section.unwrap_or(u32::MAX) as usize)
            .is_some_and(|s| s.kind == SectionKind::Bss);
        let touched = in_bss.then(touched_pages);
        match copy_value(
            old,
            new,
            &translator,
            previous.value,
            symbol.value,
            size,
            touched.map(Vec::as_slice),
            &mut buffers,
        ) {
            Ok(retains) => {
                carried.retains_old |= retains;
                carried.kept.push(name);
            }
            Err(_) => carried.reset.push((name, "could not be copied".into())),
        }
    }
    carried.older = translator.older_pointed_into();
    carried
}

/// How many bytes of the old value of data symbol `previous` carry over into `symbol`, its
/// new version, or why none do.
///
/// Where both versions record the symbol's type (`typeinfo`), the types decide: the same
/// type carries the whole value; a struct whose fields are all still there, at the same
/// offsets with the same types and names, followed by new fields, carries the bytes of the old
/// fields (the new fields keep their initial values; the old struct's tail padding, which a new
/// field may occupy, is not copied); anything else starts fresh, with the difference as the
/// reason. Without types on both sides, a value carries over whole when its size is the same.
fn carried_bytes(
    old: &Module,
    previous: &Symbol<'_>,
    new: &Module,
    symbol: &Symbol<'_>,
) -> Result<u64, String> {
    use smf_format::typeinfo::{Match, TypeKind, compare};
    let (old_types, new_types) = (old.file().types(), new.file().types());
    let (Some(a), Some(b)) = (
        old_types.get(previous.type_id),
        new_types.get(symbol.type_id),
    ) else {
        return if previous.size == symbol.size {
            Ok(symbol.size)
        } else {
            Err(format!(
                "size changed from {} to {}",
                previous.size, symbol.size
            ))
        };
    };
    let difference = match compare(old_types, a.id, new_types, b.id, Match::Exact) {
        Ok(()) if previous.size == symbol.size => return Ok(symbol.size),
        Ok(()) => {
            return Err(format!(
                "size changed from {} to {}",
                previous.size, symbol.size
            ));
        }
        Err(difference) => difference,
    };
    let reset = || {
        format!(
            "type changed from {} to {} ({difference})",
            old_types.display(a.id),
            new_types.display(b.id)
        )
    };
    // A struct that only gained fields at its end, held whole by the symbol.
    if a.kind != TypeKind::Struct
        || b.kind != TypeKind::Struct
        || a.is_incomplete()
        || b.is_incomplete()
        || previous.size != a.size
        || symbol.size != b.size
        || b.size < a.size
    {
        return Err(reset());
    }
    let (old_fields, new_fields): (Vec<_>, Vec<_>) = (
        old_types.members(&a).collect(),
        new_types.members(&b).collect(),
    );
    if old_fields.len() >= new_fields.len() {
        return Err(reset());
    }
    let mut end = 0u64;
    for (x, y) in old_fields.iter().zip(&new_fields) {
        let same = x.offset == y.offset
            && x.bit_offset == y.bit_offset
            && x.bit_size == y.bit_size
            && x.name == y.name
            && compare(old_types, x.ty, new_types, y.ty, Match::Exact).is_ok();
        if !same {
            return Err(reset());
        }
        let size = old_types.get(x.ty).map_or(0, |t| t.size);
        let field_end = if x.bit_size == 0 {
            x.offset + size
        } else {
            x.offset + (u64::from(x.bit_offset) + u64::from(x.bit_size)).div_ceil(8)
        };
        end = end.max(field_end);
    }
    // The new fields must lie past the old ones (a new bit-field sharing the last old byte
    // would be overwritten by the copy).
    if new_fields[old_fields.len()..]
        .iter()
        .any(|f| f.offset < end)
    {
        return Err(reset());
    }
    Ok(end)
}

/// Copies `size` bytes of state from image offset `from` of `old` to `to` of `new`, a page
/// at a time, moving pointers into the old image. Returns whether some pointer could not be
/// moved (the old image must then be retained).
///
/// Threads may still be running the old version (they entered it before the reload, or were
/// started by it): its state is read word by word with atomic loads, so a write racing with
/// the copy is either carried over or lost, a word at a time, and a value spanning several
/// words may be carried half old, half new. A module whose threads keep writing its state must
/// stop them in its `smf_before_reload` hook (docs/RELOAD.md).
///
/// Pages of a bss value that the old version never wrote are skipped: they are zeros in both
/// versions. `touched`, for a value in bss, gives for each bss section of `old` its first
/// page and whether each of its pages was written (a page it does not cover counts as
/// written). Only pages whose bytes differ are written, so large untouched buffers cost
/// neither copies nor page faults.
fn copy_value(
    old: &Module,
    new: &Module,
    translator: &Translator<'_, '_>,
    from: u64,
    to: u64,
    size: u64,
    touched: Option<&[(u64, Vec<bool>)]>,
    buffers: &mut ([u8; PAGE as usize], [u8; PAGE as usize]),
) -> std::io::Result<bool> {
    let (old_base, old_len) = (old.base() as u64, old.image_len() as u64);
    let mut retains = false;
    let (want, have) = buffers;
    let end = from + size;
    let written = |page: u64| {
        touched.is_none_or(|sections| {
            sections
                .iter()
                .find_map(|(first, pages)| {
                    let i = usize::try_from(page.checked_sub(*first)? / PAGE).ok()?;
                    pages.get(i).copied()
                })
                .unwrap_or(true)
        })
    };
    let mut at = from;
    while at < end {
        let page = at & !(PAGE - 1);
        let chunk = (page + PAGE).min(end) - at;
        if !written(page) {
            at += chunk;
            continue;
        }
        let (want, have) = (&mut want[..chunk as usize], &mut have[..chunk as usize]);
        // SAFETY: both ranges lie inside the symbols' data or bss sections (state_symbols).
        unsafe { old.image().read_data(at, want)? };
        // Words at 8-aligned addresses that point into the old image move to the new one.
        // The image base is page-aligned, so offsets and addresses align alike.
        let mut word = at.next_multiple_of(8);
        while word + 8 <= at + chunk {
            let i = (word - at) as usize;
            let value = u64::from_le_bytes(want[i..i + 8].try_into().unwrap_or_default());
            if (old_base..old_base + old_len).contains(&value) {
                match translator.translate(value - old_base) {
                    Some(moved) => want[i..i + 8].copy_from_slice(&moved.to_le_bytes()),
                    None => retains = true,
                }
            } else {
                // Kept from an earlier reload: it points into a version `old` retains.
                translator.note_older(value);
            }
            word += 8;
        }
        let target = to + (at - from);
        // SAFETY: as above; the new version is not yet reachable by callers.
        unsafe { new.image().read_data(target, have)? };
        if want != have {
            // SAFETY: as above.
            unsafe { new.image().write_data(target, want)? };
        }
        at += chunk;
    }
    Ok(retains)
}

/// Moves pointers into `old`'s image to the same place in `new`'s: the same symbol, at the
/// same distance from its start. Each pointer costs a binary search in `old`'s spans and a
/// hash lookup, not scans of the symbol tables.
struct Translator<'d, 'a> {
    old: &'d Decoded<'a>,
    new: &'d Decoded<'a>,
    /// The versions `old` retains, and whether a kept word points into each.
    older: Vec<(Arc<Module>, std::cell::Cell<bool>)>,
    /// Each owner (an index into `old`'s symbols) translated so far, with the symbol of `new`
    /// that is the same object, if one is: state holds many pointers to few symbols (SQLite's
    /// 519 pointers name 169), and finding a symbol by name is most of a translation.
    same: std::cell::RefCell<ByName<usize, Option<(Located, Located)>>>,
    /// What is left of the owner searches' budget ([`OWNER_SEARCH_BUDGET`]).
    budget: std::cell::Cell<usize>,
}

impl<'d, 'a> Translator<'d, 'a> {
    fn new(old: &'d Decoded<'a>, new: &'d Decoded<'a>) -> Self {
        Translator {
            old,
            new,
            older: old
                .module
                .retained()
                .into_iter()
                .map(|m| (m, std::cell::Cell::new(false)))
                .collect(),
            // Room for a few hundred symbols without growing (SQLite's state names 169).
            same: std::cell::RefCell::new(ByName::with_capacity_and_hasher(
                256,
                Default::default(),
            )),
            budget: std::cell::Cell::new(OWNER_SEARCH_BUDGET),
        }
    }

    /// Notes that a kept word holds `address`, outside `old`'s image.
    fn note_older(&self, address: u64) {
        for (module, pointed) in &self.older {
            let base = module.base() as u64;
            if (base..base + module.image_len() as u64).contains(&address) {
                pointed.set(true);
            }
        }
    }

    /// The versions `old` retains that kept words point into.
    fn older_pointed_into(&self) -> Vec<Arc<Module>> {
        self.older
            .iter()
            .filter(|(_, pointed)| pointed.get())
            .map(|(module, _)| Arc::clone(module))
            .collect()
    }

    /// The symbol of `old` that owns image offset `offset` ([`SymbolIndex::owner`]) and the
    /// symbol of `new` that is the same object, if one is. Neither is decoded whole: the
    /// owner's name is read, and compared with the names of the new version's symbols of the
    /// same hash.
    fn same(&self, offset: u64) -> Option<(Located, Located)> {
        let mut budget = self.budget.get();
        let owner = self.old.index.owner(offset, &mut budget);
        self.budget.set(budget);
        let owner = owner?;
        if let Some(&known) = self.same.borrow().get(&owner.index) {
            return known;
        }
        let old_symbols = self.old.module.file().symbols();
        let new_file = self.new.module.file();
        let found = old_symbols.name(owner.index).and_then(|name| {
            let target = if owner.local {
                // Only a local whose name is unique in the new version is the same object.
                // Found by the hash the old version stored for the name: the writer's, as
                // the new version's table is keyed by (a local's is never checked).
                let hash = old_symbols.stored_name_hash(owner.index)?;
                self.new
                    .locals
                    .as_ref()?
                    .local(new_file, hash, name, owner.kind)?
            } else {
                let (index, symbol) = new_file.lookup_index(name)?;
                Located {
                    index,
                    value: symbol.value,
                    size: symbol.size,
                    kind: symbol.kind,
                    local: false,
                }
            };
            Some((owner, target))
        });
        self.same.borrow_mut().insert(owner.index, found);
        found
    }

    /// The address in `new` of what image offset `offset` of `old` is.
    fn translate(&self, offset: u64) -> Option<u64> {
        let (owner, target) = self.same(offset)?;
        let delta = offset - owner.value;
        let new = self.new.module;
        // Inside a function, the same offset in the new code is some other instruction: only
        // the function's own address moves (a label or return address inside it retains the
        // old image).
        let moves = target.kind == owner.kind
            && delta < target.size.max(1)
            && (owner.kind != SymbolKind::Function || delta == 0);
        moves.then(|| new.base() as u64 + target.value + delta)
    }
}

/// Exported symbols added, removed and changed from `old` to `new`. A symbol is changed when
/// its behaviour may differ: where both versions record a fingerprint for it, when the
/// fingerprints differ; otherwise when its kind or size changed or its bytes differ other
/// than where they only locate something that moved ([`Layout::same_behaviour`]).
///
/// The two versions' exports are matched by walking both lists of name hashes in order
/// ([`SymbolIndex::exports`]), names compared only where hashes are equal; a pair whose
/// fingerprints are equal is the same function without anything more being read. Each list
/// comes out in its table's order.
pub(crate) fn diff<'a>(
    old_symbols: &Decoded<'a>,
    new_symbols: &Decoded<'a>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (old, new) = (old_symbols.module, new_symbols.module);
    let (old_file, new_file) = (old.file(), new.file());
    // Made once, on the first symbol whose bytes differ.
    let layouts = OnceCell::new();
    let changes = |a: &Symbol<'_>, b: &Symbol<'_>| {
        if a.kind != b.kind || a.size != b.size {
            return true;
        }
        let (Some(x), Some(y)) = (symbol_bytes(old, a), symbol_bytes(new, b)) else {
            return true;
        };
        let (x, y) = (&*x, &*y);
        if x == y {
            return false;
        }
        let (old_layout, new_layout) =
            layouts.get_or_init(|| (Layout::new(old_symbols), Layout::new(new_symbols)));
        !Layout::same_behaviour(old_layout, a, x, new_layout, b, y)
    };
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    // Which exports of the old version's current hash a new one matched.
    let mut matched: Vec<bool> = Vec::new();
    let lists = (old_symbols.index.exports(), new_symbols.index.exports());
    for (_, olds, news) in crate::symbol_index::by_hash(lists.0, lists.1) {
        matched.clear();
        matched.resize(olds.len(), false);
        for y in news {
            let name = new_file.symbols().name(y.index as usize);
            let found = olds.iter().enumerate().find(|&(k, x)| {
                !matched[k] && name.is_some() && old_file.symbols().name(x.index as usize) == name
            });
            let Some((k, x)) = found else {
                added.push(y.index);
                continue;
            };
            matched[k] = true;
            let differs = match (x.fingerprint, y.fingerprint) {
                // Fingerprints, where both versions record one, tell without reading either's
                // code (docs/FORMAT.md, *Function fingerprints*).
                (Some(f), Some(g)) => f != g,
                _ => match (
                    old_file.symbol(x.index as usize),
                    new_file.symbol(y.index as usize),
                ) {
                    (Some(Ok(p)), Some(Ok(q))) => changes(&p, &q),
                    _ => true,
                },
            };
            if differs {
                changed.push(y.index);
            }
        }
        for (x, _) in olds.iter().zip(&matched).filter(|(_, m)| !**m) {
            removed.push(x.index);
        }
    }
    let names = |file: &smf_format::Module<'_>, mut indices: Vec<u32>| -> Vec<String> {
        indices.sort_unstable();
        indices
            .into_iter()
            .filter_map(|k| Some(file.symbols().name(k as usize)?.to_owned()))
            .collect()
    };
    (
        names(new_file, added),
        names(old_file, removed),
        names(new_file, changed),
    )
}

/// What an image offset of one version points to, named so that the other version can be
/// compared: a symbol and the distance into it, an import's slot, or a section and the
/// distance into it.
#[derive(Debug, PartialEq, Eq)]
enum Place<'a> {
    Symbol(&'a str, u64),
    Import(&'a str, i64),
    Section(&'a str, u64),
}

/// One version's symbols by address, and the words that load-time relocations write.
struct Layout<'d, 'a> {
    file: &'a smf_format::Module<'a>,
    /// The version's symbols by address.
    symbols: &'d Decoded<'a>,
    /// Image offsets of the words `relative64` relocations rebase, in order.
    relative: Vec<u64>,
    /// Image offset of each word an import's address is written to, with the import's name
    /// and addend, in order of offset (for a word written twice, the relocation applied
    /// last is the later one).
    imports: Vec<(u64, &'a str, i64)>,
}

impl<'d, 'a> Layout<'d, 'a> {
    fn new(symbols: &'d Decoded<'a>) -> Self {
        let file = symbols.module.file();
        let mut relative: Vec<u64> = file.relative_relocations().iter().collect();
        relative.sort_unstable();
        let mut imports: Vec<(u64, &str, i64)> = file
            .relocations()
            .iter()
            .filter_map(|r| {
                let import = file.imports().get(r.import? as usize)?;
                Some((r.offset, import.name, r.addend))
            })
            .collect();
        imports.sort_by_key(|&(offset, _, _)| offset);
        Layout {
            file,
            symbols,
            relative,
            imports,
        }
    }

    /// What image offset `target` points to.
    fn place(&self, target: u64) -> Option<Place<'a>> {
        let after = self
            .imports
            .partition_point(|&(offset, _, _)| offset <= target);
        if let Some(&(offset, name, addend)) =
            after.checked_sub(1).and_then(|i| self.imports.get(i))
            && offset == target
        {
            return Some(Place::Import(name, addend));
        }
        if let Some((start, index)) = self.symbols.sized_at(target) {
            let name = self.file.symbol(index)?.ok()?.name;
            return Some(Place::Symbol(name, target - start));
        }
        let section = self.file.section_at(target)?;
        Some(Place::Section(section.name, target - section.vaddr))
    }

    /// Whether `x`, the bytes of `a` in `old`, and `y`, those of `b` in `new` (different),
    /// behave alike: every byte that differs lies in a field that in
    /// both versions locates the same place.
    ///
    /// - In data, such a field is an 8-byte word that a `relative64` relocation rebases in
    ///   both versions (the packer stores its target there), the same symbol and offset in
    ///   each.
    /// - In code, it is a PC-relative field of an instruction whose targets are the same
    ///   place in both versions: the packer resolves the module's own PC-relative
    ///   references, so code that only moved, or whose callees or data moved, differs only
    ///   there. Which fields those are is the architecture's reading
    ///   ([`arch::code::reference_field`]); a difference elsewhere, or a field that names
    ///   different places, counts as a change.
    fn same_behaviour(
        old: &Layout<'_, '_>,
        a: &Symbol<'_>,
        x: &[u8],
        new: &Layout<'_, '_>,
        b: &Symbol<'_>,
        y: &[u8],
    ) -> bool {
        let arch = old.file.header().arch;
        let code = a.kind == SymbolKind::Function && new.file.header().arch == arch;
        if x.len() != y.len() {
            // File bytes in one version, none (bss) in the other.
            return false;
        }
        let same = |tx: u64, ty: u64| old.place(tx).is_some_and(|p| new.place(ty) == Some(p));
        // `i` is the next byte to compare, `from` the end of the last field taken.
        let (mut i, mut from) = (0, 0);
        while i < x.len() {
            if x[i] == y[i] {
                i += 1;
                continue;
            }
            let field = if code {
                arch::code::reference_field(arch, x, a.value, y, b.value, i, from, &same)
            } else {
                Self::pointer_field(old, a.value, x, new, b.value, y, i)
            };
            match field {
                Some(end) => (i, from) = (end, end),
                None => return false,
            }
        }
        true
    }

    /// The end of an 8-byte word covering byte `i` that a `relative64` relocation rebases in
    /// both versions and whose targets are the same place.
    fn pointer_field(
        old: &Layout<'_, '_>,
        x_at: u64,
        x: &[u8],
        new: &Layout<'_, '_>,
        y_at: u64,
        y: &[u8],
        i: usize,
    ) -> Option<usize> {
        let word = |layout: &Layout<'_, '_>, at: u64, bytes: &[u8]| {
            let first = (at + i as u64).saturating_sub(7);
            let start = layout.relative.partition_point(|&o| o < first);
            let &offset = layout.relative.get(start)?;
            let p = usize::try_from(offset.checked_sub(at)?).ok()?;
            let value = u64::from_le_bytes(bytes.get(p..p + 8)?.try_into().ok()?);
            (p <= i).then_some((p, value))
        };
        let (px, vx) = word(old, x_at, x)?;
        let (py, vy) = word(new, y_at, y)?;
        (px == py && old.place(vx)? == new.place(vy)?).then_some(px + 8)
    }
}

/// The file bytes of a symbol (empty for bss or symbols outside sections), decompressed
/// from a compressed payload (`None` if that fails, which the reader's checks rule out).
fn symbol_bytes<'a>(module: &'a Module, symbol: &Symbol<'_>) -> Option<Cow<'a, [u8]>> {
    let file = module.file();
    let Some(section) = symbol.section.and_then(|i| file.sections().get(i as usize)) else {
        return Some(Cow::Borrowed(&[]));
    };
    let start = (symbol.value - section.vaddr) as usize;
    let range = start..start + symbol.size as usize;
    if !section.is_compressed() {
        // A module whose payloads were read into its image keeps them there, or copied
        // beside it for the sections the image writes.
        let data = module.image().file_payload(section).unwrap_or(section.data);
        return Some(Cow::Borrowed(data.get(range).unwrap_or(&[])));
    }
    let payload = section.payload().ok()?;
    Some(Cow::Owned(payload.get(range).unwrap_or(&[]).to_vec()))
}

/// Calls the exported `void name(void)` of `module`, if it has one.
pub(crate) fn run_hook(module: &Module, name: &str) {
    // SAFETY: the hook names are reserved for `void (void)` functions by docs/RELOAD.md.
    if let Ok(hook) = unsafe { module.get::<extern "C" fn()>(name) } {
        hook();
    }
}
