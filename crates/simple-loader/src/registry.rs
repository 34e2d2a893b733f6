//! The registry: loaded modules by canonical path (or, loaded from memory, by name), linked
//! against each other and the host, and replaced in place by reloads.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use smf_format::typeinfo::{Match, OwnedType, TypeInfo, compare};
use smf_format::{Import, ImportKind, Symbol, SymbolKind, Version, VersionReq, fnv1a32};

use crate::error::LoadError;
use crate::handles::{Current, Pinned};
use crate::loader::{
    LoadOptions, Resolution, TypeChanges, load_hashed_bytes, load_path, load_path_if_changed,
};
use crate::module::Module;
use crate::reclaim::{PinGuard, Reclaimer};
use crate::reload::{
    AFTER_RELOAD_HOOK, BEFORE_RELOAD_HOOK, Decoded, ReloadReport, carry_state, diff, run_hook,
};
use crate::slots::{Slot, SlotTable};
use crate::symbol_index::{Export, SymbolIndex};

/// Loaded modules, in load order, and the symbols the host defines for them.
///
/// All operations take one lock for their whole duration: two threads loading the same file
/// get the same module, loaded once, and resolution never sees a half-updated registry. The
/// lock is held while a module's constructors and reload hooks run, so those must not call
/// back into the same registry. Destructors of modules the registry lets go run after the
/// lock is released, on the thread of the operation (see `docs/RELOAD.md`, ownership).
#[derive(Debug, Default)]
pub struct Registry {
    options: LoadOptions,
    state: Mutex<State>,
    slots: Slots,
    reclaimer: Reclaimer,
}

#[derive(Debug, Default)]
struct State {
    /// In load order, which is also ascending `id` order; a reloaded module keeps its place.
    modules: Vec<Entry>,
    /// Entry ids by canonical path.
    by_path: HashMap<PathBuf, u64>,
    /// Entry ids of modules loaded from memory, by the name they were loaded under.
    by_name: HashMap<String, u64>,
    /// Host definitions by the FNV-1a hash of their names, like the export index: a lookup
    /// hashes the name once for both.
    host: ByHash<Vec<(Box<str>, usize)>>,
    /// Every exported name of every entry, so that resolution costs the same with a thousand
    /// modules as with one.
    exports: ExportIndex,
    next_id: u64,
}

impl State {
    /// Position in `modules` of the entry `id` (ids ascend along `modules`).
    fn position(&self, id: u64) -> Option<usize> {
        // Ids are given out in load order, one apart, so without unloads entry `id` is at
        // `id - first id`; after unloads it is found by bisection.
        let first = self.modules.first()?.id;
        let guess = usize::try_from(id.checked_sub(first)?).ok()?;
        if self.modules.get(guess).is_some_and(|e| e.id == id) {
            return Some(guess);
        }
        self.modules.binary_search_by_key(&id, |e| e.id).ok()
    }

    fn position_of_path(&self, path: &Path) -> Option<usize> {
        self.by_path.get(path).and_then(|&id| self.position(id))
    }

    fn position_of_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).and_then(|&id| self.position(id))
    }

    /// The host's definition of `name`, whose FNV-1a hash is `hash`.
    fn host_definition(&self, name: &str, hash: u32) -> Option<usize> {
        let same_hash = self.host.get(&hash)?;
        same_hash
            .iter()
            .find_map(|(defined, address)| (**defined == *name).then_some(*address))
    }

    /// The first entry in load order, not in `skip`, that exports `name` (whose FNV-1a hash
    /// is `hash`), and the symbol.
    fn find_export(
        &self,
        name: &str,
        hash: u32,
        skip: &[u64],
        only: Option<&[u64]>,
    ) -> Option<(&Entry, Symbol<'_>)> {
        self.exports
            .providers(hash)
            .iter()
            .find_map(|&(id, index)| {
                if skip.contains(&id) || only.is_some_and(|only| !only.contains(&id)) {
                    return None;
                }
                let entry = &self.modules[self.position(id)?];
                // Names that share a hash share a list: the names themselves are compared.
                let symbol = entry
                    .module
                    .file()
                    .exported_named(index as usize, name, hash)?;
                Some((entry, symbol))
            })
    }
}

/// Exported names of a registry's modules, keyed by their FNV-1a hash (what the files' own
/// hash tables use), each with the entries exporting a name of that hash, in load order, and
/// the symbol's index in the entry's symbol table. Nothing is copied from the modules: a
/// lookup hashes the name once and compares it with the candidates' names.
#[derive(Debug, Default)]
struct ExportIndex {
    by_hash: ByHash<Providers>,
}

/// (entry id, symbol index) pairs in ascending id order; almost always just one.
#[derive(Debug)]
enum Providers {
    One([(u64, u32); 1]),
    Many(Vec<(u64, u32)>),
}

impl Providers {
    fn as_slice(&self) -> &[(u64, u32)] {
        match self {
            Providers::One(one) => one,
            Providers::Many(many) => many,
        }
    }

    fn insert(&mut self, provider: (u64, u32)) {
        let mut many = match self {
            Providers::One([one]) => vec![*one],
            Providers::Many(many) => std::mem::take(many),
        };
        // Usually at the end (a new entry has the largest id); a reloaded entry keeps its
        // place in load order.
        let at = many.partition_point(|&(id, _)| id <= provider.0);
        many.insert(at, provider);
        *self = Providers::Many(many);
    }

    /// Removes entry `id`; returns whether nothing is left.
    fn remove(&mut self, id: u64) -> bool {
        match self {
            Providers::One([(one, _)]) => *one == id,
            Providers::Many(many) => {
                many.retain(|&(owner, _)| owner != id);
                many.is_empty()
            }
        }
    }
}

impl ExportIndex {
    /// The entries exporting a name whose FNV-1a hash is `hash`.
    fn providers(&self, hash: u32) -> &[(u64, u32)] {
        self.by_hash.get(&hash).map_or(&[], Providers::as_slice)
    }

