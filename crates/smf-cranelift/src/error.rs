//! What can go wrong when a module is emitted.

use std::fmt;

/// An error from [`SmfProduct::emit`](crate::SmfProduct::emit): the module the compiler
/// described cannot be written as an SMF module. Each names the symbol and what is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// A function or data object declared with a linkage that needs a definition has none.
    Undefined { name: String, kind: &'static str },
    /// A relocation this backend does not support, in `function` (or data object) `place`.
    Unsupported {
        place: String,
        reloc: String,
        target: String,
        why: String,
    },
    /// A relocation whose value does not fit its field.
    OutOfRange {
        place: String,
        reloc: String,
        target: String,
        distance: i64,
    },
    /// The entry point named with `SmfBuilder::entry` is not a function defined here.
    Entry { name: String },
    /// The SMF writer refused the module (a bug of this crate if it happens).
    Format(smf_format::Error),
    /// The unwind tables could not be written.
    Unwind(String),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Undefined { name, kind } => {
                write!(
                    f,
                    "{kind} `{name}` is declared to be defined here but is not"
                )
            }
            EmitError::Unsupported {
                place,
                reloc,
                target,
                why,
            } => write!(f, "{place}: relocation {reloc} to `{target}`: {why}"),
            EmitError::OutOfRange {
                place,
                reloc,
                target,
                distance,
            } => write!(
                f,
                "{place}: relocation {reloc} to `{target}`: value {distance:#x} does not fit the field"
            ),
            EmitError::Entry { name } => {
                write!(
                    f,
                    "entry point `{name}` is not a function defined in the module"
                )
            }
            EmitError::Format(_) => write!(f, "the SMF writer refused the module"),
            EmitError::Unwind(e) => write!(f, "cannot write .eh_frame: {e}"),
        }
    }
}

impl std::error::Error for EmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmitError::Format(e) => Some(e),
            _ => None,
        }
    }
}

impl From<smf_format::Error> for EmitError {
    fn from(e: smf_format::Error) -> Self {
        EmitError::Format(e)
    }
}
