//! The per-architecture tables: everything the packer does differently for x86-64 and aarch64.
//!
//! The generic linker (`crate::relocate`, `crate::layout`) never names a relocation type or an
//! instruction. It asks the input object's [`Arch`] (chosen by its ELF `e_machine`) what a
//! relocation type needs, as an [`Action`] (a GOT slot, a call stub, a TLS entry, an absolute
//! word for the loader, a position-independent value), which [`Form`] of the address it
//! computes, and which [`Field`] the value goes into: a little-endian data field or a bit field
//! of an instruction, each with its own range and alignment checks. The arch also supplies
//! the bytes the packer writes itself: import call stubs, range-extension veneers, the frame of
//! the legacy `.init`/`.fini` functions and the runtime support functions.
//!
//! Adding an architecture means a new file beside `x86_64.rs` and `aarch64.rs` and one line in
//! [`for_machine`].

pub(crate) mod aarch64;
pub(crate) mod x86_64;
pub(crate) mod x86_64_coff;

use object::elf;

use crate::error::RelocationProblem;

/// Range check applied to a value before it is stored in a data field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// A two's complement field: PC-relative distances, GOT offsets.
    Signed,
    /// A zero-extended field (`R_X86_64_32`).
    Unsigned,
    /// Either reading is meant (`R_X86_64_64`, sizes).
    Any,
}

/// An immediate field of a 32-bit aarch64 instruction word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insn {
    /// ADR/ADRP: a 21-bit signed immediate of `value >> shift`, split into immlo (bits
    /// 29..31) and immhi (bits 5..24). `checked`: the value must fit (not `_NC`).
    Adr { shift: u8, checked: bool },
    /// ADD (immediate): `value >> shift` in bits 10..22. `checked`: the value must lie in
    /// `0..1 << (12 + shift)`; otherwise its low 12 bits past `shift` are kept (`_NC`).
    Add { shift: u8, checked: bool },
    /// LDR/STR (unsigned offset): `value >> scale` in bits 10..22. `bits` is the width of the
    /// value kept (12 for `_LO12_NC`, which drops the higher bits unchecked; 15 for
    /// `LD64_GOTPAGE_LO15`, which must fit); the value must be a multiple of `1 << scale`.
    Ldst { scale: u8, bits: u8 },
    /// B/BL (26 bits at 0), B.cond/CBZ (19 bits at 5), TBZ (14 bits at 5): a signed word
    /// offset, `value >> 2`; the value must be a multiple of 4 and fit.
    Branch { bits: u8, lsb: u8 },
}

/// Where and how a relocated value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A little-endian data field of 1, 2, 4 or 8 bytes.
    Data { bytes: u8, range: Range },
    /// Bits of a little-endian 32-bit instruction; the other bits are kept.
    Insn(Insn),
}

pub(crate) const fn data(bytes: u8, range: Range) -> Field {
    Field::Data { bytes, range }
}

impl Field {
    /// Bytes of the section the field occupies.
    pub fn bytes(self) -> u8 {
        match self {
            Field::Data { bytes, .. } => bytes,
            Field::Insn(_) => 4,
        }
    }
}

/// Which value of an address X (the target, its GOT slot, stub or TLS entry, plus the
/// addend A) a relocation stores. P is the image offset of the relocated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// X + A - P.
    Relative,
    /// Page(X + A) - Page(P), pages of 4 KiB (ADRP). The packer can compute it because the
    /// image base is aligned to a page at least that large, so the distance in pages between
    /// two image offsets is the same at every base.
    Page,
    /// (X + A) & 0xfff, the offset in its 4 KiB page (the `_LO12` kinds that follow an ADRP):
    /// also the same at every page-aligned base.
    PageOffset,
    /// X + A - Page(GOT) (`R_AARCH64_LD64_GOTPAGE_LO15`).
    FromGotPage,
}

const PAGE_MASK: i128 = !0xfff;