    fn add(&mut self, id: u64, module: &Module) {
        for (index, hash) in module.file().symbols().exported_hashes() {
            // The reader bounds the symbol count (`Limits::max_symbols`) far below u32::MAX.
            self.add_hash((id, index as u32), hash);
        }
    }

    fn remove(&mut self, id: u64, module: &Module) {
        for (_, hash) in module.file().symbols().exported_hashes() {
            self.remove_hash(id, hash);
        }
    }

    fn remove_hash(&mut self, id: u64, hash: u32) {
        if self.by_hash.get_mut(&hash).is_some_and(|p| p.remove(id)) {
            self.by_hash.remove(&hash);
        }
    }

    fn add_hash(&mut self, provider: (u64, u32), hash: u32) {
        self.by_hash
            .entry(hash)
            .and_modify(|providers| providers.insert(provider))
            .or_insert(Providers::One([provider]));
    }

    /// [`ExportIndex::remove`] of `old` then [`ExportIndex::add`] of `new` for entry `id`, as
    /// a reload does: a name hash both versions export once keeps its place in the index
    /// and only its symbol index changes, so that a reload that keeps its exports' names
    /// neither removes nor inserts anything. Walks the two versions' export lists, which
    /// each version's [`SymbolIndex`] keeps sorted by hash.
    fn replace(&mut self, id: u64, old: &[Export], new: &[Export]) {
        for (hash, olds, news) in crate::symbol_index::by_hash(old, new) {
            let updated = match (olds, news) {
                ([_], [y]) => {
                    self.by_hash
                        .get_mut(&hash)
                        .is_some_and(|providers| match providers {
                            Providers::One([(owner, index)]) if *owner == id => {
                                *index = y.index;
                                true
                            }
                            Providers::One(_) => false,
                            Providers::Many(many) => {
                                let mut mine = many.iter_mut().filter(|(owner, _)| *owner == id);
                                match (mine.next(), mine.next()) {
                                    (Some((_, index)), None) => {
                                        *index = y.index;
                                        true
                                    }
                                    _ => false,
                                }
                            }
                        })
                }
                _ => false,
            };
            if !updated {
                if !olds.is_empty() {
                    self.remove_hash(id, hash);
                }
                for y in news {
                    self.add_hash((id, y.index), hash);
                }
            }
        }
    }
}

/// The hasher of the export index, whose keys are already FNV-1a hashes: a multiplication
/// spreads them over the 64 bits the table uses (it takes its control bits from the top).
#[derive(Debug, Default)]
struct MixHasher(u64);

/// A map keyed by FNV-1a name hashes.
type ByHash<V> = HashMap<u32, V, BuildHasherDefault<MixHasher>>;

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug)]
struct Entry {
    /// Identifies the entry across reloads (its slots are keyed by it).
    id: u64,
    /// The canonical path, or for a module loaded from memory the name it was loaded under.
    path: PathBuf,
    /// Loaded from memory: `path` is a name, and reloads bring their bytes.
    in_memory: bool,
    module: Arc<Module>,
    version: u32,
    /// The modules chosen for the dependencies of the module's version table, with their
    /// entry ids.
    dependencies: Vec<(u64, ChosenDependency)>,
    /// The running version's symbols as the reload that made it arranged them, for the
    /// reload that replaces it; `None` until a reload made a version.
    symbols: Option<SymbolIndex>,
}

/// A module dependency of a module's version table (`smf pack --needed name@RANGE`), and
/// the loaded module the registry chose for it: of the loaded modules of that name, the one
/// of the highest version in the range. Imports of the dependent resolve against the chosen
/// modules first, then as usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenDependency {
    /// The module name the dependency names.
    pub name: String,
    /// The range it requires.
    pub required: VersionReq,
    /// The chosen module's canonical path, or the name it was loaded from memory under.
    pub path: PathBuf,
    /// The chosen module's version.
    pub version: Version,
}

impl std::fmt::Display for ChosenDependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: chose {} ({})",
            self.name,
            self.required,
            self.version,
            self.path.display()
        )
    }
}

/// The name by which a module meets dependencies: the one its version table gives, or its
/// file name (or the name it was loaded from memory under) up to the first `.`.
fn module_name(entry: &Entry) -> String {
    if let Some(name) = entry.module.file().versions().and_then(|t| t.name()) {
        return name.to_owned();
    }
    let file = entry.path.file_name().map_or_else(
        || entry.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    file.split('.').next().unwrap_or_default().to_owned()
}

/// Chooses a loaded module (not in `skip`) for each dependency of `parsed`'s version table.
fn choose_dependencies(
    state: &State,
    parsed: &smf_format::Module<'_>,
    module: &str,
    skip: &[u64],
) -> Result<Vec<(u64, ChosenDependency)>, LoadError> {
    let Some(table) = parsed.versions() else {
        return Ok(Vec::new());
    };
    let mut chosen = Vec::new();
    for dependency in table.dependencies() {
        let candidates: Vec<(&Entry, Option<Version>)> = state
            .modules
            .iter()
            .filter(|e| !skip.contains(&e.id) && module_name(e) == dependency.name)
            .map(|e| (e, e.module.file().module_version()))
            .collect();
        // The highest version in the range; the first loaded among equals.
        let best = candidates
            .iter()
            .filter_map(|&(e, v)| v.filter(|v| dependency.req.matches(v)).map(|v| (e, v)))
            .fold(None, |best: Option<(&Entry, Version)>, (e, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((e, v)),
            });
        let Some((entry, version)) = best else {
            return Err(LoadError::DependencyVersion {
                module: module.to_owned(),
                dependency: dependency.name.to_owned(),
                required: dependency.req.to_string(),
                found: candidates
                    .iter()
                    .map(|(e, v)| {
                        let v = v.map_or_else(|| "unversioned".to_owned(), |v| v.to_string());
                        format!("{v} ({})", e.path.display())
                    })
                    .collect(),
            });
        };
        chosen.push((
            entry.id,
            ChosenDependency {
                name: dependency.name.to_owned(),
                required: dependency.req,
                path: entry.path.clone(),
                version,
            },
        ));
    }
    Ok(chosen)
}

/// What a reload may change (see [`Registry::reload_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOptions {
    /// Allow a new version whose major version differs from the running one's, or that is
    /// outside the range a dependent module required, while other modules or handles are
    /// linked to it.
    pub allow_version_change: bool,
}

