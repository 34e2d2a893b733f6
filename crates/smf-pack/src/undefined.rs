//! Undefined symbols at pack time: the imports that no input, no `--needed` library (nor the
//! libraries those need) and not the C library define, found as a linker finds them at link
//! time instead of at the first load.
//!
//! Native libraries are read from disk (their dynamic symbol tables, with `object`), never
//! opened: packing runs no foreign code. A library named without a `/` is searched in
//! `LD_LIBRARY_PATH` and then in the system's library directories, a subset of the dynamic
//! linker's search (no `ld.so.cache`, no `RUNPATH`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use object::{Object as _, ObjectSymbol as _};

use crate::arch::Arch;
use crate::input::{Object, SymbolDefinition};
use crate::relocate::Needs;
use crate::resolve::Globals;

/// What [`crate::pack`] does about strong imports that nothing it can see defines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UndefinedSymbols {
    /// Do not look (the loader reports them at load); reads no native library.
    #[default]
    Ignore,
    /// List them in [`Packed::undefined`] and pack all the same.
    Warn,
    /// Refuse to pack ([`crate::Error::Undefined`]), like `ld --no-undefined`.
    Error,
}

/// A strong import that no input, needed library or the C library defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefinedSymbol {
    /// The symbol's name as the objects spell it.
    pub symbol: String,
    /// The first input that refers to it.
    pub file: String,
    /// A library that defines it but is not among the `needed` ones, found among those
    /// compilers' output commonly needs (`libstdc++.so.6`, `libm.so.6`, `libgcc_s.so.1`).
    pub missing_library: Option<String>,
}

impl std::fmt::Display for UndefinedSymbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "undefined symbol {} (referenced by {})",
            display_name(&self.symbol),
            self.file
        )?;
        if let Some(library) = &self.missing_library {
            write!(f, "; {library} defines it: add --needed {library}")?;
        }
        Ok(())
    }
}

/// The packed module and what the packer found on the way.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The module's bytes.
    pub module: Vec<u8>,
    /// With [`UndefinedSymbols::Warn`]: the strong imports nothing defines.
    pub undefined: Vec<UndefinedSymbol>,
    /// Needed libraries that could not be found or read, whose symbols were therefore not
    /// checked (the undefined list is then empty rather than wrong).
    pub unreadable_libraries: Vec<String>,
}

/// `name`, demangled if it is a mangled C++ or Rust name: `demangled` (`mangled`).
pub fn display_name(name: &str) -> String {
    match smf_format::demangle(name) {
        Some(demangled) => format!("{demangled} ({name})"),
        None => name.to_owned(),
    }
}

/// Libraries whose absence from `needed` a message names when one of them defines an
/// undefined symbol.
const HINT_LIBRARIES: [&str; 3] = ["libstdc++.so.6", "libm.so.6", "libgcc_s.so.1"];

/// The C library every process has, and whose symbols every module may import.
const C_LIBRARY: &str = "libc.so.6";

