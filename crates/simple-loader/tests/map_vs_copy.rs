//! Differential test: every randomized module loads to the same section bytes and the same
//! page protections whether its file is mapped (the default) or copied (`map_file: false`),
//! and no image page is ever writable and executable.
// Module files are mapped only on Unix; on Windows the loader copies them.
#![cfg(unix)]

mod common;
use std::collections::BTreeSet;
use std::path::Path;

use simple_loader::{LoadOptions, Module, load};
use smf_format::*;

const PAGE: u64 = 4096;
const ENTRY: usize = 64; // size of a section table entry

/// Seeded, so that a failing case can be replayed with its seed.
struct Rng(fastrand::Rng);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.u64(..n) }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        std::iter::repeat_with(|| self.0.u8(..)).take(n).collect()
    }
}

struct Spec {
    kind: SectionKind,
    vaddr: u64,
    mem_size: u64,
    data: Vec<u8>,
}

/// A random module: sections of random kinds and sizes, placed in a random image order with
/// random gaps, added (so laid out in the file) in another random order, some relocated.
fn random_module(rng: &mut Rng) -> Vec<u8> {
    // Some modules compressed (every payload, or all but code), with payloads that compress.
    let compression = match rng.below(6) {
        0 => Compression::All { level: 3 },
        1 => Compression::AllButCode { level: 3 },
        _ => Compression::None,
    };
    let kinds = [
        SectionKind::Code,
        SectionKind::RoData,
        SectionKind::RelRo,
        SectionKind::Data,
        SectionKind::Bss,
        SectionKind::EhFrame,
        SectionKind::Tls,
    ];
    let count = 1 + rng.below(6) as usize;
    let mut specs = Vec::new();
    let mut vaddr = 0u64;
    let mut have_tls = false;
    for _ in 0..count {
        let mut kind = kinds[rng.below(kinds.len() as u64) as usize];
        if kind == SectionKind::Tls {
            if have_tls {
                kind = SectionKind::Data;
            }
            have_tls = true;
        }
        let file_size = if kind == SectionKind::Bss || rng.chance(10) {
            0
        } else {
            match rng.below(4) {
                0 => 1 + rng.below(64),
                1 => 1 + rng.below(3 * PAGE),
                2 => PAGE * (1 + rng.below(2)),
                _ => PAGE * (1 + rng.below(2)) - 1 - rng.below(16),
            }
        };
        let extra = match rng.below(4) {
            0 | 1 => 0,
            2 => rng.below(64),
            _ => rng.below(2 * PAGE),
        };
        let mut mem_size = file_size + extra;
        if file_size == 0 && rng.chance(30) {
            mem_size = 0;
        }
        let mut data = rng.bytes(file_size as usize);
        if compression != Compression::None && rng.chance(80) {
            // Runs of a few byte values: compresses well.
            for (i, b) in data.iter_mut().enumerate() {
                *b = (i / 7 % 3) as u8;
            }
        }
        if kind == SectionKind::EhFrame {
            // A terminator first: __register_frame reads nothing further.
            for b in data.iter_mut().take(4) {
                *b = 0;
            }
        }
        if rng.chance(30) {
            // Trailing zeros in the payload itself.
            let n = rng.below(data.len() as u64 + 1) as usize;
            let len = data.len();
            data[len - n..].fill(0);
        }
        let at = if mem_size == 0 {
            // Zero-size sections: at 0 or anywhere page-aligned.
            if rng.chance(50) { 0 } else { vaddr }
        } else {
            vaddr += PAGE * rng.below(2) * u64::from(rng.chance(30));
            let at = vaddr;
            vaddr = (vaddr + mem_size).next_multiple_of(PAGE);
            at
        };
        specs.push(Spec {
            kind,
            vaddr: at,
            mem_size,
            data,
        });
    }
    // Random file order.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    if rng.chance(60) {
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    } else {
        order.sort_by_key(|&i| (specs[i].vaddr, i));
    }
    let mut b = ModuleBuilder::new();
    b.arch = common::HOST;
    b.platform = Platform::Linux;
    b.compression = compression;
    let mut relative = BTreeSet::new();
    for &i in &order {
        let s = &specs[i];
        let mut data = s.data.clone();
        if matches!(s.kind, SectionKind::Data | SectionKind::RelRo) && s.mem_size >= 8 {
            for _ in 0..rng.below(4) {
                let off = rng.below(s.mem_size / 8) * 8;
                relative.insert(s.vaddr + off);
                if off + 8 <= data.len() as u64 {
                    let v = rng.below(1 << 20);
                    data[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        b.add_section(LoadedSection {
            kind: s.kind,
            name: "s",
            vaddr: s.vaddr,
            mem_size: s.mem_size,
            align: 8,
            data,
        });
    }
    for offset in relative {
        b.add_relative(offset);
    }
    match b.write() {
        Ok(bytes) => bytes,
        Err(e) => panic!("builder refused: {e}"),
    }
}

fn table(bytes: &[u8]) -> (usize, usize) {
    let offset = u64::from_le_bytes(bytes[0x10..0x18].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(bytes[0x0c..0x10].try_into().unwrap()) as usize;
    (offset, count)
}

fn field(bytes: &[u8], entry: usize, at: usize) -> u64 {
    u64::from_le_bytes(bytes[entry + at..entry + at + 8].try_into().unwrap())
}

fn set_field(bytes: &mut [u8], entry: usize, at: usize, value: u64) {
    bytes[entry + at..entry + at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Moves the payloads around the file: as the image lays them out after the head, or in a
/// random order with random gaps; then maybe garbage after payloads and trailing bytes.
fn relayout(rng: &mut Rng, written: Vec<u8>) -> Vec<u8> {
    let Some(head) = head_len(&written) else {
        return written;
    };
    let head = head as usize;
    let (toff, count) = table(&written);
    let kind_of = |e: usize| u32::from_le_bytes(written[e..e + 4].try_into().unwrap());
    let mut payloads: Vec<(usize, u64, u64, Vec<u8>)> = Vec::new(); // entry, vaddr, mem, data
    for i in 0..count {
        let e = toff + i * ENTRY;
        let kind = SectionKind::try_from(kind_of(e)).unwrap();
        let (off, size) = (field(&written, e, 8), field(&written, e, 16));
        if kind.is_loaded() && size > 0 {
            payloads.push((
                e,
                field(&written, e, 24),
                field(&written, e, 32),
                written[off as usize..(off + size) as usize].to_vec(),
            ));
        }
    }
    let mode = rng.below(3);
    let mut out = written[..head].to_vec();
    let fill_gaps = rng.chance(50);
    let place = |out: &mut Vec<u8>, rng: &mut Rng, at: usize, data: &[u8]| {
        if out.len() < at {
            let n = at - out.len();
            if fill_gaps {
                let g = rng.bytes(n);
                out.extend_from_slice(&g);
            } else {
                out.resize(at, 0);
            }
        }
        out.truncate(at);
        out.extend_from_slice(data);
    };
    match mode {
        0 => return mutate(rng, written, &payloads),
        1 => {
            // As the image: file offset = head + vaddr.
            payloads.sort_by_key(|p| p.1);
            for (e, vaddr, _, data) in &payloads {
                let at = head + *vaddr as usize;
                place(&mut out, rng, at, data);
                set_field(&mut out, *e, 8, at as u64);
            }
        }
        _ => {
            for i in (1..payloads.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                payloads.swap(i, j);
            }
            for (e, _, _, data) in &payloads {
                let at = out.len().next_multiple_of(PAGE as usize)
                    + PAGE as usize * rng.below(2) as usize * usize::from(rng.chance(30));
                place(&mut out, rng, at, data);
                set_field(&mut out, *e, 8, at as u64);
            }
        }
    }
    // Payload entries now point into `out`.
    mutate(rng, out, &payloads)
}

fn mutate(rng: &mut Rng, mut out: Vec<u8>, payloads: &[(usize, u64, u64, Vec<u8>)]) -> Vec<u8> {
    // Garbage right after some payloads, inside their last page (it may be inside mem_size
    // or past it), if nothing else lies there.
    for (e, _, _, _) in payloads {
        if !rng.chance(25) {
            continue;
        }
        let off = field(&out, *e, 8) as usize;
        let size = field(&out, *e, 16) as usize;
        let end = off + size;
        let page_end = end.next_multiple_of(PAGE as usize);
        let others = payloads.iter().any(|(o, _, _, _)| {
            let s = field(&out, *o, 8) as usize;
            o != e && s >= end && s < page_end
        });
        if others || end == page_end {
            continue;
        }
        let n = 1 + rng.below((page_end - end) as u64) as usize;
        let n = n.min(page_end - end);
        if out.len() < end + n {
            out.resize(end + n, 0);
        }
        let g = rng.bytes(n);
        out[end..end + n].copy_from_slice(&g);
    }
    match rng.below(5) {
        0 => {
            let n = 1 + rng.below(64) as usize;
            out.extend(std::iter::repeat_n(0, n));
        }
        1 => {
            let n = 1 + rng.below(64) as usize;
            let g = rng.bytes(n);
            out.extend_from_slice(&g);
        }
        2 => {
            let n = 1 + rng.below(3 * PAGE) as usize;
            let g = rng.bytes(n);
            out.extend_from_slice(&g);
        }
        _ => {}
    }
    if rng.chance(20) {
        // A table moved past the payloads: no head, the whole file is the tables' view.
        let (toff, count) = table(&out);
        for i in 0..count {
            let e = toff + i * ENTRY;
            let kind = u32::from_le_bytes(out[e..e + 4].try_into().unwrap());
            let (off, size) = (field(&out, e, 8) as usize, field(&out, e, 16) as usize);
            if !SectionKind::try_from(kind).unwrap().is_loaded() && size > 0 {
                let t = out[off..off + size].to_vec();
                let at = out.len().next_multiple_of(8);
                out.resize(at, 0);
                out.extend_from_slice(&t);
                set_field(&mut out, e, 8, at as u64);
                break;
            }
        }
    }
    let hash = compute_module_hash(&out).unwrap();
    out[0x30..0x50].copy_from_slice(&hash);
    out
}

fn maps() -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
                f.next()?.to_owned(),
            ))
        })
        .collect()
}

fn perms_at(maps: &[(usize, usize, String)], address: usize) -> String {
    maps.iter()
        .find(|(a, b, _)| (*a..*b).contains(&address))
        .map_or("none".to_owned(), |m| m.2[..3].to_owned())
}

/// Section bytes (relocated words made base-relative) and page protections of `module`.
fn snapshot(module: &Module, parsed: &smf_format::Module<'_>) -> Vec<(Vec<u8>, Vec<String>)> {
    let base = module.base();
    let maps = maps();
    for (a, b, p) in &maps {
        if *a < base + module.image_len() && *b > base {
            assert!(!(p.contains('w') && p.contains('x')), "{a:#x}..{b:#x} {p}");
        }
    }
    let relocated: BTreeSet<u64> = parsed.relative_relocations().into_iter().collect();
    parsed
        .loaded_sections()
        .map(|s| {
            // SAFETY: every loaded section lies inside the module's image, which `module`
            // keeps mapped and readable while the slice is copied.
            let mut bytes = unsafe {
                std::slice::from_raw_parts(
                    (base + s.vaddr as usize) as *const u8,
                    s.mem_size as usize,
                )
            }
            .to_vec();
            for &r in relocated.range(s.vaddr..s.vaddr + s.mem_size) {
                let at = (r - s.vaddr) as usize;
                let v = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
                bytes[at..at + 8].copy_from_slice(&v.wrapping_sub(base as u64).to_le_bytes());
            }
            let pages = (s.vaddr..s.vaddr + s.mem_size)
                .step_by(PAGE as usize)
                .map(|p| perms_at(&maps, base + p as usize))
                .collect();
            (bytes, pages)
        })
        .collect()
}

fn expected(parsed: &smf_format::Module<'_>) -> Vec<Vec<u8>> {
    parsed
        .loaded_sections()
        .map(|s| {
            let mut v = s.payload().unwrap().to_vec();
            v.resize(s.mem_size as usize, 0);
            v
        })
        .collect()
}

/// Cases that loaded a module with compressed payloads.
static COMPRESSED_LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn run_case(dir: &Path, seed: u64) -> (bool, bool) {
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    let written = random_module(&mut rng);
    let bytes = relayout(&mut rng, written);
    let path = dir.join(format!("m{seed}.smf"));
    std::fs::write(&path, &bytes).unwrap();
    let full = match expand_tables(&bytes, &Limits::default()) {
        Ok(Some(full)) => full,
        _ => bytes.clone(),
    };
    let parsed = smf_format::Module::parse(&full);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let mapped = unsafe { load(&path, &LoadOptions::default(), None) };
    let copy_options = LoadOptions::default().with_map_file(false);
    // SAFETY: a module this test built from its own sources; the file is never rewritten in place.
    let copied = unsafe { load(&path, &copy_options, None) };
    let (mapped, copied) = match (mapped, copied, parsed) {
        (Ok(m), Ok(c), Ok(p)) => {
            let want = expected(&p);
            let (sm, sc) = (snapshot(&m, &p), snapshot(&c, &p));
            for (i, ((bm, pm), (bc, pc))) in sm.iter().zip(&sc).enumerate() {
                let s = p.loaded_sections().nth(i).unwrap();
                // Relocated words hold base + addend: compare addends (already relative).
                // Relocated words were made base-relative: the addend, the file's word.
                let w = want[i].clone();
                assert_eq!(
                    bm, bc,
                    "seed {seed}: section {} ({:?}) bytes differ",
                    s.index, s.kind
                );
                assert_eq!(
                    bm, &w,
                    "seed {seed}: section {} ({:?}) not as the file says",
                    s.index, s.kind
                );
                assert_eq!(
                    pm, pc,
                    "seed {seed}: section {} ({:?}) protections differ",
                    s.index, s.kind
                );
            }
            if p.header().flags.contains(ModuleFlags::COMPRESSED) {
                COMPRESSED_LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (true, head_len(&bytes).is_some())
        }
        (Err(m), Err(c), _) => {
            assert_eq!(
                m.to_string().split(':').next(),
                c.to_string().split(':').next(),
                "seed {seed}"
            );
            (false, false)
        }
        (m, c, p) => panic!(
            "seed {seed}: mapped {:?} copied {:?} parse {:?}",
            m.err(),
            c.err(),
            p.err()
        ),
    };
    let _ = std::fs::remove_file(&path);
    (mapped, copied)
}

#[test]
fn mapped_and_copied_images_agree() {
    if common::skip_under_emulator(common::QEMU_MAPS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases: u64 = std::env::var("MAP_VS_COPY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let start: u64 = std::env::var("MAP_VS_COPY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (mut loaded, mut split) = (0, 0);
    for seed in start..start + cases {
        let (ok, headed) = run_case(dir.path(), seed);
        loaded += u64::from(ok);
        split += u64::from(headed);
    }
    let compressed = COMPRESSED_LOADED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{cases} cases, {loaded} loaded, {split} with a head, {compressed} compressed");
    if cases >= 1000 {
        assert!(
            compressed >= cases / 20,
            "too few compressed modules loaded: {compressed}"
        );
    }
}
