//! Static archives (`.a`): which members a link takes, as GNU ld chooses them.
//!
//! An archive is a bag of objects, most of which a program does not need; packing them all
//! would pull in references that nothing defines. GNU ld takes a member only when it defines
//! a symbol that is still undefined, and goes on until no member qualifies. [`select_members`]
//! does the same over all the archives of a link at once (as ld does for archives inside
//! `--start-group … --end-group`; `docs/LINKING.md` says why), and [`all_members`] takes every
//! member, for `--whole-archive`.
//!
//! Only the members' symbol tables are read here; a member that is taken becomes an
//! [`Input`] named `archive(member)` and goes through the same checks as any object.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::PathBuf;

use object::read::archive::ArchiveFile;
use object::read::elf::ElfFile64;
use object::read::{Object as _, ObjectSymbol as _};
use object::{FileKind, LittleEndian};

use crate::Input;
use crate::error::Error;
use crate::input;

/// Whether `data` is a static archive (`!<arch>`, or a thin archive `!<thin>`).
pub fn is_archive(data: &[u8]) -> bool {
    data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n")
}

/// Every object member of an archive, in archive order, for `--whole-archive`.
///
/// Members that are no object file at all (a raw `lib.rmeta`, text) are skipped; LLVM
/// bitcode and objects of another machine or type are refused, naming the member.
pub fn all_members(name: &str, data: &[u8]) -> Result<Vec<Input>, Error> {
    Ok(read_archive(name, data)?
        .into_iter()
        .map(|member| member.input)
        .collect())
}

/// Replaces every archive among `inputs` by the members the link needs, in archive order,
/// at the archive's place; objects are kept as they are, all of them.
///
/// A member is needed when it defines (strongly, weakly or as a common symbol) a symbol that
/// an object already taken references and that none defines, or when it gives a value to a
/// symbol the objects taken only have as common (ld's rule for `-fcommon` objects). A weak
/// reference takes no member, as in GNU ld. The archives are searched again and again, all of them in command
/// line order, until no member is added, so the order of archives and objects on the command
/// line does not matter, and of two members defining a symbol, the first found is taken.
///
/// Symbols named in `reserved` are the link's own: no member is taken for them.
pub fn select_members<'a>(
    inputs: &'a [Input],
    reserved: &[&str],
) -> Result<Cow<'a, [Input]>, Error> {
    if !inputs.iter().any(|input| is_archive(&input.data)) {
        return Ok(Cow::Borrowed(inputs));
    }
    let mut wanted = Wanted::default();
    wanted
        .defined
        .extend(reserved.iter().map(|name| name.as_bytes().to_vec()));
    // One entry per input: `None` for an object, the members for an archive.
    let mut archives: Vec<Option<Vec<Member>>> = Vec::with_capacity(inputs.len());
    for input in inputs {
        if is_archive(&input.data) {
            archives.push(Some(read_archive(&input.name, &input.data)?));
        } else {
            let symbols = object_symbols(&input.name, &input.data)?;
            wanted.take(&symbols);
            archives.push(None);
        }
    }
    let mut changed = true;
    while changed {
        changed = false;
        for member in archives.iter_mut().flatten().flatten() {
            if !member.taken && wanted.is_needed(&member.symbols) {
                wanted.take(&member.symbols);
                member.taken = true;
                changed = true;
            }
        }
    }
    let mut selected = Vec::new();
    for (input, archive) in inputs.iter().zip(archives) {
        match archive {
            None => selected.push(input.clone()),
            Some(members) => selected.extend(
                members
                    .into_iter()
                    .filter(|member| member.taken)
                    .map(|member| member.input),
            ),
        }
    }
    Ok(Cow::Owned(selected))
}