impl ReloadOptions {
    /// These options with [`ReloadOptions::allow_version_change`] set to `allow`.
    #[must_use]
    pub const fn with_allow_version_change(mut self, allow: bool) -> Self {
        self.allow_version_change = allow;
        self
    }
}

/// The indirection slots of a registry's reloadable modules, by (entry, function name).
///
/// The registry holds the slots of a loaded entry; unloading the entry lets them go, and each
/// slot lives on only as long as something else (an importing module, a `Current` handle)
/// holds it.
#[derive(Debug, Default)]
struct Slots {
    /// The trampoline and cell pages, shared by every slot.
    table: Arc<SlotTable>,
    /// By entry id, then function name.
    by_entry: Mutex<HashMap<u64, HashMap<String, Arc<Slot>>>>,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, HashMap<String, Arc<Slot>>>> {
        self.by_entry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of function `name` of entry `id`, made if needed, pointing at `address` in
    /// `module` (the entry's current version), whose symbol has type id `type_id`.
    fn slot_for(
        &self,
        id: u64,
        name: &str,
        module: &Arc<Module>,
        address: usize,
        type_id: u32,
    ) -> Result<Arc<Slot>, String> {
        let types = module.file().types();
        let linked_type = types
            .get(type_id)
            .map(|_| OwnedType::copy_of(types, type_id));
        let mut by_entry = self.lock();
        let of_entry = by_entry.entry(id).or_default();
        if let Some(slot) = of_entry.get(name) {
            return Ok(Arc::clone(slot));
        }
        let slot = self
            .table
            .allocate(Some(Arc::clone(module)), address, linked_type)
            .map_err(|e| format!("cannot allocate an indirection slot: {e}"))?;
        let slot = Arc::new(slot);
        of_entry.insert(name.to_owned(), Arc::clone(&slot));
        Ok(slot)
    }

    /// The slots of entry `id`: function name and slot.
    fn of(&self, id: u64) -> Vec<(String, Arc<Slot>)> {
        self.lock().get(&id).map_or_else(Vec::new, |of_entry| {
            of_entry
                .iter()
                .map(|(name, slot)| (name.clone(), Arc::clone(slot)))
                .collect()
        })
    }

    /// Lets go of the slots of entry `id`, returning them so that the caller drops them
    /// outside the registry's lock.
    fn remove(&self, id: u64) -> Option<HashMap<String, Arc<Slot>>> {
        self.lock().remove(&id)
    }
}

/// One module of the registry, as [`Registry::modules`] lists it.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    /// The canonical path, or the name a module loaded from memory was loaded under.
    pub path: PathBuf,
    pub module: Arc<Module>,
    /// 1 at first load, one more at each reload that changed something.
    pub version: u32,
    /// The module's version (from its version table), if it has one.
    pub module_version: Option<Version>,
    /// The modules chosen for its module dependencies, in the order its table lists them.
    pub dependencies: Vec<ChosenDependency>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn with_options(options: LoadOptions) -> Registry {
        Registry {
            options,
            ..Registry::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (in this crate, only a bug) leaves the state as it
        // was before the failed operation: every mutation is a single push, remove or swap.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Defines `name` for modules loaded from now on; host definitions win over every other
    /// source. Replaces an earlier definition of the same name.
    ///
    /// # Safety
    /// `address` must stay valid, as the kind of object modules importing `name` expect, for
    /// as long as any module loaded afterwards is alive.
    pub unsafe fn define(&self, name: &str, address: usize) {
        let mut state = self.lock();
        let same_hash = state.host.entry(fnv1a32(name.as_bytes())).or_default();
        match same_hash.iter_mut().find(|(defined, _)| **defined == *name) {
            Some((_, old)) => *old = address,
            None => same_hash.push((name.into(), address)),
        }
    }

    /// Loads the module at `path`, or returns the one already loaded from the same canonical
    /// path.
    ///
    /// # Safety
    /// As for [`load`](crate::load): the module's constructors run, and a mapped module file
    /// must not be modified in place while the module is loaded.
    pub unsafe fn load(&self, path: &Path) -> Result<Arc<Module>, LoadError> {
        {
            // A path as the registry keeps it is found without asking the file system.
            let state = self.lock();
            if let Some(index) = state.position_of_path(path) {
                return Ok(Arc::clone(&state.modules[index].module));
            }
        }
        let canonical = canonical(path)?;
        let mut state = self.lock();
        if let Some(index) = state.position_of_path(&canonical) {
            return Ok(Arc::clone(&state.modules[index].module));
        }
        let (module, dependencies) = self.link(&state, None, &canonical, false, &[], None)?;
        let module = Arc::new(module);
        let id = state.next_id;
        state.next_id += 1;
        state.exports.add(id, &module);
        state.by_path.insert(canonical.clone(), id);
        state.modules.push(Entry {
            id,
            path: canonical,
            in_memory: false,
            module: Arc::clone(&module),
            version: 1,
            dependencies,
            symbols: None,
        });
        Ok(module)
    }

    /// Loads a module from `bytes` (as a compiler emits it, no file involved) under `name`,
    /// with everything a module loaded from a file has: its imports resolved against the
    /// registry, its exports visible to modules loaded after it, and if it is reloadable,
    /// [`Registry::reload_bytes`], [`Registry::current_named`] handles and slots. Names are
    /// their own namespace, apart from file paths.
    ///
    /// If a module with the same module hash is loaded under `name` already, returns it;
    /// a different one is [`LoadError::NameTaken`].
    ///
    /// # Safety
    /// As for [`load`](crate::load): the module's constructors run.
    pub unsafe fn load_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<Arc<Module>, LoadError> {
        let mut state = self.lock();
        if let Some(index) = state.position_of_name(name) {
            let module = &state.modules[index].module;
            let hash = smf_format::compute_module_hash(&bytes).ok();
            if hash.is_some_and(|hash| hash == module.module_hash()) {
                return Ok(Arc::clone(module));
            }
            return Err(LoadError::NameTaken {
                name: name.to_owned(),
            });
        }
        let path = PathBuf::from(name);
        let (module, dependencies) = self.link(&state, Some(bytes), &path, true, &[], None)?;
        let module = Arc::new(module);
        let id = state.next_id;
        state.next_id += 1;
        state.exports.add(id, &module);
        state.by_name.insert(name.to_owned(), id);
        state.modules.push(Entry {
            id,
            path,
            in_memory: true,
            module: Arc::clone(&module),
            version: 1,
            dependencies,
            symbols: None,
        });
        Ok(module)
    }

    /// Loads a module from `bytes` (read from `path`), or, without them, from the file at
    /// `path` (mapped, see `LoadOptions::map_file`), resolving imports against the registry
    /// except the entries in `skip` (those being replaced), and preferring the modules
    /// chosen for its dependencies, which it returns.
    /// `in_memory`: the bytes came from no file, and `path` is the module's name.
    fn link(
        &self,
        state: &State,
        bytes: Option<Vec<u8>>,
        path: &Path,
        in_memory: bool,
        skip: &[u64],
        hash: Option<[u8; 32]>,
    ) -> Result<(Module, Vec<(u64, ChosenDependency)>), LoadError> {
        let chosen = std::cell::RefCell::new(Vec::new());
        let prepare = |parsed: &smf_format::Module<'_>| {
            let name = path.display().to_string();
            *chosen.borrow_mut() = choose_dependencies(state, parsed, &name, skip)?;
            Ok(())
        };
        let resolver = |import: &Import<'_>, types: &TypeInfo<'_>| {
            let preferred: Vec<u64> = chosen.borrow().iter().map(|(id, _)| *id).collect();
            resolve(state, &self.slots, import, types, skip, &preferred)
        };
        let module = match bytes {
            None => load_path(path, &self.options, &resolver, &prepare)?,
            Some(bytes) => load_hashed_bytes(
                bytes,
                hash,
                path.display().to_string(),
                (!in_memory).then(|| path.to_owned()),
                &self.options,
                &resolver,
                &prepare,
            )?,
        };
        Ok((module, chosen.into_inner()))
    }

    /// Replaces the module loaded from `path` by the file's current content. See
    /// [`Registry::reload_all`].
    ///
    /// # Safety
    /// As for [`Registry::reload_all`].
    pub unsafe fn reload(&self, path: &Path) -> Result<ReloadReport, LoadError> {
        // SAFETY: the caller's contract.
        let mut reports = unsafe { self.reload_with(&[path], ReloadOptions::default())? };
        reports.pop().ok_or_else(|| LoadError::NotLoaded {
            path: path.to_owned(),
        })
    }

    /// Replaces several modules in one transaction.
    ///
    /// Every new version is loaded and linked, and checked against the modules and handles
    /// linked to the old one, before anything switches; if any step fails for any module,
    /// nothing switches and the old versions keep running. Then, for each module: the old
    /// version's `smf_before_reload` hook runs, its state is carried over, the slots are
    /// retargeted (callers reach the new code from their next call), and the new version's
    /// `smf_after_reload` hook runs. The old version is freed once no pinned handle refers to
    /// it and no pinned thread can still be running it.
    ///
    /// The transaction covers the errors the loader can see. Code of the new version runs
    /// before the switch (its constructors): if it ends the process (`exit`, `abort`, a
    /// crash), the process ends; it is not undone.
    ///
    /// # Safety
    /// As for [`load`](crate::load): the new versions' constructors and reload hooks run.
    pub unsafe fn reload_all(&self, paths: &[&Path]) -> Result<Vec<ReloadReport>, LoadError> {
        // SAFETY: the caller's contract.
        unsafe { self.reload_with(paths, ReloadOptions::default()) }
    }

    /// [`Registry::reload_all`] with `options`. By default a reload is refused when the new
    /// version of a module has another major version than the running one while other
    /// modules or handles are linked to it, or is outside the range a module that chose it
    /// for a dependency requires; [`ReloadOptions::allow_version_change`] lets it through.
    ///
    /// # Safety
    /// As for [`Registry::reload_all`].
    pub unsafe fn reload_with(
        &self,
        paths: &[&Path],
        options: ReloadOptions,
    ) -> Result<Vec<ReloadReport>, LoadError> {
        let started = Instant::now();
        let state = self.lock();
        let mut indices = Vec::with_capacity(paths.len());
        for path in paths {
            // A path as the registry keeps it (canonical, as `Module::path` gives it) is found
            // without asking the file system; another is made canonical first.
            let index = match state.position_of_path(path) {
                Some(index) => index,
                None => {
                    let canonical = canonical(path)?;
                    state
                        .position_of_path(&canonical)
                        .ok_or(LoadError::NotLoaded { path: canonical })?
                }
            };
            if !state.modules[index].module.is_reloadable() {
                return Err(LoadError::NotReloadable {
                    module: state.modules[index].path.display().to_string(),
                });
            }
            indices.push((index, None));
        }
        self.replace(started, state, indices, options)
    }

    /// Replaces the module loaded from memory under `name` by the module in `bytes`, as
    /// [`Registry::reload`] replaces a file's: the same transaction, state carried over by
    /// name, size and type, slots retargeted, the old version freed once nothing can run it.
    ///
    /// # Safety
    /// As for [`Registry::reload_all`].
    pub unsafe fn reload_bytes(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<ReloadReport, LoadError> {
        // SAFETY: the caller's contract.
        unsafe { self.reload_bytes_with(name, bytes, ReloadOptions::default()) }
    }

    /// [`Registry::reload_bytes`] with `options` (see [`Registry::reload_with`]).
    ///
    /// # Safety
    /// As for [`Registry::reload_all`].
    pub unsafe fn reload_bytes_with(
        &self,
        name: &str,
        bytes: Vec<u8>,
        options: ReloadOptions,
    ) -> Result<ReloadReport, LoadError> {
        let started = Instant::now();
        let state = self.lock();
        let index = state
            .position_of_name(name)
            .ok_or_else(|| LoadError::NameNotLoaded {
                name: name.to_owned(),
            })?;
        if !state.modules[index].module.is_reloadable() {
            return Err(LoadError::NotReloadable {
                module: name.to_owned(),
            });
        }
        let mut reports = self.replace(started, state, vec![(index, Some(bytes))], options)?;
        reports.pop().ok_or_else(|| LoadError::NameNotLoaded {
            name: name.to_owned(),
        })
    }

    /// The transaction of [`Registry::reload_all`] for the entries at the given indices,
    /// each with its new bytes, or `None` to read them from the entry's file.
    fn replace(
        &self,
        started: Instant,
        state: MutexGuard<'_, State>,
        indices: Vec<(usize, Option<Vec<u8>>)>,
        options: ReloadOptions,
    ) -> Result<Vec<ReloadReport>, LoadError> {
        // Prepare: load every new version; nothing is visible to callers yet. A failure drops
        // the versions prepared so far, running their destructors once the lock is released,
        // and changes nothing else.
        let mut prepared: Vec<(usize, Option<(Module, Vec<(u64, ChosenDependency)>)>)> =
            Vec::with_capacity(indices.len());
        if let Err(error) = self.prepare(&state, indices, &mut prepared, options) {
            drop(state);
            drop(prepared);
            return Err(error);
        }

        // Commit.
        let mut reports = Vec::with_capacity(prepared.len());
        let mut guard = state;
        let state = &mut *guard;
        for (index, new) in prepared {
            let entry = &mut state.modules[index];
            let Some(new) = new else {
                let module_version = entry.module.file().module_version();
                reports.push(ReloadReport {
                    path: entry.path.clone(),
                    version: entry.version,
                    module_version,
                    previous_module_version: module_version,
                    unchanged: true,
                    added: vec![],
                    removed: vec![],
                    changed: vec![],
                    kept: vec![],
                    reset: vec![],
                    type_changes: vec![],
                    retains_old: false,
                    duration: started.elapsed(),
                    module: Arc::clone(&entry.module),
                });
                continue;
            };
            let (new, dependencies) = new;
            entry.dependencies = dependencies;
            let old = Arc::clone(&entry.module);
            run_hook(&old, BEFORE_RELOAD_HOOK);
            let old_version = old.file().module_version();
            // Each version's symbols are arranged once in its life, for both uses: the old
            // one's by the reload that made it (a version a load made is arranged now), the
            // new one's here, with its locals by name, which only this reload looks up.
            let old_index = entry
                .symbols
                .take()
                .unwrap_or_else(|| SymbolIndex::new(old.file()));
            let (new_index, locals) = SymbolIndex::with_locals(new.file());
            let (carried, (added, removed, changed)) = {
                let old_symbols = Decoded::old(&old, &old_index);
                let new_symbols = Decoded::new(&new, &new_index, locals);
                (
                    carry_state(&old_symbols, &new_symbols),
                    diff(&old_symbols, &new_symbols),
                )
            };
            let retains = carried.retains_old || !carried.older.is_empty();
            if carried.retains_old {
                new.retain(Arc::clone(&old));
            }
            for older in carried.older {
                new.retain(older);
            }
            let new = Arc::new(new);
            state
                .exports
                .replace(entry.id, old_index.exports(), new_index.exports());
            entry.symbols = Some(new_index);
            entry.module = Arc::clone(&new);
            entry.version += 1;
            let mut type_changes = Vec::new();
            for (name, slot) in self.slots.of(entry.id) {
                // Let through by `TypeChanges::Report`: callers are linked to the new type now.
                if let Some(change) = type_change(&slot, &new, &name) {
                    slot.set_linked_type(new.type_of(&name));
                    type_changes.push((name.clone(), change));
                }
                // check_dependents made sure every slot's function exists in the new version.
                // The slot's reference to the old version can go at once: the registry's,
                // retired below, keeps it for the threads still running it.
                if let Some((_, address)) = new.export(&name) {
                    drop(slot.retarget(Arc::clone(&new), address));
                }
            }
            let duration = started.elapsed();
            run_hook(&new, AFTER_RELOAD_HOOK);
            // Threads that entered the old version through a slot before the retarget are
            // pinned; the registry's reference goes once they all have left.
            self.reclaimer.retire(old);
            reports.push(ReloadReport {
                path: entry.path.clone(),
                version: entry.version,
                module_version: new.file().module_version(),
                previous_module_version: old_version,
                unchanged: false,
                added,
                removed,
                changed,
                kept: carried.kept,
                reset: carried.reset,
                type_changes,
                retains_old: retains,
                duration,
                module: new,
            });
        }
        drop(guard);
        self.reclaimer.collect();
        Ok(reports)
    }

    /// Loads the new version of each entry at `indices` into `prepared` (`None` where the file
    /// is the running version's), checked against what is linked to the old one. Each new
    /// version resolves its imports against the registry as it is, minus its own entry: a
    /// function of another module of the transaction binds to that module's slot, which the
    /// commit retargets to its new version.
    fn prepare(
        &self,
        state: &State,
        indices: Vec<(usize, Option<Vec<u8>>)>,
        prepared: &mut Vec<(usize, Option<(Module, Vec<(u64, ChosenDependency)>)>)>,
        options: ReloadOptions,
    ) -> Result<(), LoadError> {
        for (index, bytes) in indices {
            let entry = &state.modules[index];
            let running = entry.module.module_hash();
            let Some(bytes) = bytes else {
                // A file: mapped or read as a load does, and compared with the running
                // version by its module hash before anything else is done with it.
                let skip = [entry.id];
                let chosen = std::cell::RefCell::new(Vec::new());
                let prepare = |parsed: &smf_format::Module<'_>| {
                    let name = entry.path.display().to_string();
                    *chosen.borrow_mut() = choose_dependencies(state, parsed, &name, &skip)?;
                    Ok(())
                };
                let resolver = |import: &Import<'_>, types: &TypeInfo<'_>| {
                    let preferred: Vec<u64> = chosen.borrow().iter().map(|(id, _)| *id).collect();
                    resolve(state, &self.slots, import, types, &skip, &preferred)
                };
                let new = load_path_if_changed(
                    &entry.path,
                    &self.options,
                    &resolver,
                    &prepare,
                    Some(running),
                )?;
                prepared.push((index, new.map(|new| (new, chosen.take()))));
                if let Some((_, Some((new, _)))) = prepared.last() {
                    self.check_dependents(entry, new)?;
                    if !options.allow_version_change {
                        self.check_version_change(state, entry, new)?;
                    }
                }
                continue;
            };
            // With the hash check on, one hash of the new bytes says whether anything changed
            // and, in the load, whether they match the hash stored in them; the load need not
            // hash again. With it off, the hash stored in the new bytes' header says whether
            // they are the running version, and nothing is hashed (a signature check still
            // hashes what it vouches for).
            let hash = if self.options.verify_hash {
                smf_format::compute_module_hash(&bytes).ok()
            } else {
                None
            };
            let same = match hash {
                Some(hash) => hash == running,
                None => stored_module_hash(&bytes) == Some(running),
            };
            if same {
                prepared.push((index, None));
                continue;
            }
            let new = self.link(
                state,
                Some(bytes),
                &entry.path,
                entry.in_memory,
                &[entry.id],
                hash,
            )?;
            // Kept in `prepared` even if refused, so that it is dropped outside the lock.
            prepared.push((index, Some(new)));
            if let Some((_, Some((new, _)))) = prepared.last() {
                self.check_dependents(entry, new)?;
                if !options.allow_version_change {
                    self.check_version_change(state, entry, new)?;
                }
            }
        }
        Ok(())
    }

    /// Every function that callers were linked to through `entry`'s slots must exist in `new`
    /// as a function, of the same type where both versions record one (unless the options
    /// say to report type changes, which [`type_changes`] lists).
    fn check_dependents(&self, entry: &Entry, new: &Module) -> Result<(), LoadError> {
        let module = entry.path.display().to_string();
        for (name, slot) in self.slots.of(entry.id) {
            let problem = match new.export(&name) {
                None => "the new version no longer exports it".to_owned(),
                Some((symbol, _)) if symbol.kind != SymbolKind::Function => {
                    format!("the new version exports it as a {} symbol", symbol.kind)
                }
                Some(_) => match type_change(&slot, new, &name) {
                    Some(change) if self.options.type_changes == TypeChanges::Refuse => change,
                    _ => continue,
                },
            };
            return Err(LoadError::DependentBroken {
                module,
                name,
                problem,
            });
        }
        Ok(())
    }

    /// A new version must stay in the range of every module that chose `entry` for a
    /// dependency, and keep the major version while anything is linked to it (modules
    /// importing its functions or data, `Current` handles, dependents).
    fn check_version_change(
        &self,
        state: &State,
        entry: &Entry,
        new: &Module,
    ) -> Result<(), LoadError> {
        let module = entry.path.display().to_string();
        let (old, new) = (
            entry.module.file().module_version(),
            new.file().module_version(),
        );
        let dependents: Vec<&Entry> = state
            .modules
            .iter()
            .filter(|e| e.dependencies.iter().any(|(id, _)| *id == entry.id))
            .collect();
        for dependent in &dependents {
            for (_, chosen) in dependent
                .dependencies
                .iter()
                .filter(|(id, _)| *id == entry.id)
            {
                if !new.is_some_and(|v| chosen.required.matches(&v)) {
                    let new = new.map_or_else(|| "no version".to_owned(), |v| v.to_string());
                    return Err(LoadError::VersionChange {
                        module,
                        problem: format!(
                            "the new version is {new}, and {} requires {} {}",
                            dependent.path.display(),
                            chosen.name,
                            chosen.required
                        ),
                    });
                }
            }
        }
        let (Some(old), Some(new)) = (old, new) else {
            return Ok(());
        };
        if old.major == new.major {
            return Ok(());
        }
        // Functions are linked through slots (imports and `Current` handles); modules that
        // import its data list it among their providers.
        let linked = !self.slots.of(entry.id).is_empty()
            || !dependents.is_empty()
            || state.modules.iter().any(|e| {
                e.module
                    .providers()
                    .iter()
                    .any(|p| Arc::ptr_eq(p, &entry.module))
            });
        if linked {
            return Err(LoadError::VersionChange {
                module,
                problem: format!(
                    "the major version changes from {old} to {new} while other modules or \
                     handles rely on the running version (ReloadOptions::allow_version_change \
                     allows it)"
                ),
            });
        }
        Ok(())
    }

    /// Removes the module loaded from `path`. Returns whether a module was removed.
    ///
    /// The registry lets go of the module and of its slots. Its memory is released when
    /// nothing else holds it: the caller's `Arc`s, modules importing from it (directly or
    /// through a slot), `Current` and `Pinned` handles; the registry's own reference goes once
    /// no pinned thread can be running it. Destructors of what is freed here run on the
    /// calling thread, after the registry's lock is released.
    pub fn unload(&self, path: &Path) -> Result<bool, LoadError> {
        // A path as the registry keeps it (canonical, as `Module::path` gives it) is found
        // without asking the file system.
        let mut state = self.lock();
        let index = match state.position_of_path(path) {
            Some(index) => index,
            None => {
                drop(state);
                let canonical = canonical(path)?;
                state = self.lock();
                let Some(index) = state.position_of_path(&canonical) else {
                    return Ok(false);
                };
                index
            }
        };
        self.remove(state, index);
        Ok(true)
    }

    /// Removes `module`, which this registry loaded, as [`Registry::unload`] does for its
    /// path, with no system call. Returns whether it was this registry's current version of
    /// a module (an older version, replaced by a reload, is not).
    pub fn unload_module(&self, module: &Arc<Module>) -> bool {
        let state = self.lock();
        let Some(index) = state
            .modules
            .iter()
            .position(|entry| Arc::ptr_eq(&entry.module, module))
        else {
            return false;
        };
        self.remove(state, index);
        true
    }

    /// Removes the entry at `index` and releases the lock, then what only it held.
    fn remove(&self, mut state: MutexGuard<'_, State>, index: usize) {
        let entry = state.modules.remove(index);
        if entry.in_memory {
            state
                .by_name
                .remove(entry.path.to_str().unwrap_or_default());
        } else {
            state.by_path.remove(&entry.path);
        }
        state.exports.remove(entry.id, &entry.module);
        let slots = self.slots.remove(entry.id);
        drop(state);
        drop(slots);
        self.reclaimer.retire(entry.module);
        self.reclaimer.collect();
    }

    /// Pins the calling thread until the guard drops: no version of this registry's modules
    /// that the thread may be running is freed meanwhile. [`Current::pin`] does it for calls
    /// through a handle; take a guard yourself around calls into reloadable modules reached by
    /// other means (a function of a module that calls into a reloadable one, an address from
    /// [`Registry::resolve`]).
    pub fn pin(&self) -> PinGuard {
        self.reclaimer.pin()
    }

    /// Frees, on the calling thread, the old versions that no pinned thread can be running
    /// any more. Reloads and unloads do it too; a host that reloads rarely while threads stay
    /// pinned calls it to free old versions sooner.
    pub fn collect(&self) {
        self.reclaimer.collect();
    }

    /// The module loaded from `path`, if any.
    pub fn get(&self, path: &Path) -> Option<Arc<Module>> {
        let canonical = std::fs::canonicalize(path).ok()?;
        let state = self.lock();
        let index = state.position_of_path(&canonical)?;
        Some(Arc::clone(&state.modules[index].module))
    }

    /// The module loaded from memory under `name`, if any.
    pub fn get_named(&self, name: &str) -> Option<Arc<Module>> {
        let state = self.lock();
        let index = state.position_of_name(name)?;
        Some(Arc::clone(&state.modules[index].module))
    }

    /// Removes the module loaded from memory under `name`, as [`Registry::unload`] removes
    /// a file's. Returns whether a module was removed.
    pub fn unload_named(&self, name: &str) -> bool {
        let state = self.lock();
        let Some(index) = state.position_of_name(name) else {
            return false;
        };
        self.remove(state, index);
        true
    }

    /// The loaded modules, in load order.
    pub fn modules(&self) -> Vec<LoadedModule> {
        self.lock()
            .modules
            .iter()
            .map(|e| LoadedModule {
                path: e.path.clone(),
                module: Arc::clone(&e.module),
                version: e.version,
                module_version: e.module.file().module_version(),
                dependencies: e.dependencies.iter().map(|(_, d)| d.clone()).collect(),
            })
            .collect()
    }

    /// Resolves `name` the way an import is resolved, minus native libraries: host
    /// definitions, then exports of loaded modules in load order. A function of a reloadable
    /// module resolves to its trampoline, which follows reloads.
    ///
    /// The address carries no ownership: it stays valid while the defining module stays
    /// loaded in this registry (a trampoline, across reloads too). Calls through it into a
    /// reloadable module are protected from reclamation only while the thread is pinned
    /// ([`Registry::pin`]). Hold a [`Current`] or [`Pinned`] handle to keep code mapped.
    pub fn resolve(&self, name: &str) -> Option<usize> {
        let state = self.lock();
        let import = Import {
            name,
            kind: ImportKind::Any,
            binding: smf_format::Binding::Global,
            type_id: 0,
            version: 0,
        };
        // Only the address: the registry holds the slot while the module is loaded.
        match find(&state, &self.slots, &import, &TypeInfo::default(), &[], &[]) {
            Ok(Some(Definition::Host(address) | Definition::Module(address, _))) => Some(address),
            Ok(Some(Definition::Slot(slot))) => Some(slot.trampoline()),
            Ok(None) | Err(_) => None,
        }
    }

    /// A handle that always calls the current version of function `name` of the module
    /// loaded from `path`.
    ///
    /// # Safety
    /// `F` must be a function pointer type matching the function's signature, in this and
    /// every later version.
    pub unsafe fn current<F: Copy>(
        &self,
        path: &Path,
        name: &str,
    ) -> Result<Current<F>, LoadError> {
        let canonical = canonical(path)?;
        let state = self.lock();
        let index = state
            .position_of_path(&canonical)
            .ok_or(LoadError::NotLoaded {
                path: canonical.clone(),
            })?;
        // SAFETY: the caller's contract.
        unsafe { self.current_at(&state, index, name) }
    }

    /// A handle that always calls the current version of function `name` of the module
    /// loaded from memory under `module` ([`Registry::load_bytes`]), following
    /// [`Registry::reload_bytes`].
    ///
    /// # Safety
    /// As for [`Registry::current`].
    pub unsafe fn current_named<F: Copy>(
        &self,
        module: &str,
        name: &str,
    ) -> Result<Current<F>, LoadError> {
        let state = self.lock();
        let index = state
            .position_of_name(module)
            .ok_or_else(|| LoadError::NameNotLoaded {
                name: module.to_owned(),
            })?;
        // SAFETY: the caller's contract.
        unsafe { self.current_at(&state, index, name) }
    }

    /// The `Current` handle of function `name` of the entry at `index`.
    ///
    /// # Safety
    /// As for [`Registry::current`].
    unsafe fn current_at<F: Copy>(
        &self,
        state: &State,
        index: usize,
        name: &str,
    ) -> Result<Current<F>, LoadError> {
        if size_of::<F>() != size_of::<usize>() {
            return Err(LoadError::NotPointerSized {
                name: name.to_owned(),
                size: size_of::<F>(),
            });
        }
        let entry = &state.modules[index];
        let module = entry.module.name().to_owned();
        let (symbol, address) =
            entry
                .module
                .export(name)
                .ok_or_else(|| LoadError::SymbolNotFound {
                    module: module.clone(),
                    name: name.to_owned(),
                })?;
        if symbol.kind != SymbolKind::Function {
            return Err(LoadError::WrongSymbolKind {
                module,
                name: name.to_owned(),
                expected: "function",
                found: symbol.kind,
            });
        }
        let slot = self
            .slots
            .slot_for(entry.id, name, &entry.module, address, symbol.type_id)
            .map_err(|problem| LoadError::DependentBroken {
                module,
                name: name.to_owned(),
                problem,
            })?;
        // SAFETY: the caller's contract covers `F`; the handle holds the slot.
        Ok(unsafe { Current::new(slot, Arc::clone(self.reclaimer.epoch())) })
    }

    /// A handle to function `name` of the version of `path` loaded now, which it keeps alive.
    ///
    /// # Safety
    /// As for [`Module::get`].
    pub unsafe fn pinned<F: Copy>(&self, path: &Path, name: &str) -> Result<Pinned<F>, LoadError> {
        let module = self.get(path).ok_or_else(|| LoadError::NotLoaded {
            path: path.to_owned(),
        })?;
        // SAFETY: the caller's contract.
        unsafe { Pinned::new(module, name) }
    }
}

/// How the type of function `name` in `new` differs from the type `slot`'s callers were
/// linked against; `None` if it is the same, or either side records no type.
fn type_change(slot: &Slot, new: &Module, name: &str) -> Option<String> {
    let linked = slot.linked_type()?;
    let symbol = new.file().lookup(name)?;
    let types = new.file().types();
    types.get(symbol.type_id)?;
    let (old_types, old_id) = linked.view();
    compare(&old_types, old_id, types, symbol.type_id, Match::Exact)
        .err()
        .map(|difference| {
            format!(
                "its type changed from {} to {} ({difference})",
                old_types.display(old_id),
                types.display(symbol.type_id)
            )
        })
}

/// Where a name resolved.
enum Definition<'s> {
    /// Defined by the host.
    Host(usize),
    /// A function of a reloadable module: its slot.
    Slot(Arc<Slot>),
    /// Defined by a module, at this address.
    Module(usize, &'s Entry),
}

/// Host definitions, then modules in load order (skipping the entries in `skip`, which are
/// being replaced, so a new version does not link to its own old self). `Err` when the first
/// definition is of the wrong kind or type for `import`.
fn find<'s>(
    state: &'s State,
    slots: &Slots,
    import: &Import<'_>,
    import_types: &TypeInfo<'_>,
    skip: &[u64],
    preferred: &[u64],
) -> Result<Option<Definition<'s>>, String> {
    let hash = fnv1a32(import.name.as_bytes());
    if let Some(address) = state.host_definition(import.name, hash) {
        return Ok(Some(Definition::Host(address)));
    }
    // The modules chosen for the importer's dependencies first.
    let found = match preferred {
        [] => None,
        preferred => state.find_export(import.name, hash, skip, Some(preferred)),
    };
    let Some((entry, symbol)) = found.or_else(|| state.find_export(import.name, hash, skip, None))
    else {
        return Ok(None);
    };
    let address = match symbol.section {
        Some(_) => entry.module.base() + symbol.value as usize,
        None => symbol.value as usize,
    };
    let kind_ok = match import.kind {
        ImportKind::Any => true,
        ImportKind::Function => symbol.kind == SymbolKind::Function,
        ImportKind::Data => symbol.kind != SymbolKind::Function,
    };
    if !kind_ok {
        return Err(format!(
            "expected a {} symbol but {} exports a {} symbol",
            import.kind,
            entry.path.display(),
            symbol.kind
        ));
    }
    let provider_types = entry.module.file().types();
    if import_types.get(import.type_id).is_some() && provider_types.get(symbol.type_id).is_some() {
        if let Err(difference) = compare(
            import_types,
            import.type_id,
            provider_types,
            symbol.type_id,
            Match::Exact,
        ) {
            return Err(format!(
                "expected {} but {} exports {} ({difference})",
                import_types.display(import.type_id),
                entry.path.display(),
                provider_types.display(symbol.type_id)
            ));
        }
    }
    if entry.module.is_reloadable() && symbol.kind == SymbolKind::Function {
        // Calls into a reloadable module go through its slot, so they follow reloads.
        let slot = slots.slot_for(
            entry.id,
            import.name,
            &entry.module,
            address,
            symbol.type_id,
        )?;
        return Ok(Some(Definition::Slot(slot)));
    }
    Ok(Some(Definition::Module(address, entry)))
}