impl Form {
    /// The stored value for address `x` (X + A), field address `p` and GOT base `got`.
    pub fn compute(self, x: i128, p: i128, got: i128) -> i128 {
        match self {
            Form::Relative => x - p,
            Form::Page => (x & PAGE_MASK) - (p & PAGE_MASK),
            Form::PageOffset => x & 0xfff,
            Form::FromGotPage => x - (got & PAGE_MASK),
        }
    }

    /// Whether the value is a distance from the relocated field, for messages.
    pub fn is_pc_relative(self) -> bool {
        matches!(self, Form::Relative | Form::Page)
    }
}

/// What a relocation type computes, independent of its number and architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Nothing,
    /// `R_X86_64_64`, `R_AARCH64_ABS64`: S + A, written at load time unless S is absolute.
    Address64,
    /// Absolute addresses narrower than 64 bits: only position-independent for absolute S.
    AbsoluteNarrow(Field),
    /// A position-independent use of the target's address (see [`Form`]); `call` allows an
    /// import, reached through its stub, and an in-module target out of the field's reach,
    /// reached through a veneer where the arch has them.
    PcRelative {
        field: Field,
        form: Form,
        call: bool,
    },
    /// The address of the target's GOT slot in `form`; `relaxable` for x86-64's GOTPCRELX /
    /// REX_GOTPCRELX.
    GotPcRelative {
        field: Field,
        form: Form,
        relaxable: bool,
    },
    /// G + A: the slot's offset from the GOT base.
    GotOffset(Field),
    /// S + A - GOT.
    OffsetFromGot,
    /// GOT + A - P.
    GotFromPc(Field),
    /// L - GOT + A.
    PltOffset,
    /// Z + A, the symbol's size.
    Size(Field),
    /// The variable's `tls_index` pair (see `crate::tls`), in `form`.
    TlsGeneralDynamic {
        field: Field,
        form: Form,
    },
    /// The module's local-dynamic `tls_index` pair, in `form`.
    TlsLocalDynamic {
        field: Field,
        form: Form,
    },
    /// The variable's offset in the module's thread-local block + A.
    DtpOffset(Field),
    /// The variable's initial-exec GOT entry, in `form`.
    TlsInitialExec {
        field: Field,
        form: Form,
    },
    /// The variable's TLS descriptor, in `form`.
    TlsDescriptor {
        field: Field,
        form: Form,
    },
    /// S + A as a 32-bit image offset (COFF's `ADDR32NB`, an RVA): the same at every base.
    /// An import's is its call stub's, as an RVA must lie in the image.
    ImageRelative(Field),
    /// S + A minus the image offset of the output section holding S (COFF's `SECREL`).
    SectionRelative(Field),
    /// The index in the module's section table of the section holding S (COFF's `SECTION`).
    SectionIndex(Field),
    /// A TLS model modules cannot use, named for the message (`"local-exec"`).
    ThreadLocalModel(&'static str),
    /// Other thread-local relocations modules cannot use.
    ThreadLocal,
    Unsupported,
}

impl Action {
    /// Bytes written at P (`TLSDESC_CALL` and `NONE` write none).
    pub fn width(self) -> u64 {
        let bytes = match self {
            Action::Address64 | Action::OffsetFromGot | Action::PltOffset => 8,
            Action::AbsoluteNarrow(f)
            | Action::PcRelative { field: f, .. }
            | Action::GotPcRelative { field: f, .. }
            | Action::GotOffset(f)
            | Action::GotFromPc(f)
            | Action::Size(f)
            | Action::ImageRelative(f)
            | Action::SectionRelative(f)
            | Action::SectionIndex(f)
            | Action::DtpOffset(f)
            | Action::TlsGeneralDynamic { field: f, .. }
            | Action::TlsLocalDynamic { field: f, .. }
            | Action::TlsInitialExec { field: f, .. }
            | Action::TlsDescriptor { field: f, .. } => f.bytes(),
            Action::Nothing
            | Action::ThreadLocalModel(_)
            | Action::ThreadLocal
            | Action::Unsupported => 0,
        };
        u64::from(bytes)
    }
}