/// The strong imports of `needs` that nothing defines (not the host either, by
/// `options.host_symbols`), and the libraries that could not be read (when there are any, no
/// symbol is reported: their symbols are unknown).
pub(crate) fn find(
    arch: &Arch,
    objects: &[Object<'_>],
    globals: &Globals<'_>,
    needs: &Needs,
    options: &crate::Options,
) -> (Vec<UndefinedSymbol>, Vec<String>) {
    let needed = &options.needed;
    let host: HashSet<&str> = options.host_symbols.iter().map(String::as_str).collect();
    let candidates: Vec<&str> = needs
        .imports
        .iter()
        .filter_map(|&id| globals.symbols.get(id))
        .filter(|g| g.strong_reference && !host.contains(g.name))
        .map(|g| g.name)
        .collect();
    if candidates.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let roots: Vec<&str> = needed
        .iter()
        .map(String::as_str)
        .chain([C_LIBRARY])
        .collect();
    let (defined, unreadable) = native_definitions(arch, &roots);
    if !unreadable.is_empty() {
        return (Vec::new(), unreadable);
    }
    let missing: Vec<&str> = candidates
        .into_iter()
        .filter(|name| !defined.contains(*name))
        .collect();
    if missing.is_empty() {
        return (Vec::new(), Vec::new());
    }

    // The first input that mentions each missing name, for the message.
    let mut referrer: HashMap<&str, &str> = HashMap::new();
    let wanted: HashSet<&str> = missing.iter().copied().collect();
    for object in objects {
        for symbol in &object.symbols {
            if symbol.definition == SymbolDefinition::Undefined && wanted.contains(symbol.name) {
                referrer.entry(symbol.name).or_insert(object.name);
            }
        }
    }
    let hints: Vec<(&str, HashSet<String>)> = HINT_LIBRARIES
        .iter()
        .filter(|library| !needed.iter().any(|n| library_matches(n, library)))
        .filter_map(|&library| {
            let (symbols, unreadable) = native_definitions(arch, &[library]);
            unreadable.is_empty().then_some((library, symbols))
        })
        .collect();
    let undefined = missing
        .into_iter()
        .map(|name| UndefinedSymbol {
            symbol: name.to_owned(),
            file: referrer.get(name).copied().unwrap_or("?").to_owned(),
            missing_library: hints
                .iter()
                .find(|(_, symbols)| symbols.contains(name))
                .map(|(library, _)| (*library).to_owned()),
        })
        .collect();
    (undefined, Vec::new())
}

/// Whether a `needed` entry (a soname or a path) names `library`.
fn library_matches(needed: &str, library: &str) -> bool {
    Path::new(needed).file_name().and_then(|n| n.to_str()) == Some(library)
}

/// Every symbol the libraries `roots` and the libraries they need (`DT_NEEDED`, transitively)
/// define, and the libraries that could not be found or read: those for `arch`, the
/// module's architecture, whatever the packer runs on.
fn native_definitions(arch: &Arch, roots: &[&str]) -> (HashSet<String>, Vec<String>) {
    let mut defined = HashSet::new();
    let mut unreadable = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: Vec<String> = roots.iter().map(|r| (*r).to_owned()).collect();
    while let Some(library) = queue.pop() {
        if !seen.insert(library.clone()) {
            continue;
        }
        let Some(data) = read_library(&library, arch) else {
            unreadable.push(library);
            continue;
        };
        let Ok(file) = object::File::parse(&*data) else {
            unreadable.push(library);
            continue;
        };
        for symbol in file.dynamic_symbols() {
            if !symbol.is_undefined() {
                if let Ok(name) = symbol.name() {
                    defined.insert(name.to_owned());
                }
            }
        }
        if let Ok(libraries) = file.import_libraries() {
            for needed in libraries.flatten() {
                if let Ok(name) = std::str::from_utf8(needed.name()) {
                    queue.push(name.to_owned());
                }
            }
        }
    }
    (defined, unreadable)
}

/// The bytes of a library named as `dlopen` takes it (a path if it has a `/`, else searched
/// for), built for `arch`: a library of another machine in a directory searched first (the
/// host's own, when packing for another architecture) is passed over, as the dynamic linker
/// does.
fn read_library(name: &str, arch: &Arch) -> Option<Vec<u8>> {
    if name.contains('/') {
        return std::fs::read(name).ok();
    }
    let from_env = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let system = [
        arch.library_dirs,
        &["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"],
    ];
    from_env
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(system.into_iter().flatten().copied())
        .map(|dir| Path::new(dir).join(name))
        .filter(|path| path.is_file())
        .filter_map(|path| std::fs::read(path).ok())
        .find(|data| crate::input::machine(data) == Some(arch.machine))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_demangled_with_the_mangled_form_kept() {
        assert_eq!(
            display_name("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7reserveEm"),
            "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >\
             ::reserve(unsigned long) \
             (_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE7reserveEm)"
        );
        assert_eq!(
            display_name("_ZN4core9panicking5panic17h0123456789abcdefE"),
            "core::panicking::panic (_ZN4core9panicking5panic17h0123456789abcdefE)"
        );
        assert_eq!(display_name("missing_fn"), "missing_fn");
    }

    #[test]
    fn the_c_library_and_its_loader_define_what_every_process_has() {
        let host = if cfg!(target_arch = "aarch64") {
            &crate::arch::aarch64::ARCH
        } else {
            &crate::arch::x86_64::ARCH
        };
        let (defined, unreadable) = native_definitions(host, &[C_LIBRARY]);
        assert!(unreadable.is_empty(), "{unreadable:?}");
        // printf from libc itself, __tls_get_addr from ld-linux, which libc needs.
        assert!(defined.contains("printf") && defined.contains("__tls_get_addr"));
        assert!(!defined.contains("missing_fn"));
    }
}
