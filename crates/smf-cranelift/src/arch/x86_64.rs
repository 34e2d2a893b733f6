//! x86-64: every relocation Cranelift emits in position-independent code is a 32-bit
//! PC-relative field; a stub is `jmp *slot(%rip)`.

use cranelift_codegen::binemit::Reloc;

use super::{ArchTable, Via, distance, write_u32};

pub(crate) static TABLE: ArchTable = ArchTable {
    arch: smf_format::Arch::X86_64,
    page_size: 0x1000,
    classify,
    patch,
    stub_size: 8,
    stub,
};

fn classify(kind: Reloc) -> Option<Via> {
    match kind {
        Reloc::X86PCRel4 => Some(Via::Direct),
        Reloc::X86CallPCRel4 | Reloc::X86CallPLTRel4 => Some(Via::Branch),
        Reloc::X86GOTPCRel4 => Some(Via::Got),
        Reloc::ElfX86_64TlsGd => Some(Via::TlsGd),
        _ => None,
    }
}

fn patch(_kind: Reloc, field: &mut [u8], place: u64, value: u64) -> Result<(), i64> {
    let d = distance(value, place);
    let d32 = i32::try_from(d).map_err(|_| d)?;
    write_u32(field, d32 as u32)
}

fn stub(stub: u64, slot: u64) -> Result<Vec<u8>, i64> {
    // jmp *disp32(%rip), the displacement counted from the end of the 6-byte instruction;
    // padded with int3.
    let d = distance(slot, stub + 6);
    let d32 = i32::try_from(d).map_err(|_| d)?;
    let mut bytes = vec![0xff, 0x25];
    bytes.extend_from_slice(&d32.to_le_bytes());
    bytes.extend_from_slice(&[0xcc, 0xcc]);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_jumps_through_the_slot() {
        // A stub at 0x100 for a slot at 0x2000: 0x2000 - 0x106 = 0x1efa.
        assert_eq!(
            stub(0x100, 0x2000).unwrap(),
            [0xff, 0x25, 0xfa, 0x1e, 0, 0, 0xcc, 0xcc]
        );
    }

    #[test]
    fn a_distance_beyond_2_gib_is_refused() {
        let mut field = [0u8; 4];
        assert_eq!(
            patch(Reloc::X86PCRel4, &mut field, 0, 0x8000_0000),
            Err(0x8000_0000)
        );
        patch(Reloc::X86PCRel4, &mut field, 0x10, 0x0c).unwrap();
        assert_eq!(field, (-4i32).to_le_bytes());
    }
}