/// One function of the runtime support object (`crate::runtime`): its name, its code, and
/// the relocations in it as (offset in the code, symbol, ELF relocation type, addend).
pub(crate) struct SupportFunction {
    pub name: &'static str,
    pub code: &'static [u8],
    pub relocs: &'static [(u64, &'static str, elf::RelocationType, i64)],
}

/// An instruction that loads the value of a 64-bit absolute address in code PC-relatively
/// instead ([`Arch::pc_relative_load`]): its bytes, replacing the original instruction at
/// `start` (an offset in the section), with a zero 32-bit displacement at `displacement`
/// (an offset in `bytes`) that counts from the end of `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcRelativeLoad {
    pub start: u64,
    pub bytes: [u8; 10],
    pub displacement: usize,
}

/// [`Arch::pc_relative_load`]: for the field at `offset` in `section`, loading through the
/// GOT slot (`through_slot`) or computing the address.
pub(crate) type PcRelativeLoadFn =
    fn(section: &[u8], offset: u64, through_slot: bool) -> Option<PcRelativeLoad>;

/// What the packer needs to know of one instruction set.
pub(crate) struct Arch {
    /// The ELF `e_machine` of its objects (of a COFF table: the same instruction set's).
    pub machine: elf::Machine,
    /// The input object format and instruction set, for messages: `x86-64 ELF`.
    pub name: &'static str,
    /// The module header's `platform`: what the objects' conventions (imports, unwind
    /// tables, constructors) are made for.
    pub platform: smf_format::Platform,
    /// The format of its objects, for writing the runtime support object.
    pub binary_format: object::BinaryFormat,
    /// The name of a relocation type, if it has one.
    pub type_names: fn(u32) -> Option<&'static str>,
    /// The module header's `arch`.
    pub format: smf_format::Arch,
    /// The `object` crate's name for it, to write the runtime support object.
    pub object: object::Architecture,
    /// The relocation table.
    pub action: fn(u32) -> Action,
    /// `R_*_NONE` and the 64-bit absolute address type (`R_X86_64_64`, `R_AARCH64_ABS64`),
    /// the one type constructor tables hold and the one that becomes a load-time relocation.
    pub none: u32,
    pub abs64: u32,
    /// Section type compilers give `.eh_frame` besides `SHT_PROGBITS`, if any.
    pub unwind_section_type: Option<elf::SectionType>,
    /// The page size modules are laid out for: the largest page size of the kernels the
    /// architecture runs on (GNU ld's max-page-size), so that the module loads on all of them.
    pub page_size: u64,
    /// Fills gaps in code: a trapping instruction repeated (`int3`, `udf #0`).
    pub code_fill: &'static [u8],
    /// A no-op instruction, for gaps that execution runs through.
    pub nop: &'static [u8],
    /// Instruction size used to give a zero-sized function at the end of code a trapping
    /// instruction, and the alignment of code the packer writes.
    pub trap: &'static [u8],
    /// The frame of the functions legacy `.init`/`.fini` fragments are concatenated into, as
    /// the C library's crti.o and crtn.o frame them.
    pub legacy_prologue: &'static [u8],
    pub legacy_epilogue: &'static [u8],
    /// Writes a stub at image offset `stub` that jumps to the address held in the GOT slot at
    /// image offset `slot`; `Err` with a message if the slot is out of its reach.
    pub write_stub: fn(stub: u64, slot: u64) -> Result<[u8; STUB_SIZE as usize], String>,
    /// Writes a veneer at `at` that jumps to `target` (an in-module function a branch
    /// cannot reach), if the architecture has them.
    pub write_veneer: Option<fn(at: u64, target: u64) -> Result<[u8; STUB_SIZE as usize], String>>,
    /// Where the C library and other shared libraries of this architecture are, before the
    /// generic directories: Debian's multiarch directories, and its cross-compilation
    /// sysroot for packing on another machine.
    pub library_dirs: &'static [&'static str],
    /// The functions a native link takes from the C library's static part.
    pub support: &'static [SupportFunction],
    /// The largest alignment of thread-locals that code reaching them at a fixed offset from
    /// the thread pointer (initial-exec, TLS descriptors) may ask for: what glibc aligns the
    /// static TLS block of a library loaded after start-up to (`crate::tls`).
    pub static_tls_align: u64,
    /// Names of [`Arch::support`] functions the module always gets from the packer, never
    /// from an archive member: the archive's does something the loader does itself.
    pub archives_never_define: &'static [&'static str],
    /// Functions of the C runtime's static libraries that its start-up objects (which a
    /// module does not hold) call from the image's TLS callbacks, with a TLS callback's
    /// arguments: a module that defines one calls it as one of its TLS callbacks, first.
    pub runtime_tls_callbacks: &'static [&'static str],
    /// For a 64-bit absolute address ([`Arch::abs64`]) at `offset` in the code `section`,
    /// which the loader cannot write (code pages are never written at load): an instruction
    /// that loads the same value PC-relatively, from the target's GOT slot (`through_slot`,
    /// for an import) or as an address computation, if the instruction holding the field has
    /// such a form. Cranelift's code for COFF reaches imports through such fields, as the
    /// object crate writes no GOT relocations for COFF.
    pub pc_relative_load: Option<PcRelativeLoadFn>,
}

