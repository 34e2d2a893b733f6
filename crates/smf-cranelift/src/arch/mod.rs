//! Per-architecture relocation tables: how each Cranelift relocation reaches its target and
//! how its field is encoded, and the bytes of an import stub. The emitter (`emit.rs`) never
//! names a relocation; porting to another architecture is a new file here and a line in
//! [`for_isa`].

use cranelift_codegen::binemit::Reloc;

mod aarch64;
mod x86_64;

/// How a relocation in code reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// PC-relative to the target itself, which must be in the module.
    Direct,
    /// A call or branch: to the target if it is in the module, else to the import's stub.
    Branch,
    /// To the target's GOT slot (a word holding its address, in `relro`).
    Got,
    /// To the general-dynamic TLS pair (module handle, offset) of a thread-local.
    TlsGd,
    /// To the TLS descriptor (the loader's descriptor function, then the offset from the
    /// thread pointer) of a thread-local; the relocation that marks the descriptor call
    /// writes nothing.
    TlsDescriptor,
}

/// One architecture's table.
pub(crate) struct ArchTable {
    pub arch: smf_format::Arch,
    /// The page size modules are laid out for (what `smf pack` writes for the
    /// architecture, `docs/FORMAT.md`, *Page size*).
    pub page_size: u64,
    /// How a relocation kind reaches its target; `None`: not supported in code.
    pub classify: fn(Reloc) -> Option<Via>,
    /// Encodes `value` (the target's address plus addend, as image offsets) into the field
    /// at the start of `field`, the place being image offset `place`. `Err(distance)` when it
    /// does not fit.
    pub patch: fn(Reloc, field: &mut [u8], place: u64, value: u64) -> Result<(), i64>,
    /// Bytes of one import stub, a multiple of the code alignment.
    pub stub_size: u64,
    /// The stub at image offset `stub` that jumps through the GOT slot at `slot`.
    pub stub: fn(stub: u64, slot: u64) -> Result<Vec<u8>, i64>,
}

/// The table for Cranelift's target, or `None` for an architecture SMF has no code for.
pub(crate) fn for_isa(architecture: target_lexicon::Architecture) -> Option<&'static ArchTable> {
    match architecture {
        target_lexicon::Architecture::X86_64 => Some(&x86_64::TABLE),
        target_lexicon::Architecture::Aarch64(_) => Some(&aarch64::TABLE),
        _ => None,
    }
}

/// `target - place` as a signed distance (image offsets, so both are far below 2^63).
pub(crate) fn distance(value: u64, place: u64) -> i64 {
    value.wrapping_sub(place) as i64
}

/// The first four bytes of `field`, little-endian.
pub(crate) fn read_u32(field: &[u8]) -> Result<u32, i64> {
    let bytes = field.get(..4).ok_or(0i64)?;
    Ok(u32::from_le_bytes(bytes.try_into().map_err(|_| 0i64)?))
}

pub(crate) fn write_u32(field: &mut [u8], word: u32) -> Result<(), i64> {
    field
        .get_mut(..4)
        .ok_or(0i64)?
        .copy_from_slice(&word.to_le_bytes());
    Ok(())
}
