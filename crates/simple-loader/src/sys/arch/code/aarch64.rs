//! AArch64 code (A64, little-endian): every instruction is one 4-byte word, and a
//! PC-relative reference is a bit-field of one instruction, or of two: an `ADRP` that gives a
//! 4 KiB page and the instructions after it that add the low 12 bits of the address (`ADD`
//! or a load or store with an unsigned offset, based on the `ADRP`'s register).
//!
//! A differing word is taken when both versions hold the same instruction apart from its
//! offset field, and what the instruction locates is the same place in both:
//! - `B`, `BL` (imm26), `B.cond`, `CBZ`, `CBNZ`, `LDR` (literal) (imm19), `TBZ`, `TBNZ`
//!   (imm14) and `ADR` (imm21): their target;
//! - `ADRP`: the address each low-12-bit instruction after it forms from its page (all of
//!   them, and at least one), following the instructions in address order until one that may
//!   write the register;
//! - a low-12-bit instruction: the address it forms with the page of the `ADRP` before it
//!   that set its base register, found the same way backwards.
//!
//! The pairing follows address order, not control flow, as compilers lay the pairs out; a
//! page register that flows anywhere but into such instructions is beyond it.

/// The instruction word at byte `p` of `code`.
fn word(code: &[u8], p: usize) -> Option<u32> {
    Some(u32::from_le_bytes(code.get(p..p + 4)?.try_into().ok()?))
}

/// The low `bits` bits of `value`, sign-extended.
fn signed(value: u32, bits: u32) -> i64 {
    (((value << (32 - bits)) as i32) >> (32 - bits)) as i64
}

/// A PC-relative instruction other than `ADRP` at address `at`: the bits of the word outside
/// its offset field, and the address it locates.
pub(crate) fn pc_relative(insn: u32, at: u64) -> Option<(u32, u64)> {
    let imm19 = || (0x00ff_ffe0, signed(insn >> 5 & 0x7_ffff, 19) * 4);
    let (field, offset) = if insn & 0x7c00_0000 == 0x1400_0000 {
        // B, BL.
        (0x03ff_ffff, signed(insn & 0x03ff_ffff, 26) * 4)
    } else if insn & 0xff00_0000 == 0x5400_0000 {
        // B.cond, BC.cond.
        imm19()
    } else if insn & 0x7e00_0000 == 0x3400_0000 {
        // CBZ, CBNZ.
        imm19()
    } else if insn & 0x3b00_0000 == 0x1800_0000 {
        // LDR (literal) to a general or a vector register, LDRSW (literal), PRFM (literal).
        imm19()
    } else if insn & 0x7e00_0000 == 0x3600_0000 {
        // TBZ, TBNZ.
        (0x0007_ffe0, signed(insn >> 5 & 0x3fff, 14) * 4)
    } else if insn & 0x9f00_0000 == 0x1000_0000 {
        // ADR: immhi in bits 5..24, immlo in bits 29..31.
        let immediate = (insn >> 5 & 0x7_ffff) << 2 | (insn >> 29 & 3);
        (0x60ff_ffe0, signed(immediate, 21))
    } else {
        return None;
    };
    Some((insn & !field, at.checked_add_signed(offset)?))
}

/// `ADRP` at address `at`: its destination register and the page it computes.
pub(crate) fn adrp(insn: u32, at: u64) -> Option<(u32, u64)> {
    if insn & 0x9f00_0000 != 0x9000_0000 {
        return None;
    }
    let immediate = (insn >> 5 & 0x7_ffff) << 2 | (insn >> 29 & 3);
    let page = (at & !0xfff).checked_add_signed(signed(immediate, 21) << 12)?;
    Some((insn & 31, page))
}

