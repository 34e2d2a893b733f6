//! AArch64: calls are 26-bit word-offset branches, addresses are built with `adrp` (the
//! 4 KiB page, ±4 GiB) plus a 12-bit low part (`add` or a scaled `ldr`); a stub loads the GOT
//! slot into x16 (the intra-procedure-call scratch register) and branches to it.

use cranelift_codegen::binemit::Reloc;

use super::{ArchTable, Via, distance, read_u32, write_u32};

pub(crate) static TABLE: ArchTable = ArchTable {
    arch: smf_format::Arch::Aarch64,
    page_size: 0x10000,
    classify,
    patch,
    stub_size: 16,
    stub,
};

fn classify(kind: Reloc) -> Option<Via> {
    match kind {
        Reloc::Arm64Call => Some(Via::Branch),
        Reloc::Aarch64AdrPrelPgHi21 | Reloc::Aarch64AddAbsLo12Nc => Some(Via::Direct),
        Reloc::Aarch64AdrGotPage21 | Reloc::Aarch64Ld64GotLo12Nc => Some(Via::Got),
        // Cranelift's thread-local access for ELF (`tls_model=elf_gd`): `adrp x0`, `ldr` of
        // the descriptor's function, `add` of its address to x0, `blr` to the function.
        Reloc::Aarch64TlsDescAdrPage21
        | Reloc::Aarch64TlsDescLd64Lo12
        | Reloc::Aarch64TlsDescAddLo12
        | Reloc::Aarch64TlsDescCall => Some(Via::TlsDescriptor),
        _ => None,
    }
}

fn patch(kind: Reloc, field: &mut [u8], place: u64, value: u64) -> Result<(), i64> {
    let insn = read_u32(field)?;
    let insn = match kind {
        Reloc::Arm64Call => branch26(insn, place, value)?,
        Reloc::Aarch64AdrPrelPgHi21
        | Reloc::Aarch64AdrGotPage21
        | Reloc::Aarch64TlsDescAdrPage21 => adrp(insn, place, value)?,
        Reloc::Aarch64AddAbsLo12Nc | Reloc::Aarch64TlsDescAddLo12 => {
            insn & !(0xfff << 10) | ((value as u32 & 0xfff) << 10)
        }
        // Marks the `blr` of a descriptor call (for linker relaxations): nothing to write.
        Reloc::Aarch64TlsDescCall => insn,
        Reloc::Aarch64Ld64GotLo12Nc | Reloc::Aarch64TlsDescLd64Lo12 => {
            if !value.is_multiple_of(8) {
                return Err(distance(value, place));
            }
            insn & !(0xfff << 10) | (((value as u32 & 0xfff) >> 3) << 10)
        }
        _ => return Err(distance(value, place)),
    };
    write_u32(field, insn)
}

/// `b`/`bl`: imm26 words, ±128 MiB.
fn branch26(insn: u32, place: u64, value: u64) -> Result<u32, i64> {
    let d = distance(value, place);
    if d % 4 != 0 || !(-(1 << 27)..(1 << 27)).contains(&d) {
        return Err(d);
    }
    Ok(insn & !0x03ff_ffff | ((d >> 2) as u32 & 0x03ff_ffff))
}

/// `adrp`: the distance between 4 KiB pages, 21 bits signed (immlo bits 29-30, immhi 5-23).
fn adrp(insn: u32, place: u64, value: u64) -> Result<u32, i64> {
    let pages = distance(value & !0xfff, place & !0xfff) >> 12;
    if !(-(1 << 20)..(1 << 20)).contains(&pages) {
        return Err(distance(value, place));
    }
    let pages = pages as u32;
    Ok(insn & !(0b11 << 29 | 0x7ffff << 5) | (pages & 0b11) << 29 | ((pages >> 2) & 0x7ffff) << 5)
}

fn stub(stub: u64, slot: u64) -> Result<Vec<u8>, i64> {
    const ADRP_X16: u32 = 0x9000_0010;
    const LDR_X16_X16: u32 = 0xf940_0210;
    const BR_X16: u32 = 0xd61f_0200;
    const NOP: u32 = 0xd503_201f;
    if !slot.is_multiple_of(8) {
        return Err(distance(slot, stub));
    }
    let adrp = adrp(ADRP_X16, stub, slot)?;
    let ldr = LDR_X16_X16 | (((slot as u32 & 0xfff) >> 3) << 10);
    Ok([adrp, ldr, BR_X16, NOP]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_encodes_word_offsets_and_refuses_128_mib() {
        // bl with imm26 = 0: 0x94000000. A call 0x40 bytes back: imm26 = -16.
        let mut field = 0x9400_0000u32.to_le_bytes();
        patch(Reloc::Arm64Call, &mut field, 0x1040, 0x1000).unwrap();
        assert_eq!(u32::from_le_bytes(field), 0x9400_0000 | 0x03ff_fff0);
        assert!(patch(Reloc::Arm64Call, &mut field, 0, 1 << 27).is_err());
    }

    #[test]
    fn tls_descriptor_sequence_reaches_the_descriptor() {
        // Cranelift's sequence at 0x1000 for a descriptor at 0x3018: `adrp x0` two pages on,
        // `ldr x1, [x0, #0x18]` (imm12 0x18 / 8 = 3), `add x0, x0, #0x18`, `blr x1` untouched.
        let mut words = [0x9000_0000u32, 0xf940_0001, 0x9100_0000, 0xd63f_0020];
        let kinds = [
            Reloc::Aarch64TlsDescAdrPage21,
            Reloc::Aarch64TlsDescLd64Lo12,
            Reloc::Aarch64TlsDescAddLo12,
            Reloc::Aarch64TlsDescCall,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            assert_eq!(classify(kind), Some(Via::TlsDescriptor));
            let mut field = words[i].to_le_bytes();
            patch(kind, &mut field, 0x1000 + 4 * i as u64, 0x3018).unwrap();
            words[i] = u32::from_le_bytes(field);
        }
        assert_eq!(words, [0xd000_0000, 0xf940_0c01, 0x9100_6000, 0xd63f_0020]);
        // The descriptor's first word is loaded as a 64-bit word: it must be 8-aligned.
        let mut field = 0xf940_0001u32.to_le_bytes();
        assert!(patch(Reloc::Aarch64TlsDescLd64Lo12, &mut field, 0x1004, 0x301c).is_err());
    }

    #[test]
    fn stub_matches_the_assembler() {
        // `adrp x16, 0x3000; ldr x16, [x16, #0x18]; br x16; nop` at 0x1000, by the A64
        // encodings: adrp x16 two pages on is 0x90000010 | immlo 2 << 29 = 0xd0000010; ldr's
        // imm12 is 0x18 / 8 = 3 at bit 10.
        let bytes = stub(0x1000, 0x3018).unwrap();
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [0xd000_0010, 0xf940_0e10, 0xd61f_0200, 0xd503_201f]);
    }
}