/// Size of one import call stub, indirect-function stub or veneer.
pub(crate) const STUB_SIZE: u64 = 16;

/// The arch of objects whose ELF `e_machine` is `machine`, if the packer supports it.
pub(crate) fn for_machine(machine: elf::Machine) -> Option<&'static Arch> {
    match machine {
        m if m == x86_64::ARCH.machine => Some(&x86_64::ARCH),
        m if m == aarch64::ARCH.machine => Some(&aarch64::ARCH),
        _ => None,
    }
}

/// The arch of COFF objects whose `Machine` is `machine`, if the packer supports it.
pub(crate) fn for_coff_machine(machine: object::pe::Machine) -> Option<&'static Arch> {
    (machine == object::pe::IMAGE_FILE_MACHINE_AMD64).then_some(&x86_64_coff::ARCH)
}

impl core::fmt::Debug for Arch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.format.name())
    }
}

impl Arch {
    /// The name of a relocation type for messages, such as `R_X86_64_PC32`.
    pub fn type_name(&self, r_type: u32) -> String {
        match (self.type_names)(r_type) {
            Some(name) => name.to_owned(),
            None => format!("type {r_type}"),
        }
    }

    /// Whether a branch field can hold the distance `value`.
    pub fn reaches(&self, field: Field, value: i128) -> bool {
        encode(value, field, true, &[0; 8]).is_ok()
    }
}