/// An instruction that adds an unsigned 12-bit immediate to a base register, as the low half
/// of an `ADRP` pair does: `ADD` (immediate, 64-bit, unshifted) or a load or store with an
/// unsigned offset (scaled by the access size). Its base register and the offset it adds.
pub(crate) fn low12(insn: u32) -> Option<(u32, u64)> {
    let immediate = u64::from(insn >> 10 & 0xfff);
    let scale = if insn & 0xffc0_0000 == 0x9100_0000 {
        0
    } else if insn & 0x3b00_0000 == 0x3900_0000 {
        let (size, vector, opc) = (insn >> 30, insn >> 26 & 1, insn >> 22 & 3);
        // A vector register with opc 1x is the 128-bit Q form.
        if vector == 1 && opc >= 2 { 4 } else { size }
    } else {
        return None;
    };
    Some((insn >> 5 & 31, immediate << scale))
}

/// The bits of a [`low12`] instruction outside its immediate.
fn low12_fixed(insn: u32) -> u32 {
    insn & !(0xfff << 10)
}

/// Whether `insn` may write register `r` (0..=30): erring towards yes, which only ends a
/// pairing early. Register 31 is never paired.
pub(crate) fn may_write(insn: u32, r: u32) -> bool {
    let (rt, rn, rt2, rs) = (insn & 31, insn >> 5 & 31, insn >> 10 & 31, insn >> 16 & 31);
    // BL, BLR, BLRAA and the like: the callee may change x0-x18, and the call sets x30.
    let call = insn & 0xfc00_0000 == 0x9400_0000
        || insn & 0xffff_fc1f == 0xd63f_0000
        || insn & 0xfeff_f800 == 0xd63f_0800;
    // Load/store pair (all addressing forms); pre- and post-indexed ones have bit 23 set.
    let pair = insn & 0x3a00_0000 == 0x2800_0000;
    let pair_writeback = pair && insn >> 23 & 1 == 1;
    // Load/store register, immediate pre- or post-indexed.
    let writeback = insn & 0x3b20_0400 == 0x3800_0400;
    // Vector load/store of structures, post-indexed.
    let structures_writeback = matches!(insn & 0xbf80_0000, 0x0c80_0000 | 0x0d80_0000);
    // Exclusives and compare-and-swap write a status or the old value to Rs.
    let exclusive = insn & 0x3f00_0000 == 0x0800_0000;
    rt == r
        || (pair && rt2 == r)
        || ((pair_writeback || writeback || structures_writeback) && rn == r)
        || (exclusive && rs == r)
        || (call && (r <= 18 || r == 30))
}

/// The end of the instruction covering byte `i` when it differs between `x` and `y` only in
/// a PC-relative field whose targets `same` accepts (see the module's documentation).
pub(super) fn reference_field(
    x: &[u8],
    x_at: u64,
    y: &[u8],
    y_at: u64,
    i: usize,
    _from: usize,
    same: &dyn Fn(u64, u64) -> bool,
) -> Option<usize> {
    if x_at % 4 != 0 || y_at % 4 != 0 || x.len() != y.len() {
        return None;
    }
    let p = i & !3;
    let (wx, wy) = (word(x, p)?, word(y, p)?);
    let (ax, ay) = (x_at + p as u64, y_at + p as u64);
    let taken = if let (Some((fx, tx)), Some((fy, ty))) = (pc_relative(wx, ax), pc_relative(wy, ay))
    {
        fx == fy && same(tx, ty)
    } else if let (Some((r, px)), Some((ry, py))) = (adrp(wx, ax), adrp(wy, ay)) {
        r == ry && r != 31 && uses_agree(x, y, p, r, (px, py), same)
    } else if let (Some((r, ox)), Some((_, oy))) = (low12(wx), low12(wy)) {
        low12_fixed(wx) == low12_fixed(wy)
            && pages(x, x_at, y, y_at, p, r)
                .is_some_and(|(px, py)| same(px.wrapping_add(ox), py.wrapping_add(oy)))
    } else {
        false
    };
    taken.then_some(p + 4)
}

