//! The packer's error type.
//!
//! Every message is one line that names what the user has to look at: the object file, the
//! section and offset, the symbol and the relocation type, as far as they apply.

use core::fmt;

/// Why a set of objects could not be packed into a module.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An input is not an x86-64 or aarch64 ELF relocatable object, or its ELF structures
    /// are malformed.
    Object { file: String, problem: String },
    /// Two inputs are objects for different architectures.
    MixedArchitectures {
        first: String,
        first_arch: &'static str,
        second: String,
        second_arch: &'static str,
    },
    /// Copies of a COMDAT group that its selection does not allow (COFF).
    Comdat {
        symbol: String,
        first: String,
        second: String,
        problem: String,
    },
    /// An input section uses something the packer does not support (TLS, `.ctors`, ...).
    UnsupportedSection {
        file: String,
        section: String,
        problem: String,
    },
    /// A symbol of an input is unusable.
    Symbol {
        file: String,
        symbol: String,
        problem: String,
    },
    /// Two inputs give a strong definition of the same symbol.
    DuplicateSymbol {
        symbol: String,
        first: String,
        second: String,
    },
    /// One input uses an imported symbol as a data object, another as a function.
    ImportKindConflict {
        symbol: String,
        /// The input that types it `STT_OBJECT`.
        data_object: String,
        /// The input that calls it, or types it `STT_FUNC`.
        function_object: String,
        /// Whether `function_object` calls it (else it only declares it a function).
        called: bool,
    },
    /// A relocation cannot be applied.
    Relocation(Box<RelocationError>),
    /// The entry symbol named in [`crate::Options::entry`] is unusable.
    Entry { symbol: String, problem: String },
    /// The output is larger than the module format allows.
    Layout(String),
    /// The module writer refused the result (a packer bug if it ever happens).
    Format(smf_format::Error),
    /// With [`crate::UndefinedSymbols::Error`]: strong imports that nothing defines, or
    /// needed libraries that could not be read to tell.
    Undefined {
        symbols: Vec<crate::UndefinedSymbol>,
        unreadable_libraries: Vec<String>,
    },
}

/// A relocation that cannot be applied, with where it is and what it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocationError {
    pub file: String,
    /// Name of the input section holding the relocated bytes.
    pub section: String,
    /// Offset of the relocated bytes inside that input section.
    pub offset: u64,
    /// The relocation type, such as `R_X86_64_PC32`.
    pub r_type: String,
    /// The symbol the relocation refers to (a section's name for section symbols).
    pub symbol: String,
    /// Whether the symbol is imported, that is, defined by no input.
    pub imported: bool,
    pub problem: RelocationProblem,
}

