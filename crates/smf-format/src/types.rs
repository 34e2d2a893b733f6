//! Typed values of the integer fields in [`crate::raw`].
//!
//! Each enum converts from its raw integer with `TryFrom`, which rejects values this version
//! of the format does not define; a reader never holds an enum with an unknown value.

use core::fmt;

/// Defines a field enum with its raw representation, `TryFrom`, `as_raw` and a lower-case name.
macro_rules! field_enum {
    ($(#[$meta:meta])* $name:ident : $repr:ty { $($(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order of their raw numbers.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The raw number stored in the file.
            pub const fn as_raw(self) -> $repr {
                match self { $($name::$variant => $value,)+ }
            }

            /// The name used by `smf inspect` and in error messages.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $repr;
            fn try_from(raw: $repr) -> Result<Self, $repr> {
                match raw {
                    $($value => Ok($name::$variant),)+
                    other => Err(other),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }
    };
}

field_enum! {
    /// Operating system a module was built for.
    Platform: u8 {
        Any = 0 => "any",
        Linux = 1 => "linux",
        Windows = 2 => "windows",
        MacOs = 3 => "macos",
    }
}

field_enum! {
    /// Instruction set of the module's code.
    Arch: u8 {
        X86_64 = 0 => "x86-64",
        Aarch64 = 1 => "aarch64",
    }
}

field_enum! {
    /// What a section holds. Loaded kinds occupy a range of the module image; the others are
    /// tables the loader reads from the file.
    SectionKind: u32 {
        /// Machine code; mapped read+execute.
        Code = 1 => "code",
        /// Initialised writable data; mapped read+write.
        Data = 2 => "data",
        /// Zero-initialised writable data with no file bytes; mapped read+write.
        Bss = 3 => "bss",
        /// Read-only data that needs no load-time relocation; mapped read-only.
        RoData = 4 => "rodata",
        /// The symbol table: an array of [`crate::raw::Symbol`].
        SymTab = 5 => "symtab",
        /// Load-time relocations: an array of [`crate::raw::Reloc`].
        Reloc = 6 => "reloc",
        /// Simple type descriptions (opaque to the loader in version 1).
        TypeInfo = 7 => "typeinfo",
        /// Version and compatibility notes (opaque to the loader in version 1).
        Version = 8 => "version",
        /// Source map for debuggers (opaque to the loader in version 1).
        SrcMap = 9 => "srcmap",
        /// NUL-terminated UTF-8 names referenced by offset.
        StrTab = 10 => "strtab",
        /// The exported-symbol hash table.
        Hash = 11 => "hash",
        /// The import table: an array of [`crate::raw::Import`].
        Imports = 12 => "imports",
        /// Native libraries to open before imports are resolved: `u32` string offsets.
        Needed = 13 => "needed",
        /// Constructors in execution order: `u64` image offsets.
        InitArray = 14 => "init_array",
        /// Destructors in execution order: `u64` image offsets.
        FiniArray = 15 => "fini_array",
        /// Data written by load-time relocations and read-only afterwards (GOT, vtables).
        RelRo = 16 => "relro",
        /// Unwind tables (`.eh_frame`, terminated); mapped read-only.
        EhFrame = 17 => "eh_frame",
        /// The thread-local storage template (`.tdata` then `.tbss`): each thread's copy of
        /// the module's thread-locals starts as these bytes; mapped read-only.
        Tls = 18 => "tls",
        /// Packed `relative64` relocations with the addend in place: `u64` words, each an
        /// image offset or a bitmap of the 63 words that follow (see `docs/FORMAT.md`).
        Relr = 19 => "relr",
        /// The Windows x64 function table: 12-byte `RUNTIME_FUNCTION` entries (begin, end,
        /// unwind information, as image offsets) sorted by begin; mapped read-only and given
        /// to `RtlAddFunctionTable` with the image base (see `docs/FORMAT.md`).
        Pdata = 20 => "pdata",
        /// The Windows TLS callbacks (a PE image's `.CRT$XL*`), in execution order: `u64`
        /// image offsets of functions the loader calls as Windows calls a DLL's, at load, at
        /// unload and as threads start and end (see `docs/FORMAT.md`). Windows modules only.
        TlsCallbacks = 21 => "tls_callbacks",
        /// Fingerprints of exported functions: 16-byte [`crate::raw::Fingerprint`] entries,
        /// sorted by symbol index, that say whether two versions of a function behave alike
        /// without reading their code (see `docs/FORMAT.md`).
        Fingerprints = 22 => "fingerprints",
    }
}

impl SectionKind {
    /// Whether the section occupies part of the module image in memory.
    pub const fn is_loaded(self) -> bool {
        matches!(
            self,
            SectionKind::Code
                | SectionKind::Data
                | SectionKind::Bss
                | SectionKind::RoData
                | SectionKind::RelRo
                | SectionKind::EhFrame
                | SectionKind::Tls
                | SectionKind::Pdata
        )
    }

    /// The final protection of a loaded section, as [`SectionFlags`]; empty for tables.
    pub const fn protection(self) -> SectionFlags {
        match self {
            SectionKind::Code => SectionFlags(SectionFlags::READ.0 | SectionFlags::EXEC.0),
            SectionKind::Data | SectionKind::Bss => {
                SectionFlags(SectionFlags::READ.0 | SectionFlags::WRITE.0)
            }
            SectionKind::RoData
            | SectionKind::RelRo
            | SectionKind::EhFrame
            | SectionKind::Tls
            | SectionKind::Pdata => SectionFlags::READ,
            _ => SectionFlags(0),
        }
    }

    /// Whether load-time relocations may write into this kind of section. The TLS template
    /// may hold pointers (`__thread char *p = buf;`), which each thread's copy inherits.
    pub const fn accepts_relocations(self) -> bool {
        matches!(
            self,
            SectionKind::Data | SectionKind::RelRo | SectionKind::Tls
        )
    }
}

field_enum! {
    /// What a symbol names.
    SymbolKind: u8 {
        Function = 1 => "func",
        Data = 2 => "data",
        Type = 3 => "type",
        Trait = 4 => "trait",
        Actor = 5 => "actor",
        Constant = 6 => "const",
    }
}

field_enum! {
    /// Linkage of a symbol.
    Binding: u8 {
        /// Visible only inside the module; never exported nor used to resolve imports.
        Local = 0 => "local",
        /// Exported.
        Global = 1 => "global",
        /// Exported; an import with this binding may stay unresolved (it resolves to 0).
        Weak = 2 => "weak",
    }
}

field_enum! {
    /// Visibility of a symbol, as in ELF.
    Visibility: u8 {
        Default = 0 => "default",
        Hidden = 1 => "hidden",
        Protected = 2 => "protected",
    }
}

field_enum! {
    /// What an import is expected to be. `Any` is for objects that do not say (ELF `NOTYPE`).
    ImportKind: u8 {
        Any = 0 => "any",
        Function = 1 => "func",
        Data = 2 => "data",
    }
}

field_enum! {
    /// Load-time relocation kinds. Everything else was resolved by the packer.
    RelocKind: u32 {
        /// `*(u64 *)(base + offset) = address_of(import) + addend`.
        Abs64 = 1 => "abs64",
        /// `*(u64 *)(base + offset) = base + addend`.
        Relative64 = 2 => "relative64",
        /// `*(u64 *)(base + offset) = ` the loader's handle of the module's thread-local
        /// block (the `ti_module` word of a `__tls_get_addr` argument).
        TlsModule = 3 => "tls_module",
        /// `*(i64 *)(base + offset) = tp_offset + addend`: the distance from the thread
        /// pointer of byte `addend` of the module's thread-local block, which is then a
        /// static one (initial-exec accesses and TLS descriptors).
        TpOffset = 4 => "tp_offset",
        /// `*(u64 *)(base + offset) = ` the loader's TLS descriptor function, which returns
        /// the second word of the descriptor it is called with (a `tp_offset`).
        TlsDescriptor = 5 => "tls_descriptor",
        /// `*(u64 *)(base + offset) = ((u64 (*)(void))(base + addend))()`: the word gets what
        /// the resolver at image offset `addend` returns (an ELF `STT_GNU_IFUNC` symbol's
        /// chosen implementation). Applied after every other relocation.
        Irelative = 6 => "irelative",
    }
}

/// Module flags (the header's `flags` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ModuleFlags(pub u32);

impl ModuleFlags {
    /// The module has an entry point (`.sme`).
    pub const EXECUTABLE: ModuleFlags = ModuleFlags(0x01);
    /// The module may be replaced while the process runs.
    pub const RELOADABLE: ModuleFlags = ModuleFlags(0x02);
    /// The module carries debug information.
    pub const DEBUG_INFO: ModuleFlags = ModuleFlags(0x04);
    /// The code is position independent (always set by the packer).
    pub const PIC: ModuleFlags = ModuleFlags(0x08);
    /// Payloads are compressed. Defined for compatibility; version 1 readers refuse it.
    pub const COMPRESSED: ModuleFlags = ModuleFlags(0x10);
    /// Every flag version 1 defines.
    pub const KNOWN: ModuleFlags = ModuleFlags(0x1f);

    pub const fn contains(self, other: ModuleFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: ModuleFlags) -> ModuleFlags {
        ModuleFlags(self.0 | other.0)
    }
}

impl fmt::Display for ModuleFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(ModuleFlags, &str); 5] = [
            (ModuleFlags::EXECUTABLE, "EXECUTABLE"),
            (ModuleFlags::RELOADABLE, "RELOADABLE"),
            (ModuleFlags::DEBUG_INFO, "DEBUG_INFO"),
            (ModuleFlags::PIC, "PIC"),
            (ModuleFlags::COMPRESSED, "COMPRESSED"),
        ];
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Section protection flags (the section header's `flags` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SectionFlags(pub u32);

impl SectionFlags {
    pub const READ: SectionFlags = SectionFlags(0x1);
    pub const WRITE: SectionFlags = SectionFlags(0x2);
    pub const EXEC: SectionFlags = SectionFlags(0x4);
    /// The payload is compressed (only in a `COMPRESSED` module; see `docs/FORMAT.md`).
    pub const COMPRESSED: SectionFlags = SectionFlags(0x8);

    pub const fn contains(self, other: SectionFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for SectionFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.contains(Self::READ) { 'R' } else { '-' };
        let w = if self.contains(Self::WRITE) { 'W' } else { '-' };
        let x = if self.contains(Self::EXEC) { 'X' } else { '-' };
        f.pad(&format!("{r}{w}{x}"))
    }
}

/// FNV-1a, 32 bits: the hash of symbol and import names stored in the file.
pub const fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_raw_values_are_rejected() {
        assert_eq!(SectionKind::try_from(0u32), Err(0));
        assert_eq!(SectionKind::try_from(23u32), Err(23));
        assert_eq!(SymbolKind::try_from(7u8), Err(7));
        assert_eq!(Binding::try_from(3u8), Err(3));
        assert_eq!(RelocKind::try_from(0u32), Err(0));
        assert_eq!(RelocKind::try_from(7u32), Err(7));
        for kind in SectionKind::ALL {
            assert_eq!(SectionKind::try_from(kind.as_raw()), Ok(*kind));
        }
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        // Reference values of the 32-bit FNV-1a test suite.
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn no_loaded_kind_is_writable_and_executable() {
        for kind in SectionKind::ALL {
            let p = kind.protection();
            assert!(!(p.contains(SectionFlags::WRITE) && p.contains(SectionFlags::EXEC)));
            assert_eq!(kind.is_loaded(), p.contains(SectionFlags::READ));
        }
    }
}