/// Resolves an import as [`find`] does, with what the importing module must keep alive.
fn resolve(
    state: &State,
    slots: &Slots,
    import: &Import<'_>,
    import_types: &TypeInfo<'_>,
    skip: &[u64],
    preferred: &[u64],
) -> Result<Option<Resolution>, String> {
    let resolution = match find(state, slots, import, import_types, skip, preferred)? {
        None => return Ok(None),
        Some(Definition::Host(address)) => Resolution {
            address,
            provider: None,
            keep_alive: None,
        },
        Some(Definition::Slot(slot)) => Resolution {
            address: slot.trampoline(),
            provider: None,
            // The importer calls through the slot: it holds the slot, which holds the version
            // the slot points into.
            keep_alive: Some(slot as Arc<dyn Any + Send + Sync>),
        },
        Some(Definition::Module(address, entry)) => Resolution {
            address,
            provider: Some(Arc::clone(&entry.module)),
            keep_alive: None,
        },
    };
    Ok(Some(resolution))
}

/// The module hash a module file's header holds (`docs/FORMAT.md`, *Header*), if the file is
/// long enough to have one; not checked against anything.
fn stored_module_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes
        .get(smf_format::raw::MODULE_HASH_RANGE)
        .and_then(|field| field.try_into().ok())
}

fn canonical(path: &Path) -> Result<PathBuf, LoadError> {
    std::fs::canonicalize(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}