/// What is wrong with a relocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelocationProblem {
    /// An absolute 32-bit (or smaller) address: code compiled without -fPIC.
    NotPositionIndependent,
    /// A PC-relative reference to a symbol another module defines (-fPIE code for extern data).
    ImportOutOfReach,
    /// A thread-local storage relocation of no model modules support.
    ThreadLocal,
    /// A thread-local storage model modules cannot use (initial-exec, local-exec, TLS
    /// descriptors).
    ThreadLocalModel { model: &'static str },
    /// A thread-local variable that no input defines.
    ThreadLocalOutsideModule,
    /// A thread-local relocation whose target is not a thread-local variable of the module.
    NotThreadLocal,
    /// A type the packer does not implement, or one that only appears in linked files.
    UnsupportedType,
    /// The computed value does not fit in the relocated field; for PC-relative types the
    /// value is the distance from the field to the target.
    Overflow {
        value: i128,
        bits: u32,
        pc_relative: bool,
    },
    /// The computed value is not a multiple of what the field stores (a branch's 4 bytes, a
    /// scaled load's size).
    Misaligned { value: i128, align: u64 },
    /// An address would have to be written at load time into a section that stays read-only.
    ReadOnlyPlace { kind: &'static str },
    /// The relocated field runs past the end of its section.
    OutOfBounds { size: u64 },
    /// The relocation is in a section without file bytes (`.bss`).
    InBss,
    /// The target lies in a section this module does not load.
    TargetNotLoaded { section: String },
    /// The target lies in a section discarded as a duplicate COMDAT group member.
    TargetDiscarded,
    /// A constructor or destructor that is not code of this module.
    NotCode,
    /// The relocation only makes sense for a symbol defined in the module (or with a known size).
    NeedsDefinedSymbol,
}

impl fmt::Display for RelocationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each text continues the sentence "relocation R_X86_64_.. against `sym`".
        match self {
            RelocationProblem::NotPositionIndependent => {
                f.write_str(" is not position-independent; recompile with -fPIC")
            }
            RelocationProblem::ImportOutOfReach => {
                f.write_str(" cannot reach a symbol outside the module; recompile with -fPIC")
            }
            RelocationProblem::ThreadLocal => {
                f.write_str(": thread-local storage is not supported")
            }
            RelocationProblem::ThreadLocalModel { model } => write!(
                f,
                ": the {model} thread-local model cannot be used in a module, as in a shared \
                 library; compile with -fPIC (general-dynamic, local-dynamic, initial-exec and \
                 TLS descriptors are supported)"
            ),
            RelocationProblem::ThreadLocalOutsideModule => f.write_str(
                ": thread-local variables of other modules or native libraries cannot be \
                 reached; define it in the module or reach it through a function",
            ),
            RelocationProblem::NotThreadLocal => {
                f.write_str(": the target is not a thread-local variable of the module")
            }
            RelocationProblem::UnsupportedType => {
                f.write_str(": this relocation type is not supported")
            }
            RelocationProblem::Overflow {
                value,
                bits,
                pc_relative: true,
            } => write!(
                f,
                " overflows: the target is {value} bytes away, out of reach of a {bits}-bit field"
            ),
            RelocationProblem::Overflow {
                value,
                bits,
                pc_relative: false,
            } => {
                write!(
                    f,
                    " overflows: the value {value} does not fit in a {bits}-bit field"
                )
            }
            RelocationProblem::Misaligned { value, align } => write!(
                f,
                ": the value {value:#x} is not a multiple of {align}, as the instruction needs"
            ),
            RelocationProblem::ReadOnlyPlace { kind } => write!(
                f,
                " needs a load-time address in a read-only {kind} section; recompile with -fPIC"
            ),
            RelocationProblem::OutOfBounds { size } => {
                write!(
                    f,
                    ": the relocated field runs past the end of the section ({size:#x} bytes)"
                )
            }
            RelocationProblem::InBss => f.write_str(": the section has no file bytes to relocate"),
            RelocationProblem::TargetNotLoaded { section } => {
                write!(
                    f,
                    ": the target lies in section {section}, which is not loaded"
                )
            }
            RelocationProblem::TargetDiscarded => f.write_str(
                ": the target lies in a section discarded as a duplicate COMDAT group member",
            ),
            RelocationProblem::NotCode => f.write_str(
                ": a constructor or destructor must be a function defined in the module",
            ),
            RelocationProblem::NeedsDefinedSymbol => {
                f.write_str(": the symbol must be defined in the module")
            }
        }
    }
}

