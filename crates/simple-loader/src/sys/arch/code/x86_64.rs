//! x86-64 code: instructions are not decoded. A differing 4-byte field is taken as a
//! displacement when, read relative to the end of an instruction ending there or 1, 2 or 4
//! bytes later (an immediate may follow the displacement), it names the same place in both
//! versions: the packer resolves the module's own PC-relative references, so code that only
//! moved, or whose callees or data moved, differs only there.

/// The end of a 4-byte displacement field covering byte `i` (starting at or after `from`)
/// whose targets `same` accepts.
pub(super) fn reference_field(
    x: &[u8],
    x_at: u64,
    y: &[u8],
    y_at: u64,
    i: usize,
    from: usize,
    same: &dyn Fn(u64, u64) -> bool,
) -> Option<usize> {
    let read = |bytes: &[u8], p: usize| {
        bytes
            .get(p..p + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
    };
    // From `i` down: a displacement that changed by less than 256 differs first in its
    // lowest byte, so the field usually starts at `i`.
    (i.saturating_sub(3).max(from)..=i).rev().find_map(|p| {
        // Bytes before `i` in the field must be equal ones: earlier differences were taken
        // by earlier fields, which end at or before `i`.
        let (dx, dy) = (read(x, p)?, read(y, p)?);
        [0u64, 1, 2, 4].iter().find_map(|&immediate| {
            let next = p as u64 + 4 + immediate;
            if next > x.len() as u64 {
                return None;
            }
            let tx = (x_at + next).checked_add_signed(dx)?;
            let ty = (y_at + next).checked_add_signed(dy)?;
            same(tx, ty).then_some(p + 4)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::reference_field;

    #[test]
    fn a_displacement_to_the_same_place_is_a_field() {
        // call rel32 at 0x1000 in one version and 0x2000 in the other, both to 0x5000.
        let call = |at: u64| {
            let d = (0x5000i64 - (at as i64 + 5)) as i32;
            let mut code = vec![0xe8];
            code.extend(d.to_le_bytes());
            code.push(0xc3);
            code
        };
        let (x, y) = (call(0x1000), call(0x2000));
        let i = (0..x.len()).find(|&i| x[i] != y[i]).unwrap();
        let same = |tx: u64, ty: u64| tx == 0x5000 && ty == 0x5000;
        assert_eq!(
            reference_field(&x, 0x1000, &y, 0x2000, i, 0, &same),
            Some(5)
        );
        let elsewhere = |tx: u64, ty: u64| tx == 0x5000 && ty == 0x6000;
        assert_eq!(
            reference_field(&x, 0x1000, &y, 0x2000, i, 0, &elsewhere),
            None
        );
    }
}