/// The global symbols one object defines (with a value, or as common symbols) and the ones
/// it references strongly without defining them.
#[derive(Debug, Default)]
struct Symbols {
    defined: Vec<Vec<u8>>,
    common: Vec<Vec<u8>>,
    referenced: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Member {
    input: Input,
    symbols: Symbols,
    taken: bool,
}

/// The symbols the objects taken so far define and reference.
#[derive(Debug, Default)]
struct Wanted {
    defined: HashSet<Vec<u8>>,
    common: HashSet<Vec<u8>>,
    referenced: HashSet<Vec<u8>>,
}

impl Wanted {
    fn take(&mut self, symbols: &Symbols) {
        self.defined.extend(symbols.defined.iter().cloned());
        self.common.extend(symbols.common.iter().cloned());
        self.referenced.extend(symbols.referenced.iter().cloned());
    }

    /// Whether an object with these symbols resolves a reference that is still undefined,
    /// or gives a value to a symbol that is only common so far.
    fn is_needed(&self, symbols: &Symbols) -> bool {
        let unresolved = |name: &Vec<u8>| {
            self.referenced.contains(name)
                && !self.defined.contains(name)
                && !self.common.contains(name)
        };
        symbols.defined.iter().any(|name| {
            !self.defined.contains(name) && (unresolved(name) || self.common.contains(name))
        }) || symbols.common.iter().any(unresolved)
    }
}

fn archive_error(file: &str, problem: impl Into<String>) -> Error {
    Error::Object {
        file: file.to_owned(),
        problem: problem.into(),
    }
}

/// The object members of an archive with their symbols.
fn read_archive(name: &str, data: &[u8]) -> Result<Vec<Member>, Error> {
    if data.starts_with(b"!<thin>\n") {
        return Err(archive_error(
            name,
            "is a thin archive (its members are separate files); pack those files, or make \
             a normal archive with `ar rcs`",
        ));
    }
    let archive = ArchiveFile::parse(data)
        .map_err(|e| archive_error(name, format!("invalid archive: {e}")))?;
    let mut members = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|e| archive_error(name, format!("invalid archive: {e}")))?;
        let member_name = format!("{name}({})", String::from_utf8_lossy(member.name()));
        let bytes = member.data(data).map_err(|e| {
            archive_error(
                &member_name,
                format!("member data runs outside the archive: {e}"),
            )
        })?;
        match FileKind::parse(bytes) {
            Ok(FileKind::Elf64 | FileKind::Elf32 | FileKind::Coff | FileKind::CoffBig) => {}
            Ok(kind) => {
                return Err(archive_error(
                    &member_name,
                    format!("is a {kind:?} file, not an ELF x86-64 or aarch64 object"),
                ));
            }
            Err(_) if input::is_llvm_bitcode(bytes) => {
                return Err(archive_error(
                    &member_name,
                    "is LLVM bitcode (built with -flto or -C linker-plugin-lto), not an ELF \
                     object: the packer cannot tell what it defines; rebuild the archive \
                     without LTO",
                ));
            }
            // Not an object at all (Rust metadata, text): it defines nothing a link can use.
            Err(_) => continue,
        }
        // An import library's members describe a DLL's exports; the functions stay
        // imports, resolved at load time, under the name the DLL exports them by
        // (docs/LINKING.md, "COFF objects").
        let data = match input::coff::import_member(bytes) {
            input::coff::ImportMember::No => bytes.to_vec(),
            input::coff::ImportMember::SameName => continue,
            input::coff::ImportMember::Alias { symbol, import } => {
                match input::coff::alias_object(&symbol, &import) {
                    Some(object) => object,
                    None => continue,
                }
            }
        };
        let symbols = object_symbols(&member_name, &data)?;
        members.push(Member {
            input: Input {
                name: member_name,
                data,
            },
            symbols,
            taken: false,
        });
    }
    Ok(members)
}