/// A symbol's name in a message: quoted, then its demangled form when it is a mangled C++ or
/// Rust name, as `_ZN3app4initEv` (`app::init()`).
struct Named<'a>(&'a str);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0)?;
        match smf_format::demangle(self.0) {
            Some(demangled) => write!(f, " (`{demangled}`)"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for RelocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let imported = if self.imported { "imported " } else { "" };
        write!(
            f,
            "{}: section {}+{:#x}: relocation {} against {imported}{}{}",
            self.file,
            self.section,
            self.offset,
            self.r_type,
            Named(&self.symbol),
            self.problem
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Object { file, problem } => write!(f, "{file}: {problem}"),
            Error::Comdat {
                symbol,
                first,
                second,
                problem,
            } => write!(f, "COMDAT `{symbol}` of {first} and {second} {problem}"),
            Error::MixedArchitectures {
                first,
                first_arch,
                second,
                second_arch,
            } => write!(
                f,
                "{second} is an {second_arch} object but {first} is an {first_arch} object; \
                 a module holds code of one architecture"
            ),
            Error::UnsupportedSection {
                file,
                section,
                problem,
            } => {
                write!(f, "{file}: section {section}: {problem}")
            }
            Error::Symbol {
                file,
                symbol,
                problem,
            } => write!(f, "{file}: symbol {}: {problem}", Named(symbol)),
            Error::DuplicateSymbol {
                symbol,
                first,
                second,
            } => {
                write!(
                    f,
                    "symbol {} is defined in both {first} and {second}",
                    Named(symbol)
                )
            }
            Error::ImportKindConflict {
                symbol,
                data_object,
                function_object,
                called,
            } => {
                let function_use = if *called {
                    "calls it as a function"
                } else {
                    "declares it a function (STT_FUNC)"
                };
                write!(
                    f,
                    "imported symbol {}: {data_object} declares it a data object \
                     (STT_OBJECT) but {function_object} {function_use}",
                    Named(symbol)
                )
            }
            Error::Relocation(error) => error.fmt(f),
            Error::Entry { symbol, problem } => {
                write!(f, "entry symbol {} {problem}", Named(symbol))
            }
            Error::Layout(problem) => write!(f, "cannot lay out the module: {problem}"),
            Error::Format(error) => write!(f, "cannot write the module: {error}"),
            Error::Undefined {
                symbols,
                unreadable_libraries,
            } => {
                if let [symbol] = &symbols[..] {
                    write!(f, "{symbol}")?;
                } else if !symbols.is_empty() {
                    write!(f, "{} undefined symbols: ", symbols.len())?;
                    for (n, symbol) in symbols.iter().enumerate() {
                        let separator = if n == 0 { "" } else { "; " };
                        write!(f, "{separator}{symbol}")?;
                    }
                }
                if !unreadable_libraries.is_empty() {
                    write!(
                        f,
                        "cannot check for undefined symbols: cannot find or read {} (searched \
                         LD_LIBRARY_PATH and the system library directories)",
                        unreadable_libraries.join(", ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Format(error) => Some(error),
            _ => None,
        }
    }
}

impl From<RelocationError> for Error {
    fn from(error: RelocationError) -> Error {
        Error::Relocation(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relocation(symbol: &str, imported: bool, problem: RelocationProblem) -> String {
        Error::from(RelocationError {
            file: "foo.o".into(),
            section: ".text".into(),
            offset: 0x1c,
            r_type: "R_X86_64_32".into(),
            symbol: symbol.into(),
            imported,
            problem,
        })
        .to_string()
    }

    #[test]
    fn relocation_messages_read_as_one_sentence() {
        assert_eq!(
            relocation("counter", false, RelocationProblem::NotPositionIndependent),
            "foo.o: section .text+0x1c: relocation R_X86_64_32 against `counter` is not position-independent; recompile with -fPIC"
        );
        assert_eq!(
            relocation("stdout", true, RelocationProblem::ImportOutOfReach),
            "foo.o: section .text+0x1c: relocation R_X86_64_32 against imported `stdout` cannot reach a symbol outside the module; recompile with -fPIC"
        );
        assert_eq!(
            relocation(
                "far",
                false,
                RelocationProblem::Overflow {
                    value: -3_000_000_000,
                    bits: 32,
                    pc_relative: true
                }
            ),
            "foo.o: section .text+0x1c: relocation R_X86_64_32 against `far` overflows: the target is -3000000000 bytes away, out of reach of a 32-bit field"
        );
    }

    #[test]
    fn messages_name_mangled_symbols_demangled_too() {
        let duplicate = Error::DuplicateSymbol {
            symbol: "_ZN3app4initEv".into(),
            first: "a.o".into(),
            second: "b.o".into(),
        };
        assert_eq!(
            duplicate.to_string(),
            "symbol `_ZN3app4initEv` (`app::init()`) is defined in both a.o and b.o"
        );
        let plain = Error::Entry {
            symbol: "main".into(),
            problem: "is not defined".into(),
        };
        assert_eq!(plain.to_string(), "entry symbol `main` is not defined");
    }
}