/// Stores `value` into `field`, whose current bytes are `old` (at least the field's width):
/// returns the new bytes (the field's width of them are meaningful), or says why the value
/// does not fit. `pc_relative` says whether the value is a distance, for the message.
pub(crate) fn encode(
    value: i128,
    field: Field,
    pc_relative: bool,
    old: &[u8],
) -> Result<[u8; 8], RelocationProblem> {
    let overflow = |bits: u32| RelocationProblem::Overflow {
        value,
        bits,
        pc_relative,
    };
    let signed_fits = |bits: u32| value >= -(1i128 << (bits - 1)) && value < (1i128 << (bits - 1));
    let aligned = |align: u64| {
        if value.rem_euclid(i128::from(align)) == 0 {
            Ok(())
        } else {
            Err(RelocationProblem::Misaligned { value, align })
        }
    };
    match field {
        Field::Data { bytes, range } => {
            let bits = u32::from(bytes) * 8;
            let (min, max) = match range {
                Range::Signed => (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1),
                Range::Unsigned => (0, (1i128 << bits) - 1),
                Range::Any => (-(1i128 << (bits - 1)), (1i128 << bits) - 1),
            };
            if value < min || value > max {
                return Err(overflow(bits));
            }
            // Two's complement truncation of an in-range value.
            Ok((value as i64).to_le_bytes())
        }
        Field::Insn(insn) => {
            let word = old
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0);
            let word = match insn {
                Insn::Adr { shift, checked } => {
                    let bits = 21 + u32::from(shift);
                    if checked && !signed_fits(bits) {
                        return Err(overflow(bits));
                    }
                    let imm = ((value >> shift) as u32) & 0x1f_ffff;
                    (word & !(0x3 << 29 | 0x7_ffff << 5)) | (imm & 0x3) << 29 | (imm >> 2) << 5
                }
                Insn::Add { shift, checked } => {
                    let bits = 12 + u32::from(shift);
                    if checked && !(0..(1i128 << bits)).contains(&value) {
                        return Err(overflow(bits));
                    }
                    (word & !(0xfff << 10)) | ((value >> shift) as u32 & 0xfff) << 10
                }
                Insn::Ldst { scale, bits } => {
                    if bits > 12 && !(0..(1i128 << bits)).contains(&value) {
                        return Err(overflow(u32::from(bits)));
                    }
                    let kept = value & ((1i128 << bits) - 1);
                    aligned(1 << scale)?;
                    let imm = (kept >> scale) as u32 & 0xfff;
                    (word & !(0xfff << 10)) | imm << 10
                }
                Insn::Branch { bits, lsb } => {
                    let bits = u32::from(bits);
                    if !signed_fits(bits + 2) {
                        return Err(overflow(bits + 2));
                    }
                    aligned(4)?;
                    let mask = (1u32 << bits) - 1;
                    let imm = ((value >> 2) as u32) & mask;
                    (word & !(mask << lsb)) | imm << lsb
                }
            };
            let mut bytes = [0; 8];
            bytes[..4].copy_from_slice(&word.to_le_bytes());
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_fields_refuse_values_out_of_range() {
        let signed32 = data(4, Range::Signed);
        let enc = |value, field, pc| encode(value, field, pc, &[0; 8]);
        assert_eq!(
            enc(i128::from(i32::MAX), signed32, true).unwrap()[..4],
            i32::MAX.to_le_bytes()
        );
        assert_eq!(enc(-4, signed32, true).unwrap()[..4], (-4i32).to_le_bytes());
        assert!(enc(i128::from(i32::MAX) + 1, signed32, true).is_err());
        assert!(enc(i128::from(i32::MIN) - 1, signed32, true).is_err());
        let unsigned32 = data(4, Range::Unsigned);
        assert!(enc(i128::from(u32::MAX), unsigned32, false).is_ok());
        assert!(enc(-1, unsigned32, false).is_err());
        let any64 = data(8, Range::Any);
        assert_eq!(enc(i128::from(u64::MAX), any64, false).unwrap(), [0xff; 8]);
        assert_eq!(
            enc(i128::from(i64::MIN), any64, false).unwrap(),
            i64::MIN.to_le_bytes()
        );
        assert!(enc(i128::from(u64::MAX) + 1, any64, false).is_err());
        assert!(enc(i128::from(i64::MIN) - 1, any64, false).is_err());
        assert_eq!(
            enc(1 << 40, signed32, true),
            Err(RelocationProblem::Overflow {
                value: 1 << 40,
                bits: 32,
                pc_relative: true
            })
        );
    }

    fn insn(value: i128, insn: Insn, old: u32) -> Result<u32, RelocationProblem> {
        encode(value, Field::Insn(insn), true, &old.to_le_bytes())
            .map(|b| u32::from_le_bytes(b[..4].try_into().unwrap()))
    }

    #[test]
    fn aarch64_immediates_go_into_their_bits() {
        // Expected words are what GNU as assembles for the same operands.
        // bl .+0x1000 = 0x94000400; bl .-4 = 0x97ffffff.
        let call = Insn::Branch { bits: 26, lsb: 0 };
        assert_eq!(insn(0x1000, call, 0x9400_0000), Ok(0x9400_0400));
        assert_eq!(insn(-4, call, 0x9400_0000), Ok(0x97ff_ffff));
        assert!(insn(1 << 27, call, 0x9400_0000).is_err());
        assert_eq!(insn((1 << 27) - 4, call, 0x9400_0000), Ok(0x95ff_ffff));
        assert_eq!(
            insn(6, call, 0x9400_0000),
            Err(RelocationProblem::Misaligned { value: 6, align: 4 })
        );
        // b.eq .+8 = 0x54000040; tbz w0, #0, .-8 = 0x367fffc0.
        assert_eq!(
            insn(8, Insn::Branch { bits: 19, lsb: 5 }, 0x5400_0000),
            Ok(0x5400_0040)
        );
        assert_eq!(
            insn(-8, Insn::Branch { bits: 14, lsb: 5 }, 0x3600_0000),
            Ok(0x3607_ffc0)
        );
        assert!(insn(1 << 15, Insn::Branch { bits: 14, lsb: 5 }, 0x3600_0000).is_err());
        // adrp x0, .+0x5000 = 0xb0000020 (immlo 1, immhi 1); adrp x1, .-0x1000 = 0xf0ffffe1.
        let adrp = Insn::Adr {
            shift: 12,
            checked: true,
        };
        assert_eq!(insn(0x5000, adrp, 0x9000_0000), Ok(0xb000_0020));
        assert_eq!(insn(-0x1000, adrp, 0x9000_0001), Ok(0xf0ff_ffe1));
        assert!(insn(1 << 32, adrp, 0x9000_0000).is_err());
        assert!(
            insn(
                1 << 32,
                Insn::Adr {
                    shift: 12,
                    checked: false
                },
                0x9000_0000
            )
            .is_ok()
        );
        // adr x2, .+5 = 0x30000022.
        assert_eq!(
            insn(
                5,
                Insn::Adr {
                    shift: 0,
                    checked: true
                },
                0x1000_0002
            ),
            Ok(0x3000_0022)
        );
        // add x0, x0, #0x123 = 0x91048c00.
        let lo12 = Insn::Add {
            shift: 0,
            checked: false,
        };
        assert_eq!(insn(0x7123, lo12, 0x9100_0000), Ok(0x9104_8c00));
        // add x0, x0, #0x12, lsl #12 = 0x91404800 (dtprel_hi12 of 0x12345).
        let hi12 = Insn::Add {
            shift: 12,
            checked: true,
        };
        assert_eq!(insn(0x12345, hi12, 0x9140_0000), Ok(0x9140_4800));
        assert!(insn(1 << 24, hi12, 0x9140_0000).is_err());
        // ldr x0, [x0, #0x10] = 0xf9400800; misaligned 64-bit offsets are refused.
        let ldst64 = Insn::Ldst { scale: 3, bits: 12 };
        assert_eq!(insn(0x3010, ldst64, 0xf940_0000), Ok(0xf940_0800));
        assert!(matches!(
            insn(0x3014, ldst64, 0xf940_0000),
            Err(RelocationProblem::Misaligned { align: 8, .. })
        ));
        // ldr x0, [x0, #0x7ff8] (gotpage_lo15) = 0xf97ffc00; past 32 KiB is refused.
        let lo15 = Insn::Ldst { scale: 3, bits: 15 };
        assert_eq!(insn(0x7ff8, lo15, 0xf940_0000), Ok(0xf97f_fc00));
        assert!(insn(0x8000, lo15, 0xf940_0000).is_err());
    }

    #[test]
    fn page_forms_use_4k_pages() {
        assert_eq!(Form::Page.compute(0x12345, 0x1ffc, 0), 0x11000);
        assert_eq!(Form::Page.compute(0x0fff, 0x1000, 0), -0x1000);
        assert_eq!(Form::PageOffset.compute(0x12345, 0x1ffc, 0), 0x345);
        assert_eq!(Form::FromGotPage.compute(0x3010, 0, 0x2ff8), 0x1010);
    }
}