/// Whether the low-12-bit instructions after the `ADRP` at `p` that use its register `r`
/// (until an instruction that may write `r`) are at least one, the same instructions in both
/// versions, and each forms addresses from `pages` that `same` accepts.
fn uses_agree(
    x: &[u8],
    y: &[u8],
    p: usize,
    r: u32,
    (px, py): (u64, u64),
    same: &dyn Fn(u64, u64) -> bool,
) -> bool {
    let mut uses = 0;
    let mut q = p + 4;
    while let (Some(ux), Some(uy)) = (word(x, q), word(y, q)) {
        if let Some((base, ox)) = low12(ux)
            && base == r
        {
            let Some((_, oy)) = low12(uy) else {
                return false;
            };
            if low12_fixed(ux) != low12_fixed(uy) || !same(px.wrapping_add(ox), py.wrapping_add(oy))
            {
                return false;
            }
            uses += 1;
        }
        if may_write(ux, r) {
            break;
        }
        q += 4;
    }
    uses > 0
}

/// The pages, in `x` and in `y`, of the `ADRP` that last set register `r` before the word at
/// `p`: the nearest one before it with no instruction between that may write `r`.
fn pages(x: &[u8], x_at: u64, y: &[u8], y_at: u64, p: usize, r: u32) -> Option<(u64, u64)> {
    if r == 31 {
        return None;
    }
    let mut q = p;
    while q >= 4 {
        q -= 4;
        let (wx, wy) = (word(x, q)?, word(y, q)?);
        if let Some((rx, px)) = adrp(wx, x_at + q as u64)
            && rx == r
        {
            let (ry, py) = adrp(wy, y_at + q as u64)?;
            return (ry == r).then_some((px, py));
        }
        if may_write(wx, r) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as code bytes.
    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// `reference_field` at the first byte where `x` and `y` differ, with `same` accepting
    /// exactly the target pairs listed.
    fn field(x: &[u32], x_at: u64, y: &[u32], y_at: u64, pairs: &[(u64, u64)]) -> Option<usize> {
        let (x, y) = (code(x), code(y));
        let i = (0..x.len()).find(|&i| x[i] != y[i]).unwrap();
        let same = |tx: u64, ty: u64| pairs.contains(&(tx, ty));
        reference_field(&x, x_at, &y, y_at, i, 0, &same)
    }

    fn bl(at: u64, to: u64) -> u32 {
        0x9400_0000 | ((to.wrapping_sub(at) as i64 / 4) as u32 & 0x03ff_ffff)
    }

    fn adrp_x(rd: u32, at: u64, to: u64) -> u32 {
        let pages = ((to & !0xfff) as i64 - (at & !0xfff) as i64) >> 12;
        let imm = pages as u32 & 0x1f_ffff;
        0x9000_0000 | (imm & 3) << 29 | (imm >> 2) << 5 | rd
    }

    fn add_lo12(rd: u32, rn: u32, to: u64) -> u32 {
        0x9100_0000 | ((to & 0xfff) as u32) << 10 | rn << 5 | rd
    }

    /// `ldr xt, [xn, #:lo12:to]` (64-bit, scaled by 8).
    fn ldr_lo12(rt: u32, rn: u32, to: u64) -> u32 {
        0xf940_0000 | ((to & 0xfff) as u32 / 8) << 10 | rn << 5 | rt
    }

    #[test]
    fn each_pc_relative_form_decodes_to_its_target() {
        let at = 0x1_0000u64;
        // (instruction, target), from the A64 encodings: negative offsets too.
        let cases: [(u32, u64); 11] = [
            (bl(at, 0x2_0000), 0x2_0000),
            (0x1400_0000 | 0x03ff_fffe, at - 8),       // b .-8
            (0x5400_0000 | 4 << 5 | 0x1, at + 16),     // b.ne .+16
            (0xb400_0000 | 0x7_ffff << 5 | 3, at - 4), // cbz x3, .-4
            (0x3500_0000 | 2 << 5 | 1, at + 8),        // cbnz w1, .+8
            (0x3600_0000 | 5 << 19 | 3 << 5 | 2, at + 12), // tbz w2, #5, .+12
            (0xb700_0000 | 0x3fff << 5, at - 4),       // tbnz x0, #32, .-4
            (0x5800_0000 | 0x40 << 5 | 16, at + 0x100), // ldr x16, .+0x100
            (0x9800_0000 | 1 << 5 | 2, at + 4),        // ldrsw x2, .+4
            (0x1000_0000 | 1 << 29 | 0x10 << 5 | 7, at + 0x41), // adr x7, .+0x41
            (0x7000_0000 | 0x7_ffff << 5, at - 1),     // adr x0, .-1
        ];
        for (insn, target) in cases {
            let (fixed, decoded) = pc_relative(insn, at).unwrap();
            assert_eq!(decoded, target, "{insn:#010x}");
            // The fixed bits are the instruction without its offset: zero offset, same form.
            assert_eq!(pc_relative(fixed, at).unwrap().1, at, "{insn:#010x}");
        }
        assert_eq!(
            adrp(adrp_x(3, 0x1_0ff0, 0x23_4567), 0x1_0ff0),
            Some((3, 0x23_4000))
        );
        assert_eq!(
            adrp(adrp_x(3, 0x9_0000, 0x1000), 0x9_0000),
            Some((3, 0x1000))
        );
        // adrp is not adr; add and ldr are not pc-relative.
        assert_eq!(pc_relative(adrp_x(1, 0, 0x5000), 0), None);
        assert_eq!(pc_relative(add_lo12(0, 0, 0x123), 0), None);
        assert_eq!(low12(add_lo12(0, 1, 0x123)), Some((1, 0x123)));
        assert_eq!(low12(ldr_lo12(0, 1, 0x128)), Some((1, 0x128)));
        assert_eq!(low12(0x3940_0420), Some((1, 1))); // ldrb w0, [x1, #1]
        assert_eq!(low12(0x3dc0_0420), Some((1, 16))); // ldr q0, [x1, #16]
        assert_eq!(low12(0xb900_0420), Some((1, 4))); // str w0, [x1, #4]
    }

    #[test]
    fn a_call_whose_callee_moved_is_the_same_and_one_to_elsewhere_is_not() {
        let (x_at, y_at) = (0x1000, 0x1400);
        let x = [0xd503_201f, bl(x_at + 4, 0x8000)];
        let y = [0xd503_201f, bl(y_at + 4, 0x9000)];
        assert_eq!(field(&x, x_at, &y, y_at, &[(0x8000, 0x9000)]), Some(8));
        assert_eq!(field(&x, x_at, &y, y_at, &[(0x8000, 0x8000)]), None);
        // b instead of bl: another instruction, whatever the target.
        let mut z = y;
        z[1] &= !0x8000_0000;
        assert_eq!(field(&x, x_at, &z, y_at, &[(0x8000, 0x9000)]), None);
        // A register that differs is not an offset.
        let (a, b) = ([0x8b02_0020u32], [0x8b03_0020u32]); // add x0, x1, x2 / x3
        assert_eq!(field(&a, x_at, &b, y_at, &[]), None);
    }

    #[test]
    fn adrp_pairs_compare_the_full_address() {
        let (x_at, y_at) = (0x1000, 0x2000);
        // Same symbol at 0x5010 in x and 0x7020 in y: page and low bits both differ.
        let x = [adrp_x(0, x_at, 0x5010), 0xd503_201f, add_lo12(1, 0, 0x5010)];
        let y = [adrp_x(0, y_at, 0x7020), 0xd503_201f, add_lo12(1, 0, 0x7020)];
        let (bx, by) = (code(&x), code(&y));
        let same = |tx: u64, ty: u64| (tx, ty) == (0x5010, 0x7020);
        assert_eq!(reference_field(&bx, x_at, &by, y_at, 0, 0, &same), Some(4));
        assert_eq!(reference_field(&bx, x_at, &by, y_at, 8, 0, &same), Some(12));
        // Checking the pages alone would accept this: the same page, another offset in it.
        let other = |tx: u64, ty: u64| (tx, ty) == (0x5000, 0x7000);
        assert_eq!(reference_field(&bx, x_at, &by, y_at, 0, 0, &other), None);
        assert_eq!(reference_field(&bx, x_at, &by, y_at, 8, 0, &other), None);

        // Only the low bits differ (the ADRP words are equal): the load is paired backwards,
        // past an instruction that leaves x2 alone.
        let x = [adrp_x(2, 0, 0x5008), 0x9100_0421, ldr_lo12(3, 2, 0x5008)];
        let y = [adrp_x(2, 0, 0x5010), 0x9100_0421, ldr_lo12(3, 2, 0x5010)];
        assert_eq!(x[0], y[0]);
        assert_eq!(field(&x, 0, &y, 0, &[(0x5008, 0x5010)]), Some(12));
        // ... but not past one that writes x2.
        let x = [adrp_x(2, 0, 0x5008), 0x9100_0442, ldr_lo12(3, 2, 0x5008)];
        let y = [adrp_x(2, 0, 0x5010), 0x9100_0442, ldr_lo12(3, 2, 0x5010)];
        assert_eq!(field(&x, 0, &y, 0, &[(0x5008, 0x5010)]), None);
        // ... nor past a call, for a register calls may change.
        let x = [adrp_x(2, 0, 0x5008), bl(4, 0x40), ldr_lo12(3, 2, 0x5008)];
        let y = [adrp_x(2, 0, 0x5010), bl(4, 0x40), ldr_lo12(3, 2, 0x5010)];
        assert_eq!(field(&x, 0, &y, 0, &[(0x5008, 0x5010)]), None);

        // An ADRP whose page differs and that no low-12-bit instruction uses locates nothing
        // that can be named.
        let x = [adrp_x(0, 0, 0x5000), 0xd65f_03c0];
        let y = [adrp_x(0, 0, 0x6000), 0xd65f_03c0];
        assert_eq!(field(&x, 0, &y, 0, &[(0x5000, 0x6000)]), None);
        // Every use must agree: the second one names another place.
        let x = [
            adrp_x(0, 0, 0x5000),
            add_lo12(1, 0, 0x5010),
            ldr_lo12(2, 0, 0x5018),
        ];
        let y = [
            adrp_x(0, 0, 0x6000),
            add_lo12(1, 0, 0x6010),
            ldr_lo12(2, 0, 0x6020),
        ];
        assert_eq!(
            field(&x, 0, &y, 0, &[(0x5010, 0x6010), (0x5018, 0x6018)]),
            None
        );
        assert_eq!(
            field(&x, 0, &y, 0, &[(0x5010, 0x6010), (0x5018, 0x6020)]),
            Some(4)
        );
    }

    #[test]
    fn register_writes_end_a_pairing() {
        assert!(may_write(add_lo12(2, 0, 0), 2));
        assert!(!may_write(add_lo12(2, 0, 0), 0));
        assert!(may_write(0xa940_03e0 | 2 << 10, 2)); // ldp x0, x2, [sp]
        assert!(may_write(0xf840_8c20, 1)); // ldr x0, [x1, #8]!
        assert!(!may_write(0xf940_0420, 1)); // ldr x0, [x1, #8]
        assert!(may_write(bl(0, 8), 0));
        assert!(!may_write(bl(0, 8), 19));
        // str w0, [x1, #4] only reads w0, but is counted as a write: erring towards yes.
        assert!(may_write(0xb900_0420, 0));
    }
}