/// Reads the global symbols of an ELF or COFF relocatable object the packer supports.
/// Anything else is refused with the message the packer gives for it as an input.
fn object_symbols(name: &str, data: &[u8]) -> Result<Symbols, Error> {
    let elf = matches!(
        ElfFile64::<LittleEndian>::parse(data),
        Ok(file)
            if crate::arch::for_machine(file.elf_header().e_machine.get(LittleEndian))
                .is_some()
                && file.elf_header().e_type.get(LittleEndian) == object::elf::ET_REL
    );
    let file = match object::File::parse(data) {
        Ok(file) if elf || input::coff::arch(data).is_some() => file,
        _ => {
            // The full reader names what is wrong (machine, type, truncation).
            return Err(input::read_object(name, data).err().unwrap_or_else(|| {
                archive_error(
                    name,
                    "is not an ELF x86-64 or aarch64 or a COFF x86-64 relocatable object",
                )
            }));
        }
    };
    let mut symbols = Symbols::default();
    for symbol in file.symbols() {
        if symbol.is_local() {
            continue;
        }
        let Ok(symbol_name) = symbol.name_bytes() else {
            continue;
        };
        if symbol_name.is_empty() {
            continue;
        }
        if symbol.is_common() {
            symbols.common.push(symbol_name.to_vec());
        } else if !symbol.is_undefined() {
            symbols.defined.push(symbol_name.to_vec());
        } else if !symbol.is_weak() {
            symbols.referenced.push(symbol_name.to_vec());
        }
    }
    Ok(symbols)
}

/// The file `-l NAME` names: `libNAME.a` in the first of `dirs` that holds one, or for
/// `-l:FILE`, the first FILE. GNU ld would prefer `libNAME.so` in a directory that has
/// both (under its default `-Bdynamic`); a module cannot contain a shared library, so only
/// archives are searched, and a shared library found instead is named in the error, to be
/// given with `--needed`.
pub fn find_library(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, Error> {
    let file = match name.strip_prefix(':') {
        Some(exact) => exact.to_owned(),
        None => format!("lib{name}.a"),
    };
    if let Some(found) = dirs.iter().map(|dir| dir.join(&file)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let searched = if dirs.is_empty() {
        "no -L directory was given".to_owned()
    } else {
        let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!("searched {}", list.join(", "))
    };
    let shared = dirs
        .iter()
        .map(|dir| dir.join(format!("lib{name}.so")))
        .find(|p| name.strip_prefix(':').is_none() && p.exists());
    let hint = match shared {
        Some(shared) => format!(
            "; {} is a shared library, which a module cannot contain: load it with \
             --needed {}",
            shared.display(),
            shared.file_name().unwrap_or_default().to_string_lossy()
        ),
        None => String::new(),
    };
    Err(archive_error(
        &format!("-l{name}"),
        format!("no {file} found ({searched}){hint}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_are_searched_in_directory_order() {
        let root = std::env::temp_dir().join(format!("smf-pack-libsearch-{}", std::process::id()));
        let (first, second) = (root.join("first"), root.join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("libm2.a"), "").unwrap();
        std::fs::write(first.join("libm2.a"), "").unwrap();
        std::fs::write(second.join("odd-name.a"), "").unwrap();
        std::fs::write(first.join("libshared.so"), "").unwrap();
        let dirs = [first.clone(), second.clone()];
        assert_eq!(find_library("m2", &dirs).unwrap(), first.join("libm2.a"));
        assert_eq!(
            find_library("m2", &dirs[1..]).unwrap(),
            second.join("libm2.a")
        );
        assert_eq!(
            find_library(":odd-name.a", &dirs).unwrap(),
            second.join("odd-name.a")
        );
        let missing = find_library("nothere", &dirs).unwrap_err().to_string();
        assert!(
            missing.starts_with("-lnothere: no libnothere.a found (searched "),
            "{missing}"
        );
        let shared = find_library("shared", &dirs).unwrap_err().to_string();
        assert!(
            shared.contains("load it with --needed libshared.so"),
            "{shared}"
        );
        let none = find_library("m2", &[]).unwrap_err().to_string();
        assert!(none.contains("no -L directory was given"), "{none}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
