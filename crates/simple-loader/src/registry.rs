//! The registry: loaded modules by canonical path, linked against each other and the host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use smf_format::{Import, ImportKind, SymbolKind};

use crate::error::LoadError;
use crate::loader::{LoadOptions, Resolution, load_file_with};
use crate::module::Module;

/// Loaded modules, in load order, and the symbols the host defines for them.
///
/// All operations take one lock for their whole duration: two threads loading the same file
/// get the same module, loaded once, and resolution never sees a half-updated registry. The
/// lock is held while a module's constructors run, so constructors must not call back into
/// the same registry.
#[derive(Debug, Default)]
pub struct Registry {
    options: LoadOptions,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// In load order; a reloaded module keeps its place.
    modules: Vec<Entry>,
    host: HashMap<String, usize>,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    module: Arc<Module>,
    version: u32,
}

/// One module of the registry, as [`Registry::modules`] lists it.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    pub path: PathBuf,
    pub module: Arc<Module>,
    /// 1 at first load, one more at each reload.
    pub version: u32,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn with_options(options: LoadOptions) -> Registry {
        Registry {
            options,
            state: Mutex::default(),
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
        self.lock().host.insert(name.to_owned(), address);
    }

    /// Loads the module at `path`, or returns the one already loaded from the same canonical
    /// path.
    pub fn load(&self, path: &Path) -> Result<Arc<Module>, LoadError> {
        let canonical = canonical(path)?;
        let mut state = self.lock();
        if let Some(entry) = state.modules.iter().find(|e| e.path == canonical) {
            return Ok(Arc::clone(&entry.module));
        }
        let module = Arc::new(load_file_with(&canonical, &self.options, &|import| {
            state.resolve(import, None)
        })?);
        state.modules.push(Entry {
            path: canonical,
            module: Arc::clone(&module),
            version: 1,
        });
        Ok(module)
    }

    /// Loads a new version of the module at `path` and puts it in the old one's place (in the
    /// load order too). If loading fails nothing changes. Modules already linked to the old
    /// version keep it alive and keep calling it; the registry hands out the new one.
    pub fn reload(&self, path: &Path) -> Result<Arc<Module>, LoadError> {
        let canonical = canonical(path)?;
        let mut state = self.lock();
        let index = state
            .modules
            .iter()
            .position(|e| e.path == canonical)
            .ok_or(LoadError::NotLoaded {
                path: canonical.clone(),
            })?;
        let module = Arc::new(load_file_with(&canonical, &self.options, &|import| {
            state.resolve(import, Some(index))
        })?);
        let entry = &mut state.modules[index];
        entry.module = Arc::clone(&module);
        entry.version += 1;
        Ok(module)
    }

    /// Removes the module loaded from `path`. Its memory is released when the last `Arc`
    /// (held by the caller or by modules importing from it) is dropped. Returns whether a
    /// module was removed.
    pub fn unload(&self, path: &Path) -> Result<bool, LoadError> {
        let canonical = canonical(path)?;
        let mut state = self.lock();
        let before = state.modules.len();
        state.modules.retain(|e| e.path != canonical);
        Ok(state.modules.len() != before)
    }

    /// The module loaded from `path`, if any.
    pub fn get(&self, path: &Path) -> Option<Arc<Module>> {
        let canonical = std::fs::canonicalize(path).ok()?;
        self.lock()
            .modules
            .iter()
            .find(|e| e.path == canonical)
            .map(|e| Arc::clone(&e.module))
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
            })
            .collect()
    }

    /// Resolves `name` the way an import is resolved, minus native libraries: host
    /// definitions, then exports of loaded modules in load order.
    pub fn resolve(&self, name: &str) -> Option<usize> {
        let state = self.lock();
        if let Some(&address) = state.host.get(name) {
            return Some(address);
        }
        state
            .modules
            .iter()
            .find_map(|e| e.module.export(name).map(|(_, address)| address))
    }
}

impl State {
    /// Host definitions, then modules in load order (skipping `replacing`, the module being
    /// reloaded, so a new version does not link to its own old self).
    fn resolve(
        &self,
        import: &Import<'_>,
        replacing: Option<usize>,
    ) -> Result<Option<Resolution>, String> {
        if let Some(&address) = self.host.get(import.name) {
            return Ok(Some(Resolution {
                address,
                provider: None,
            }));
        }
        for (index, entry) in self.modules.iter().enumerate() {
            if Some(index) == replacing {
                continue;
            }
            let Some((symbol, address)) = entry.module.export(import.name) else {
                continue;
            };
            let kind_ok = match import.kind {
                ImportKind::Any => true,
                ImportKind::Function => symbol.kind == SymbolKind::Function,
                ImportKind::Data => symbol.kind != SymbolKind::Function,
            };
            let problem = if !kind_ok {
                Some(format!(
                    "expected a {} symbol but {} exports a {} symbol",
                    import.kind,
                    entry.path.display(),
                    symbol.kind
                ))
            } else if import.type_id != 0 && symbol.type_id != 0 && import.type_id != symbol.type_id
            {
                Some(format!(
                    "expected type id {:#x} but {} exports type id {:#x}",
                    import.type_id,
                    entry.path.display(),
                    symbol.type_id
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(problem);
            }
            return Ok(Some(Resolution {
                address,
                provider: Some(Arc::clone(&entry.module)),
            }));
        }
        Ok(None)
    }
}

fn canonical(path: &Path) -> Result<PathBuf, LoadError> {
    std::fs::canonicalize(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}
