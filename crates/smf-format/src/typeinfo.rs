//! The `typeinfo` table: C-level descriptions of function signatures and data layouts, which
//! a symbol's or an import's `type_id` points into (`docs/FORMAT.md`, *Type information*).
//!
//! [`TypeInfo::parse`] validates a table; [`TypeTableBuilder`] makes one (the packer from
//! DWARF, a compiler through the writer); [`compare`] decides structurally whether two types,
//! of the same table or of two modules, are the same; [`TypeInfo::display`] and
//! [`parse_type`] turn a type into text and back, for `smf inspect` and for callers that state
//! what they expect (the C API).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::Error;

/// The version of the encoding this crate reads and writes.
pub const TYPEINFO_VERSION: u32 = 1;

/// Header of the `typeinfo` table (16 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawTypeHeader {
    pub version: U32,
    pub type_count: U32,
    pub member_count: U32,
    pub strings_size: U32,
}

/// One type entry (32 bytes); type id `i` (from 1) is entry `i - 1`.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawType {
    pub kind: u8,
    pub flags: u8,
    pub conv: u8,
    pub reserved: u8,
    pub name: U32,
    pub size: U64,
    pub target: U32,
    pub align: U32,
    pub first: U32,
    pub count: U32,
}

/// One member entry (24 bytes): a field of a struct or union, or a parameter of a function.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawMember {
    pub name: U32,
    pub ty: U32,
    pub offset: U64,
    pub bit_offset: U16,
    pub bit_size: U16,
    pub reserved: U32,
}

const _: () = assert!(size_of::<RawTypeHeader>() == 16);
const _: () = assert!(size_of::<RawType>() == 32);
const _: () = assert!(size_of::<RawMember>() == 24);

/// What a type entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    /// An integer of `size` bytes; signed if [`TYPE_SIGNED`] is set.
    Int,
    /// C's `_Bool`.
    Bool,
    /// An IEEE floating-point number of 4 or 8 bytes, or the platform's `long double` (16).
    Float,
    /// A pointer to `target` (0: `void`).
    Pointer,
    /// `count` elements of type `target`.
    Array,
    Struct,
    Union,
    /// A function returning `target` (0: `void`) and taking the `count` members from `first`.
    Function,
}

impl TypeKind {
    pub fn as_raw(self) -> u8 {
        match self {
            TypeKind::Int => 1,
            TypeKind::Bool => 2,
            TypeKind::Float => 3,
            TypeKind::Pointer => 4,
            TypeKind::Array => 5,
            TypeKind::Struct => 6,
            TypeKind::Union => 7,
            TypeKind::Function => 8,
        }
    }

    fn from_raw(value: u8) -> Option<TypeKind> {
        Some(match value {
            1 => TypeKind::Int,
            2 => TypeKind::Bool,
            3 => TypeKind::Float,
            4 => TypeKind::Pointer,
            5 => TypeKind::Array,
            6 => TypeKind::Struct,
            7 => TypeKind::Union,
            8 => TypeKind::Function,
            _ => return None,
        })
    }

    /// The flag bits an entry of this kind may have.
    fn allowed_flags(self) -> u8 {
        match self {
            TypeKind::Int => TYPE_SIGNED,
            TypeKind::Struct | TypeKind::Union => TYPE_INCOMPLETE,
            TypeKind::Function => TYPE_VARIADIC | TYPE_UNPROTOTYPED,
            _ => 0,
        }
    }
}

/// `Int`: the integer is signed.
pub const TYPE_SIGNED: u8 = 0x01;
/// `Struct`, `Union`: only declared (`struct s;`); size, alignment and members unknown.
pub const TYPE_INCOMPLETE: u8 = 0x01;
/// `Function`: takes more arguments after its parameters (`...`).
pub const TYPE_VARIADIC: u8 = 0x01;
/// `Function`: declared without a prototype (`int f()` in C before C23); its parameters are
/// not known.
pub const TYPE_UNPROTOTYPED: u8 = 0x02;

/// Calling convention of a function type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallConv {
    /// The platform's C calling convention (System V AMD64 on x86-64, AAPCS64 on aarch64).
    C,
    /// Cranelift's `tail` convention.
    Tail,
}

impl CallConv {
    pub fn as_raw(self) -> u8 {
        match self {
            CallConv::C => 1,
            CallConv::Tail => 2,
        }
    }

    fn from_raw(value: u8) -> Option<CallConv> {
        match value {
            1 => Some(CallConv::C),
            2 => Some(CallConv::Tail),
            _ => None,
        }
    }
}

/// A validated `typeinfo` table, read in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeInfo<'data> {
    types: &'data [RawType],
    members: &'data [RawMember],
    strings: &'data [u8],
}

/// A type entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Type<'data> {
    pub id: u32,
    pub kind: TypeKind,
    pub flags: u8,
    /// Functions only.
    pub conv: Option<CallConv>,
    /// Structs and unions: the tag (`""` if anonymous); other kinds `""`.
    pub name: &'data str,
    /// Size in bytes (0 for functions and incomplete types).
    pub size: u64,
    /// Pointer target, array element, function result; 0 is `void`.
    pub target: u32,
    /// Structs and unions: alignment in bytes, 0 if unknown.
    pub align: u32,
    /// Array element count; struct, union and function member count.
    pub count: u32,
    first: u32,
}

/// A field of a struct or union, or a function parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'data> {
    pub name: &'data str,
    pub ty: u32,
    /// Byte offset from the start of the struct (0 for union fields and parameters).
    pub offset: u64,
    /// Bit-fields: the first bit, counted from bit 0 of the byte at `offset`.
    pub bit_offset: u16,
    /// Bit-fields: the width in bits; 0 for every other member.
    pub bit_size: u16,
}

impl Type<'_> {
    pub fn is_signed(&self) -> bool {
        self.kind == TypeKind::Int && self.flags & TYPE_SIGNED != 0
    }
    pub fn is_incomplete(&self) -> bool {
        matches!(self.kind, TypeKind::Struct | TypeKind::Union) && self.flags & TYPE_INCOMPLETE != 0
    }
    pub fn is_variadic(&self) -> bool {
        self.kind == TypeKind::Function && self.flags & TYPE_VARIADIC != 0
    }
    pub fn is_unprototyped(&self) -> bool {
        self.kind == TypeKind::Function && self.flags & TYPE_UNPROTOTYPED != 0
    }
}

fn bad(location: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::malformed(location, problem)
}

/// Bounds the work of comparing and printing types of a crafted table.
const MAX_STEPS: usize = 1 << 20;

impl<'data> TypeInfo<'data> {
    /// Validates `bytes`, the payload of a `typeinfo` section. Every rule of FORMAT.md's
    /// *Type information* is checked; errors name the entry and the field.
    pub fn parse(bytes: &'data [u8]) -> Result<TypeInfo<'data>, Error> {
        if bytes.is_empty() {
            return Ok(TypeInfo::default());
        }
        let (header, rest) = RawTypeHeader::ref_from_prefix(bytes).map_err(|_| {
            bad(
                "typeinfo",
                format!("{} bytes are too few for the 16-byte header", bytes.len()),
            )
        })?;
        if header.version.get() != TYPEINFO_VERSION {
            return Err(Error::Unsupported(format!(
                "typeinfo version {} (this reader understands {TYPEINFO_VERSION})",
                header.version.get()
            )));
        }
        let (types_n, members_n, strings_n) = (
            u64::from(header.type_count.get()),
            u64::from(header.member_count.get()),
            u64::from(header.strings_size.get()),
        );
        let expected = 16 + 32 * types_n + 24 * members_n + strings_n;
        if bytes.len() as u64 != expected {
            return Err(bad(
                "typeinfo",
                format!(
                    "size is {:#x} bytes but the header's counts ({types_n} types, {members_n} members, {strings_n:#x} bytes of strings) need {expected:#x}",
                    bytes.len()
                ),
            ));
        }
        let (types, rest) = <[RawType]>::ref_from_prefix_with_elems(rest, types_n as usize)
            .map_err(|_| bad("typeinfo", "type entries cannot be viewed"))?;
        let (members, strings) =
            <[RawMember]>::ref_from_prefix_with_elems(rest, members_n as usize)
                .map_err(|_| bad("typeinfo", "member entries cannot be viewed"))?;
        if !strings.is_empty() && (strings[0] != 0 || strings[strings.len() - 1] != 0) {
            return Err(bad(
                "typeinfo strings",
                "must start and end with a NUL byte",
            ));
        }
        let info = TypeInfo {
            types,
            members,
            strings,
        };
        for (i, t) in types.iter().enumerate() {
            info.check_type(i as u32 + 1, t)?;
        }
        Ok(info)
    }

    fn string(&self, offset: u32) -> Option<&'data str> {
        if offset == 0 {
            return Some("");
        }
        let tail = self.strings.get(offset as usize..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        core::str::from_utf8(&tail[..end]).ok()
    }

    fn entry_size(&self, id: u32) -> u64 {
        self.types
            .get((id as usize).wrapping_sub(1))
            .map_or(0, |t| t.size.get())
    }

    /// Whether type `id` may refer to `to`: `void`, an earlier type, or a struct or union.
    /// Only records may come later, so every cycle of references passes through one.
    fn refers_back(&self, id: u32, to: u32) -> bool {
        to < id
            || self
                .types
                .get((to as usize).wrapping_sub(1))
                .is_some_and(|t| {
                    t.kind == TypeKind::Struct.as_raw() || t.kind == TypeKind::Union.as_raw()
                })
    }

    fn check_type(&self, id: u32, t: &RawType) -> Result<(), Error> {
        let location = || format!("typeinfo type {id}");
        let kind = TypeKind::from_raw(t.kind)
            .ok_or_else(|| bad(location(), format!("unknown kind {}", t.kind)))?;
        if t.flags & !kind.allowed_flags() != 0 {
            return Err(bad(
                location(),
                format!("flags {:#x} are not defined for a {kind:?}", t.flags),
            ));
        }
        if t.reserved != 0 {
            return Err(bad(location(), "reserved byte is not zero"));
        }
        let n = self.types.len() as u64;
        let valid_ref = |r: u32| u64::from(r) <= n;
        let (size, target, align, first, count) = (
            t.size.get(),
            t.target.get(),
            t.align.get(),
            t.first.get(),
            t.count.get(),
        );
        let name = self.string(t.name.get()).ok_or_else(|| {
            bad(
                location(),
                format!(
                    "name offset {:#x} is not a string of the table",
                    t.name.get()
                ),
            )
        })?;
        let is_record = matches!(kind, TypeKind::Struct | TypeKind::Union);
        if !is_record && !name.is_empty() {
            return Err(bad(location(), "only structs and unions have a name"));
        }
        if kind == TypeKind::Function {
            if CallConv::from_raw(t.conv).is_none() {
                return Err(bad(
                    location(),
                    format!("unknown calling convention {}", t.conv),
                ));
            }
        } else if t.conv != 0 {
            return Err(bad(
                location(),
                "calling convention on a type that is not a function",
            ));
        }
        let fields_zero = |what: &str, values: &[u32]| {
            if values.iter().any(|&v| v != 0) {
                Err(bad(location(), format!("{what} must be 0 for a {kind:?}")))
            } else {
                Ok(())
            }
        };
        match kind {
            TypeKind::Int | TypeKind::Bool | TypeKind::Float => {
                let ok = match kind {
                    TypeKind::Int => matches!(size, 1 | 2 | 4 | 8 | 16),
                    TypeKind::Bool => size == 1,
                    _ => matches!(size, 4 | 8 | 16),
                };
                if !ok {
                    return Err(bad(
                        location(),
                        format!("size {size} is not valid for a {kind:?}"),
                    ));
                }
                fields_zero(
                    "target, align, first and count",
                    &[target, align, first, count],
                )?;
            }
            TypeKind::Pointer => {
                if size != 8 {
                    return Err(bad(location(), format!("pointer size {size} is not 8")));
                }
                if !valid_ref(target) {
                    return Err(bad(
                        location(),
                        format!("target {target} is not a type id (table has {n})"),
                    ));
                }
                if !self.refers_back(id, target) {
                    return Err(bad(
                        location(),
                        format!("target {target} is neither an earlier type nor a struct or union"),
                    ));
                }
                fields_zero("align, first and count", &[align, first, count])?;
            }
            TypeKind::Array => {
                if target == 0 || !valid_ref(target) {
                    return Err(bad(
                        location(),
                        format!("element {target} is not a type id (table has {n})"),
                    ));
                }
                if self.types[target as usize - 1].kind == TypeKind::Function.as_raw() {
                    return Err(bad(location(), "element is a function type"));
                }
                if !self.refers_back(id, target) {
                    return Err(bad(
                        location(),
                        format!(
                            "element {target} is neither an earlier type nor a struct or union"
                        ),
                    ));
                }
                let total = self.entry_size(target).checked_mul(u64::from(count));
                if total != Some(size) {
                    return Err(bad(
                        location(),
                        format!(
                            "size {size} is not {count} elements of {} bytes",
                            self.entry_size(target)
                        ),
                    ));
                }
                fields_zero("align and first", &[align, first])?;
            }
            TypeKind::Struct | TypeKind::Union | TypeKind::Function => {
                if kind != TypeKind::Function && align != 0 && !align.is_power_of_two() {
                    return Err(bad(
                        location(),
                        format!("alignment {align} is not a power of two"),
                    ));
                }
                let incomplete = is_record && t.flags & TYPE_INCOMPLETE != 0;
                let unprototyped = kind == TypeKind::Function && t.flags & TYPE_UNPROTOTYPED != 0;
                if incomplete && (size != 0 || align != 0 || count != 0 || first != 0) {
                    return Err(bad(
                        location(),
                        "an incomplete type has no size, alignment or members",
                    ));
                }
                if unprototyped && (count != 0 || first != 0 || t.flags & TYPE_VARIADIC != 0) {
                    return Err(bad(
                        location(),
                        "an unprototyped function lists no parameters",
                    ));
                }
                if kind == TypeKind::Function {
                    if size != 0 || align != 0 {
                        return Err(bad(location(), "a function type has no size or alignment"));
                    }
                    if !valid_ref(target) {
                        return Err(bad(
                            location(),
                            format!("result {target} is not a type id (table has {n})"),
                        ));
                    }
                    if target != 0
                        && self.types[target as usize - 1].kind == TypeKind::Function.as_raw()
                    {
                        return Err(bad(location(), "result is a function type"));
                    }
                    if !self.refers_back(id, target) {
                        return Err(bad(
                            location(),
                            format!(
                                "result {target} is neither an earlier type nor a struct or union"
                            ),
                        ));
                    }
                } else if target != 0 {
                    return Err(bad(location(), "target must be 0 for a struct or union"));
                }
                let end = u64::from(first) + u64::from(count);
                if end > self.members.len() as u64 {
                    return Err(bad(
                        location(),
                        format!(
                            "members {first}..{end} are outside the member table ({} entries)",
                            self.members.len()
                        ),
                    ));
                }
                for (j, m) in self.members[first as usize..end as usize]
                    .iter()
                    .enumerate()
                {
                    self.check_member(id, kind, size, j, m)?;
                }
            }
        }
        Ok(())
    }

    fn check_member(
        &self,
        id: u32,
        kind: TypeKind,
        size: u64,
        j: usize,
        m: &RawMember,
    ) -> Result<(), Error> {
        let location = || format!("typeinfo type {id} member {j}");
        let n = self.types.len() as u64;
        let ty = m.ty.get();
        if ty == 0 || u64::from(ty) > n {
            return Err(bad(
                location(),
                format!("type {ty} is not a type id (table has {n})"),
            ));
        }
        if m.reserved.get() != 0 {
            return Err(bad(location(), "reserved field is not zero"));
        }
        self.string(m.name.get()).ok_or_else(|| {
            bad(
                location(),
                format!(
                    "name offset {:#x} is not a string of the table",
                    m.name.get()
                ),
            )
        })?;
        let member = &self.types[ty as usize - 1];
        if member.kind == TypeKind::Function.as_raw() {
            return Err(bad(location(), "a member cannot be a function"));
        }
        let (offset, bit_offset, bit_size) = (m.offset.get(), m.bit_offset.get(), m.bit_size.get());
        if kind == TypeKind::Function {
            if offset != 0 || bit_offset != 0 || bit_size != 0 {
                return Err(bad(
                    location(),
                    "a parameter has no offset and is not a bit-field",
                ));
            }
            if !self.refers_back(id, ty) {
                return Err(bad(
                    location(),
                    format!("type {ty} is neither an earlier type nor a struct or union"),
                ));
            }
            return Ok(());
        }
        let member_size = member.size.get();
        if bit_size == 0 {
            if bit_offset != 0 {
                return Err(bad(location(), "bit offset without a bit size"));
            }
            if offset.checked_add(member_size).is_none_or(|end| end > size) {
                return Err(bad(
                    location(),
                    format!(
                        "bytes {offset:#x}+{member_size:#x} run past the end of the type ({size:#x} bytes)"
                    ),
                ));
            }
        } else {
            if member.kind != TypeKind::Int.as_raw() && member.kind != TypeKind::Bool.as_raw() {
                return Err(bad(location(), "a bit-field must be an integer"));
            }
            let end_bit = offset
                .checked_mul(8)
                .and_then(|b| b.checked_add(u64::from(bit_offset) + u64::from(bit_size)));
            // A member may be a later type, not checked yet: its size may be anything.
            if u64::from(bit_size) > member_size.saturating_mul(8)
                || end_bit.is_none_or(|end| end > size.saturating_mul(8))
            {
                return Err(bad(
                    location(),
                    format!(
                        "bit-field of {bit_size} bits at byte {offset:#x} bit {bit_offset} does not fit"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The number of types; ids run from 1 to this.
    pub fn len(&self) -> u32 {
        self.types.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Type `id` (from 1); `None` for 0 or an id past the table.
    pub fn get(&self, id: u32) -> Option<Type<'data>> {
        let t = self.types.get((id as usize).checked_sub(1)?)?;
        Some(Type {
            id,
            kind: TypeKind::from_raw(t.kind)?,
            flags: t.flags,
            conv: CallConv::from_raw(t.conv),
            name: self.string(t.name.get()).unwrap_or(""),
            size: t.size.get(),
            target: t.target.get(),
            align: t.align.get(),
            count: t.count.get(),
            first: t.first.get(),
        })
    }

    /// The fields of a struct or union, or the parameters of a function.
    pub fn members(&self, ty: &Type<'_>) -> impl Iterator<Item = Member<'data>> + '_ {
        let range = match ty.kind {
            TypeKind::Struct | TypeKind::Union | TypeKind::Function => {
                ty.first as usize..ty.first as usize + ty.count as usize
            }
            _ => 0..0,
        };
        self.members
            .get(range)
            .unwrap_or(&[])
            .iter()
            .map(|m| Member {
                name: self.string(m.name.get()).unwrap_or(""),
                ty: m.ty.get(),
                offset: m.offset.get(),
                bit_offset: m.bit_offset.get(),
                bit_size: m.bit_size.get(),
            })
    }

    /// `id` as text: `fn(i32, *u8) -> i64`, `*struct point`, `[f64; 4]` (the syntax
    /// [`parse_type`] reads). Structs and unions are named, not expanded: see
    /// [`TypeInfo::describe_record`]. 0 is `void`.
    pub fn display(&self, id: u32) -> String {
        let mut out = String::new();
        self.write_type(&mut out, id, 0);
        out
    }

    fn write_type(&self, out: &mut String, id: u32, depth: usize) {
        if depth > 32 {
            out.push_str("...");
            return;
        }
        let Some(t) = self.get(id) else {
            out.push_str("void");
            return;
        };
        match t.kind {
            TypeKind::Int => {
                let _ = write!(
                    out,
                    "{}{}",
                    if t.is_signed() { 'i' } else { 'u' },
                    t.size.wrapping_mul(8)
                );
            }
            TypeKind::Bool => out.push_str("bool"),
            TypeKind::Float => {
                let _ = write!(out, "f{}", t.size.wrapping_mul(8));
            }
            TypeKind::Pointer => {
                out.push('*');
                self.write_type(out, t.target, depth + 1);
            }
            TypeKind::Array => {
                out.push('[');
                self.write_type(out, t.target, depth + 1);
                let _ = write!(out, "; {}]", t.count);
            }
            TypeKind::Struct | TypeKind::Union => {
                out.push_str(if t.kind == TypeKind::Struct {
                    "struct "
                } else {
                    "union "
                });
                if t.name.is_empty() {
                    let _ = write!(out, "#{id}");
                } else {
                    out.push_str(t.name);
                }
            }
            TypeKind::Function => {
                if t.conv == Some(CallConv::Tail) {
                    out.push_str("tail ");
                }
                out.push_str("fn(");
                if t.is_unprototyped() {
                    out.push_str("..?");
                }
                for (i, m) in self.members(&t).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.write_type(out, m.ty, depth + 1);
                }
                if t.is_variadic() {
                    out.push_str(if t.count > 0 { ", ..." } else { "..." });
                }
                out.push(')');
                if t.target != 0 {
                    out.push_str(" -> ");
                    self.write_type(out, t.target, depth + 1);
                }
            }
        }
    }

    /// A struct or union with its layout: `struct point { x: i32 @0, y: i32 @4 } (8 bytes,
    /// align 4)`; `None` for other kinds.
    pub fn describe_record(&self, id: u32) -> Option<String> {
        let t = self.get(id)?;
        if !matches!(t.kind, TypeKind::Struct | TypeKind::Union) {
            return None;
        }
        let mut out = self.display(id);
        if t.is_incomplete() {
            out.push_str(" (incomplete)");
            return Some(out);
        }
        out.push_str(" {");
        for (i, m) in self.members(&t).enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(
                out,
                "{}: {} @{}",
                if m.name.is_empty() { "_" } else { m.name },
                self.display(m.ty),
                m.offset
            );
            if m.bit_size != 0 {
                let _ = write!(out, ".{}:{}", m.bit_offset, m.bit_size);
            }
        }
        let _ = write!(out, " }} ({} bytes, align {})", t.size, t.align);
        Some(out)
    }

    /// The structs and unions `id` reaches (through pointers, arrays, fields, parameters),
    /// each once, in the order first reached.
    pub fn records_reached(&self, id: u32) -> Vec<u32> {
        let (mut seen, mut out, mut stack) = (HashSet::new(), Vec::new(), vec![id]);
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || seen.len() > MAX_STEPS {
                continue;
            }
            let Some(t) = self.get(id) else { continue };
            if matches!(t.kind, TypeKind::Struct | TypeKind::Union) {
                out.push(id);
            }
            let mut next: Vec<u32> = self.members(&t).map(|m| m.ty).collect();
            if t.target != 0 {
                next.push(t.target);
            }
            stack.extend(next.into_iter().rev());
        }
        out
    }
}

/// How two types differ: the path from the compared types to the first difference, and what
/// differs there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDifference {
    /// Such as `parameter 2`, `result`, `*struct state field hp`; empty at the top.
    pub path: String,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for TypeDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} became {}", self.old, self.new)
        } else {
            write!(f, "{}: {} became {}", self.path, self.old, self.new)
        }
    }
}

/// How [`compare`] treats `void *` on the first side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Both sides must have the same types everywhere (a reload).
    Exact,
    /// The first side is what a caller expects: its `*void` accepts a pointer to anything
    /// and its incomplete structs accept any struct of that name.
    Expectation,
}

/// Whether type `a` of table `ta` and type `b` of table `tb` are the same, structurally: the
/// same kinds, sizes, signedness, field offsets, names and types, parameter and result types,
/// calling conventions. Struct and union tags are compared only where a side is incomplete
/// (all that is known of it then). Cyclic types (a list node pointing to its own struct) are
/// compared as the same when no difference is found along any path. 0 is `void`.
pub fn compare(
    ta: &TypeInfo<'_>,
    a: u32,
    tb: &TypeInfo<'_>,
    b: u32,
    mode: Match,
) -> Result<(), TypeDifference> {
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut stack: Vec<(u32, u32, String)> = vec![(a, b, String::new())];
    while let Some((a, b, path)) = stack.pop() {
        if !seen.insert((a, b)) {
            continue;
        }
        if seen.len() > MAX_STEPS {
            return Err(TypeDifference {
                path,
                old: "a type too large to compare".into(),
                new: "a type too large to compare".into(),
            });
        }
        let differ = |what_a: String, what_b: String| TypeDifference {
            path: path.clone(),
            old: what_a,
            new: what_b,
        };
        let (x, y) = match (ta.get(a), tb.get(b)) {
            (None, None) => continue,
            (Some(x), Some(y)) => (x, y),
            _ => return Err(differ(ta.display(a), tb.display(b))),
        };
        let join = |step: &str| {
            if path.is_empty() {
                step.to_owned()
            } else {
                format!("{path}, {step}")
            }
        };
        if x.kind != y.kind {
            return Err(differ(ta.display(a), tb.display(b)));
        }
        match x.kind {
            TypeKind::Int | TypeKind::Bool | TypeKind::Float => {
                if x.size != y.size || x.flags != y.flags {
                    return Err(differ(ta.display(a), tb.display(b)));
                }
            }
            TypeKind::Pointer => {
                if mode == Match::Expectation && x.target == 0 {
                    continue;
                }
                if (x.target == 0) != (y.target == 0) {
                    return Err(differ(ta.display(a), tb.display(b)));
                }
                let step = join(&format!("pointee of {}", ta.display(a)));
                stack.push((x.target, y.target, step));
            }
            TypeKind::Array => {
                if x.count != y.count {
                    return Err(differ(ta.display(a), tb.display(b)));
                }
                stack.push((x.target, y.target, join("element")));
            }
            TypeKind::Struct | TypeKind::Union => {
                // All that is known of an incomplete type is its tag: a module that only
                // declares `struct s` agrees with any `struct s`.
                if x.is_incomplete() || y.is_incomplete() {
                    if x.name != y.name || x.name.is_empty() {
                        return Err(differ(ta.display(a), tb.display(b)));
                    }
                    continue;
                }
                let record = ta.display(a);
                if x.size != y.size {
                    return Err(differ(
                        format!("{record} of {} bytes", x.size),
                        format!("{} of {} bytes", tb.display(b), y.size),
                    ));
                }
                if x.align != 0 && y.align != 0 && x.align != y.align {
                    return Err(differ(
                        format!("{record} aligned to {}", x.align),
                        format!("{} aligned to {}", tb.display(b), y.align),
                    ));
                }
                let (xs, ys): (Vec<Member<'_>>, Vec<Member<'_>>) =
                    (ta.members(&x).collect(), tb.members(&y).collect());
                for (i, (p, q)) in xs.iter().zip(&ys).enumerate() {
                    let field = |m: &Member<'_>, t: &TypeInfo<'_>| {
                        let mut s = format!(
                            "field {} {}: {} at offset {}",
                            i,
                            if m.name.is_empty() { "_" } else { m.name },
                            t.display(m.ty),
                            m.offset
                        );
                        if m.bit_size != 0 {
                            let _ =
                                write!(s, " bits {}..{}", m.bit_offset, m.bit_offset + m.bit_size);
                        }
                        s
                    };
                    if p.offset != q.offset
                        || p.bit_offset != q.bit_offset
                        || p.bit_size != q.bit_size
                        || (!p.name.is_empty() && !q.name.is_empty() && p.name != q.name)
                    {
                        return Err(TypeDifference {
                            path: join(&record),
                            old: field(p, ta),
                            new: field(q, tb),
                        });
                    }
                    let name = if p.name.is_empty() {
                        format!("field {i}")
                    } else {
                        format!("field {}", p.name)
                    };
                    stack.push((p.ty, q.ty, join(&format!("{record} {name}"))));
                }
                if xs.len() != ys.len() {
                    let list = |ms: &[Member<'_>]| {
                        ms.iter()
                            .map(|m| if m.name.is_empty() { "_" } else { m.name })
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return Err(TypeDifference {
                        path: join(&record),
                        old: format!("{} fields ({})", xs.len(), list(&xs)),
                        new: format!("{} fields ({})", ys.len(), list(&ys)),
                    });
                }
            }
            TypeKind::Function => {
                if mode == Match::Expectation && x.is_unprototyped() {
                    continue;
                }
                if x.conv != y.conv || x.flags != y.flags || x.count != y.count {
                    return Err(differ(ta.display(a), tb.display(b)));
                }
                let params: Vec<(u32, u32)> = ta
                    .members(&x)
                    .map(|m| m.ty)
                    .zip(tb.members(&y).map(|m| m.ty))
                    .collect();
                for (i, (p, q)) in params.into_iter().enumerate().rev() {
                    stack.push((p, q, join(&format!("parameter {}", i + 1))));
                }
                stack.push((x.target, y.target, join("result")));
            }
        }
    }
    Ok(())
}

/// Builds a `typeinfo` table. Scalar, pointer, array and function types are shared when
/// added twice; structs and unions are made with [`TypeTableBuilder::declare_record`] and
/// given their layout later with [`TypeTableBuilder::define_record`], so that a struct may
/// point to itself.
#[derive(Debug, Clone, Default)]
pub struct TypeTableBuilder {
    types: Vec<RawType>,
    members: Vec<RawMember>,
    strings: Vec<u8>,
    string_offsets: HashMap<String, u32>,
    shared: HashMap<Vec<u8>, u32>,
}

/// A field of a struct or union for [`TypeTableBuilder::define_record`], or a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: u32,
    pub offset: u64,
    pub bit_offset: u16,
    pub bit_size: u16,
}

impl TypeTableBuilder {
    pub fn new() -> TypeTableBuilder {
        TypeTableBuilder::default()
    }

    /// The number of types added.
    pub fn len(&self) -> u32 {
        self.types.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The kind of type `id` added so far.
    pub fn kind_of(&self, id: u32) -> Option<TypeKind> {
        TypeKind::from_raw(self.types.get((id as usize).checked_sub(1)?)?.kind)
    }

    /// The size of type `id` as added so far (0 for a record not yet given its layout).
    pub fn size_of(&self, id: u32) -> Option<u64> {
        Some(self.types.get((id as usize).checked_sub(1)?)?.size.get())
    }

    fn string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&o) = self.string_offsets.get(s) {
            return o;
        }
        if self.strings.is_empty() {
            self.strings.push(0);
        }
        let o = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_offsets.insert(s.to_owned(), o);
        o
    }

    fn push(&mut self, t: RawType, params: &[Field]) -> u32 {
        let first = self.members.len() as u32;
        let mut t = t;
        if t.kind == TypeKind::Function.as_raw() {
            t.first = U32::new(if params.is_empty() { 0 } else { first });
            t.count = U32::new(params.len() as u32);
        }
        let mut key = t.as_bytes().to_vec();
        for p in params {
            key.extend_from_slice(&p.ty.to_le_bytes());
        }
        key[24..28].fill(0); // `first` differs between equal functions
        if let Some(&id) = self.shared.get(&key) {
            return id;
        }
        for p in params {
            self.members.push(RawMember {
                name: U32::new(0),
                ty: U32::new(p.ty),
                offset: U64::new(0),
                bit_offset: U16::new(0),
                bit_size: U16::new(0),
                reserved: U32::new(0),
            });
        }
        self.types.push(t);
        let id = self.types.len() as u32;
        self.shared.insert(key, id);
        id
    }

    fn scalar(kind: TypeKind, flags: u8, size: u64, target: u32) -> RawType {
        RawType {
            kind: kind.as_raw(),
            flags,
            conv: 0,
            reserved: 0,
            name: U32::new(0),
            size: U64::new(size),
            target: U32::new(target),
            align: U32::new(0),
            first: U32::new(0),
            count: U32::new(0),
        }
    }

    /// An integer of `size` bytes (1, 2, 4, 8 or 16).
    pub fn int(&mut self, size: u64, signed: bool) -> u32 {
        self.push(
            Self::scalar(TypeKind::Int, if signed { TYPE_SIGNED } else { 0 }, size, 0),
            &[],
        )
    }

    pub fn bool(&mut self) -> u32 {
        self.push(Self::scalar(TypeKind::Bool, 0, 1, 0), &[])
    }

    /// A floating-point type of `size` bytes (4, 8 or 16).
    pub fn float(&mut self, size: u64) -> u32 {
        self.push(Self::scalar(TypeKind::Float, 0, size, 0), &[])
    }

    /// A pointer to `target` (0: `void`).
    pub fn pointer(&mut self, target: u32) -> u32 {
        self.push(Self::scalar(TypeKind::Pointer, 0, 8, target), &[])
    }

    /// `count` elements of `element`, whose size must be known already.
    pub fn array(&mut self, element: u32, count: u32) -> u32 {
        let size = self
            .types
            .get((element as usize).wrapping_sub(1))
            .map_or(0, |t| t.size.get())
            .saturating_mul(u64::from(count));
        let mut t = Self::scalar(TypeKind::Array, 0, size, element);
        t.count = U32::new(count);
        self.push(t, &[])
    }

    /// A function returning `result` (0: `void`) and taking `params` (their types).
    pub fn function(&mut self, conv: CallConv, result: u32, params: &[u32], variadic: bool) -> u32 {
        let mut t = Self::scalar(
            TypeKind::Function,
            if variadic { TYPE_VARIADIC } else { 0 },
            0,
            result,
        );
        t.conv = conv.as_raw();
        let params: Vec<Field> = params
            .iter()
            .map(|&ty| Field {
                name: String::new(),
                ty,
                offset: 0,
                bit_offset: 0,
                bit_size: 0,
            })
            .collect();
        self.push(t, &params)
    }

    /// A function declared without a prototype (`int f()`), returning `result`.
    pub fn unprototyped_function(&mut self, conv: CallConv, result: u32) -> u32 {
        let mut t = Self::scalar(TypeKind::Function, TYPE_UNPROTOTYPED, 0, result);
        t.conv = conv.as_raw();
        self.push(t, &[])
    }

    /// A new struct (or union) with tag `name` (`""`: anonymous), incomplete until
    /// [`TypeTableBuilder::define_record`] gives it a layout. Never shared.
    pub fn declare_record(&mut self, union: bool, name: &str) -> u32 {
        let name = self.string(name);
        let mut t = Self::scalar(
            if union {
                TypeKind::Union
            } else {
                TypeKind::Struct
            },
            TYPE_INCOMPLETE,
            0,
            0,
        );
        t.name = U32::new(name);
        self.types.push(t);
        self.types.len() as u32
    }

    /// Gives record `id` (from [`TypeTableBuilder::declare_record`]) its size, alignment (0 if
    /// unknown) and fields.
    pub fn define_record(
        &mut self,
        id: u32,
        size: u64,
        align: u32,
        fields: &[Field],
    ) -> Result<(), Error> {
        let first = self.members.len() as u32;
        for f in fields {
            let name = self.string(&f.name);
            self.members.push(RawMember {
                name: U32::new(name),
                ty: U32::new(f.ty),
                offset: U64::new(f.offset),
                bit_offset: U16::new(f.bit_offset),
                bit_size: U16::new(f.bit_size),
                reserved: U32::new(0),
            });
        }
        let t = self
            .types
            .get_mut((id as usize).wrapping_sub(1))
            .filter(|t| {
                t.flags & TYPE_INCOMPLETE != 0
                    && matches!(
                        TypeKind::from_raw(t.kind),
                        Some(TypeKind::Struct | TypeKind::Union)
                    )
            })
            .ok_or_else(|| Error::Build(format!("type {id} is not a declared struct or union")))?;
        t.flags = 0;
        t.size = U64::new(size);
        t.align = U32::new(align);
        t.first = U32::new(if fields.is_empty() { 0 } else { first });
        t.count = U32::new(fields.len() as u32);
        Ok(())
    }

    /// Copies type `id` of `from`, and every type it reaches, into this table; returns its id
    /// here (0 for 0).
    pub fn import(&mut self, from: &TypeInfo<'_>, id: u32) -> u32 {
        let mut map: HashMap<u32, u32> = HashMap::new();
        self.import_with(from, id, &mut map)
    }

    fn import_with(&mut self, from: &TypeInfo<'_>, root: u32, map: &mut HashMap<u32, u32>) -> u32 {
        // Records first get an id (so cycles close), everything else is built bottom-up.
        let order = {
            let (mut seen, mut post, mut stack) = (HashSet::new(), Vec::new(), vec![(root, false)]);
            while let Some((id, done)) = stack.pop() {
                if done {
                    post.push(id);
                    continue;
                }
                if id == 0 || map.contains_key(&id) || !seen.insert(id) {
                    continue;
                }
                let Some(t) = from.get(id) else { continue };
                stack.push((id, true));
                if !matches!(
                    t.kind,
                    TypeKind::Struct | TypeKind::Union | TypeKind::Pointer
                ) {
                    let mut next: Vec<u32> = from.members(&t).map(|m| m.ty).collect();
                    next.push(t.target);
                    stack.extend(next.into_iter().map(|n| (n, false)));
                } else {
                    // Through a pointer or a record a cycle may close: declare records first.
                    let mut next: Vec<u32> = from.members(&t).map(|m| m.ty).collect();
                    next.push(t.target);
                    for n in next {
                        stack.push((n, false));
                    }
                }
            }
            post
        };
        for &id in &order {
            if let Some(t) = from.get(id) {
                if matches!(t.kind, TypeKind::Struct | TypeKind::Union) && !map.contains_key(&id) {
                    let new = self.declare_record(t.kind == TypeKind::Union, t.name);
                    map.insert(id, new);
                }
            }
        }
        let lookup = |map: &HashMap<u32, u32>, id: u32| {
            if id == 0 {
                0
            } else {
                map.get(&id).copied().unwrap_or(0)
            }
        };
        // Pointers may point to types later in `order` only through records, which are
        // declared: a pointer's target is either a record (declared) or earlier in post-order.
        for &id in &order {
            let Some(t) = from.get(id) else { continue };
            let new = match t.kind {
                TypeKind::Int => self.int(t.size, t.is_signed()),
                TypeKind::Bool => self.bool(),
                TypeKind::Float => self.float(t.size),
                TypeKind::Pointer => self.pointer(lookup(map, t.target)),
                // The element may be a struct not given its layout yet: the size is the
                // source's (validated there), not computed from it.
                TypeKind::Array => {
                    let mut entry = Self::scalar(TypeKind::Array, 0, t.size, lookup(map, t.target));
                    entry.count = U32::new(t.count);
                    self.push(entry, &[])
                }
                TypeKind::Function => {
                    let conv = t.conv.unwrap_or(CallConv::C);
                    if t.is_unprototyped() {
                        self.unprototyped_function(conv, lookup(map, t.target))
                    } else {
                        let params: Vec<u32> =
                            from.members(&t).map(|m| lookup(map, m.ty)).collect();
                        self.function(conv, lookup(map, t.target), &params, t.is_variadic())
                    }
                }
                TypeKind::Struct | TypeKind::Union => continue,
            };
            map.insert(id, new);
        }
        for &id in &order {
            let Some(t) = from.get(id) else { continue };
            if matches!(t.kind, TypeKind::Struct | TypeKind::Union) && !t.is_incomplete() {
                let fields: Vec<Field> = from
                    .members(&t)
                    .map(|m| Field {
                        name: m.name.to_owned(),
                        ty: lookup(map, m.ty),
                        offset: m.offset,
                        bit_offset: m.bit_offset,
                        bit_size: m.bit_size,
                    })
                    .collect();
                let _ = self.define_record(lookup(map, id), t.size, t.align, &fields);
            }
        }
        lookup(map, root)
    }

    /// The table's bytes, the payload of a `typeinfo` section.
    pub fn encode(&self) -> Vec<u8> {
        let header = RawTypeHeader {
            version: U32::new(TYPEINFO_VERSION),
            type_count: U32::new(self.types.len() as u32),
            member_count: U32::new(self.members.len() as u32),
            strings_size: U32::new(self.strings.len() as u32),
        };
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(self.types.as_bytes());
        out.extend_from_slice(self.members.as_bytes());
        out.extend_from_slice(&self.strings);
        out
    }
}

/// A type and the table that holds it, owned: what a caller expects, or a type kept after the
/// module it came from is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedType {
    table: Vec<u8>,
    id: u32,
}

impl OwnedType {
    /// Type `id` of `from` with everything it reaches.
    pub fn copy_of(from: &TypeInfo<'_>, id: u32) -> OwnedType {
        let mut builder = TypeTableBuilder::new();
        let id = builder.import(from, id);
        OwnedType {
            table: builder.encode(),
            id,
        }
    }

    /// Type `id` of the table `builder` made.
    pub fn from_builder(builder: &TypeTableBuilder, id: u32) -> OwnedType {
        OwnedType {
            table: builder.encode(),
            id,
        }
    }

    /// The table (made by this crate's builder, so it parses) and the type's id in it.
    pub fn view(&self) -> (TypeInfo<'_>, u32) {
        let table = TypeInfo::parse(&self.table);
        debug_assert!(table.is_ok(), "a builder's table is refused: {table:?}");
        (table.unwrap_or_default(), self.id)
    }

    pub fn id(&self) -> u32 {
        self.id
    }
}

impl std::fmt::Display for OwnedType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (table, id) = self.view();
        f.write_str(&table.display(id))
    }
}

/// Reads a type written as [`TypeInfo::display`] writes it, into `builder`, and returns its
/// id there (0 for `void`). C's names of the LP64 platforms are accepted for scalars
/// (`char`, `short`, `int`, `long`, `long long`, `unsigned` with each, `size_t`, `intN_t`,
/// `uintN_t`, `float`, `double`, `_Bool`), and `struct NAME` stands for any struct of that tag.
pub fn parse_type(builder: &mut TypeTableBuilder, text: &str) -> Result<u32, Error> {
    let tokens = tokenize(text)?;
    let mut p = TextParser {
        tokens,
        at: 0,
        text,
        records: HashMap::new(),
    };
    let id = p.ty(builder, 0)?;
    if p.at != p.tokens.len() {
        return Err(p.error(format!("unexpected `{}`", p.tokens[p.at])));
    }
    Ok(id)
}

fn tokenize(text: &str) -> Result<Vec<String>, Error> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == '#' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(text[i..end].to_owned());
        } else if c == '-' && chars.peek().map(|&(_, d)| d) == Some('>') {
            chars.next();
            tokens.push("->".into());
        } else if c == '.' && text[i..].starts_with("...") {
            chars.next();
            chars.next();
            tokens.push("...".into());
        } else if "*()[];,".contains(c) {
            tokens.push(c.to_string());
        } else {
            return Err(Error::malformed(
                format!("type `{text}`"),
                format!("unexpected character `{c}`"),
            ));
        }
    }
    Ok(tokens)
}

struct TextParser<'t> {
    tokens: Vec<String>,
    at: usize,
    text: &'t str,
    records: HashMap<(bool, String), u32>,
}

impl TextParser<'_> {
    fn error(&self, problem: String) -> Error {
        Error::malformed(format!("type `{}`", self.text), problem)
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, Error> {
        let t = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| self.error("ends too early".into()))?;
        self.at += 1;
        Ok(t)
    }

    fn expect(&mut self, token: &str) -> Result<(), Error> {
        let t = self.next()?;
        if t != token {
            return Err(self.error(format!("expected `{token}`, found `{t}`")));
        }
        Ok(())
    }

    fn ty(&mut self, b: &mut TypeTableBuilder, depth: usize) -> Result<u32, Error> {
        if depth > 64 {
            return Err(self.error("nested too deeply".into()));
        }
        let t = self.next()?;
        match t.as_str() {
            "*" => {
                let target = self.ty(b, depth + 1)?;
                Ok(b.pointer(target))
            }
            "[" => {
                let element = self.ty(b, depth + 1)?;
                if element == 0 {
                    return Err(self.error("an array of void".into()));
                }
                self.expect(";")?;
                let n = self.next()?;
                let count: u32 = n
                    .parse()
                    .map_err(|_| self.error(format!("`{n}` is not an element count")))?;
                self.expect("]")?;
                Ok(b.array(element, count))
            }
            "fn" | "tail" => {
                let conv = if t == "tail" {
                    self.expect("fn")?;
                    CallConv::Tail
                } else {
                    CallConv::C
                };
                self.expect("(")?;
                let (mut params, mut variadic) = (Vec::new(), false);
                if self.peek() != Some(")") {
                    loop {
                        if self.peek() == Some("...") {
                            self.at += 1;
                            variadic = true;
                            break;
                        }
                        let p = self.ty(b, depth + 1)?;
                        if p == 0 {
                            return Err(self.error("a parameter of type void".into()));
                        }
                        params.push(p);
                        if self.peek() == Some(",") {
                            self.at += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(")")?;
                let result = if self.peek() == Some("->") {
                    self.at += 1;
                    self.ty(b, depth + 1)?
                } else {
                    0
                };
                Ok(b.function(conv, result, &params, variadic))
            }
            "struct" | "union" => {
                let name = self.next()?;
                if name.starts_with('#')
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(self.error(format!("`{name}` is not a struct tag")));
                }
                let key = (t == "union", name.clone());
                if let Some(&id) = self.records.get(&key) {
                    return Ok(id);
                }
                let id = b.declare_record(t == "union", &name);
                self.records.insert(key, id);
                Ok(id)
            }
            "void" => Ok(0),
            "bool" | "_Bool" => Ok(b.bool()),
            "unsigned" | "signed" => {
                let signed = t == "signed";
                let size = match self.peek() {
                    Some("char") => 1,
                    Some("short") => 2,
                    Some("int") => 4,
                    Some("long") => {
                        self.at += 1;
                        if self.peek() == Some("long") {
                            self.at += 1;
                        }
                        if self.peek() == Some("int") {
                            self.at += 1;
                        }
                        return Ok(b.int(8, signed));
                    }
                    _ => return Ok(b.int(4, signed)),
                };
                self.at += 1;
                if size == 2 && self.peek() == Some("int") {
                    self.at += 1;
                }
                Ok(b.int(size, signed))
            }
            "long" => {
                while matches!(self.peek(), Some("long" | "int")) {
                    self.at += 1;
                }
                if self.peek() == Some("double") {
                    self.at += 1;
                    return Ok(b.float(16));
                }
                Ok(b.int(8, true))
            }
            "short" => {
                if self.peek() == Some("int") {
                    self.at += 1;
                }
                Ok(b.int(2, true))
            }
            other => scalar(b, other).ok_or_else(|| self.error(format!("unknown type `{other}`"))),
        }
    }
}

fn scalar(b: &mut TypeTableBuilder, name: &str) -> Option<u32> {
    let int = |b: &mut TypeTableBuilder, size, signed| Some(b.int(size, signed));
    match name {
        "char" | "int8_t" => int(b, 1, true),
        "int" | "int32_t" => int(b, 4, true),
        "size_t" | "uintptr_t" => int(b, 8, false),
        "ssize_t" | "intptr_t" | "ptrdiff_t" => int(b, 8, true),
        "int16_t" => int(b, 2, true),
        "int64_t" => int(b, 8, true),
        "uint8_t" => int(b, 1, false),
        "uint16_t" => int(b, 2, false),
        "uint32_t" => int(b, 4, false),
        "uint64_t" => int(b, 8, false),
        "float" => Some(b.float(4)),
        "double" => Some(b.float(8)),
        _ => {
            let (first, digits) = name.split_at(1);
            let bits: u64 = digits.parse().ok()?;
            match (first, bits) {
                ("i", 8 | 16 | 32 | 64 | 128) => int(b, bits / 8, true),
                ("u", 8 | 16 | 32 | 64 | 128) => int(b, bits / 8, false),
                ("f", 32 | 64 | 128) => Some(b.float(bits / 8)),
                _ => None,
            }
        }
    }
}

/// Rust types with a C-level description, so that a host can state the type of a function it
/// looks up ([`describe`]); `extern "C" fn` types of up to six parameters of these types are
/// described too. A raw pointer is described as `*void`, which accepts a pointer to anything.
pub trait CType {
    /// Adds the type to `builder` and returns its id (0 for `()`: `void`).
    fn describe(builder: &mut TypeTableBuilder) -> u32;
}

macro_rules! c_int {
    ($($t:ty => $size:expr, $signed:expr;)*) => {$(
        impl CType for $t {
            fn describe(b: &mut TypeTableBuilder) -> u32 { b.int($size, $signed) }
        }
    )*};
}

c_int! {
    i8 => 1, true; i16 => 2, true; i32 => 4, true; i64 => 8, true; i128 => 16, true; isize => 8, true;
    u8 => 1, false; u16 => 2, false; u32 => 4, false; u64 => 8, false; u128 => 16, false; usize => 8, false;
}

impl CType for () {
    fn describe(_: &mut TypeTableBuilder) -> u32 {
        0
    }
}
impl CType for bool {
    fn describe(b: &mut TypeTableBuilder) -> u32 {
        b.bool()
    }
}
impl CType for f32 {
    fn describe(b: &mut TypeTableBuilder) -> u32 {
        b.float(4)
    }
}
impl CType for f64 {
    fn describe(b: &mut TypeTableBuilder) -> u32 {
        b.float(8)
    }
}
impl<T> CType for *const T {
    fn describe(b: &mut TypeTableBuilder) -> u32 {
        b.pointer(0)
    }
}
impl<T> CType for *mut T {
    fn describe(b: &mut TypeTableBuilder) -> u32 {
        b.pointer(0)
    }
}

macro_rules! c_fn {
    ($($p:ident),*) => {
        impl<R: CType $(, $p: CType)*> CType for extern "C" fn($($p),*) -> R {
            fn describe(b: &mut TypeTableBuilder) -> u32 {
                let result = R::describe(b);
                let params = [$($p::describe(b)),*];
                b.function(CallConv::C, result, &params, false)
            }
        }
        impl<R: CType $(, $p: CType)*> CType for unsafe extern "C" fn($($p),*) -> R {
            fn describe(b: &mut TypeTableBuilder) -> u32 {
                <extern "C" fn($($p),*) -> R as CType>::describe(b)
            }
        }
    };
}

c_fn!();
c_fn!(A);
c_fn!(A, B);
c_fn!(A, B, C);
c_fn!(A, B, C, D);
c_fn!(A, B, C, D, E);
c_fn!(A, B, C, D, E, F);

/// The description of `T`, owned.
pub fn describe<T: CType>() -> OwnedType {
    let mut builder = TypeTableBuilder::new();
    let id = T::describe(&mut builder);
    OwnedType::from_builder(&builder, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point_table() -> (Vec<u8>, u32, u32) {
        let mut b = TypeTableBuilder::new();
        let i32_ = b.int(4, true);
        let point = b.declare_record(false, "point");
        let next = b.pointer(point);
        b.define_record(
            point,
            16,
            8,
            &[
                Field {
                    name: "x".into(),
                    ty: i32_,
                    offset: 0,
                    bit_offset: 0,
                    bit_size: 0,
                },
                Field {
                    name: "y".into(),
                    ty: i32_,
                    offset: 4,
                    bit_offset: 0,
                    bit_size: 0,
                },
                Field {
                    name: "next".into(),
                    ty: next,
                    offset: 8,
                    bit_offset: 0,
                    bit_size: 0,
                },
            ],
        )
        .unwrap();
        let f = b.function(CallConv::C, i32_, &[next, i32_], false);
        (b.encode(), point, f)
    }

    #[test]
    fn round_trip_and_display() {
        let (bytes, point, f) = point_table();
        let info = TypeInfo::parse(&bytes).unwrap();
        assert_eq!(info.display(f), "fn(*struct point, i32) -> i32");
        assert_eq!(
            info.describe_record(point).unwrap(),
            "struct point { x: i32 @0, y: i32 @4, next: *struct point @8 } (16 bytes, align 8)"
        );
        let mut b = TypeTableBuilder::new();
        let parsed = parse_type(&mut b, "fn(*struct point, int) -> int32_t").unwrap();
        let bytes2 = b.encode();
        let expected = TypeInfo::parse(&bytes2).unwrap();
        compare(&expected, parsed, &info, f, Match::Expectation).unwrap();
        // An incomplete struct agrees with any struct of its tag, in both modes.
        compare(&expected, parsed, &info, f, Match::Exact).unwrap();
        let mut b = TypeTableBuilder::new();
        let loose = parse_type(&mut b, "fn(*void, int) -> int").unwrap();
        let bytes3 = b.encode();
        let loose_info = TypeInfo::parse(&bytes3).unwrap();
        compare(&loose_info, loose, &info, f, Match::Expectation).unwrap();
        assert_eq!(
            compare(&loose_info, loose, &info, f, Match::Exact)
                .unwrap_err()
                .to_string(),
            "parameter 1: *void became *struct point"
        );
        let mut b = TypeTableBuilder::new();
        let wrong = parse_type(&mut b, "fn(*void, long) -> int").unwrap();
        let bytes4 = b.encode();
        let wrong_info = TypeInfo::parse(&bytes4).unwrap();
        assert_eq!(
            compare(&wrong_info, wrong, &info, f, Match::Expectation)
                .unwrap_err()
                .to_string(),
            "parameter 2: i64 became i32"
        );
    }

    #[test]
    fn cyclic_types_compare_and_copy() {
        let (bytes, point, f) = point_table();
        let info = TypeInfo::parse(&bytes).unwrap();
        let copy = OwnedType::copy_of(&info, f);
        let (table, id) = copy.view();
        assert_eq!(table.display(id), info.display(f));
        compare(&info, f, &table, id, Match::Exact).unwrap();
        let copy = OwnedType::copy_of(&info, point);
        let (table, id) = copy.view();
        assert_eq!(table.describe_record(id), info.describe_record(point));
    }

    #[test]
    fn changes_are_named() {
        let (bytes, point, _) = point_table();
        let old = TypeInfo::parse(&bytes).unwrap();
        let mut b = TypeTableBuilder::new();
        let i64_ = b.int(8, true);
        let i32_ = b.int(4, true);
        let p = b.declare_record(false, "point");
        let next = b.pointer(p);
        b.define_record(
            p,
            16,
            8,
            &[
                Field {
                    name: "x".into(),
                    ty: i32_,
                    offset: 0,
                    bit_offset: 0,
                    bit_size: 0,
                },
                Field {
                    name: "y".into(),
                    ty: i32_,
                    offset: 4,
                    bit_offset: 0,
                    bit_size: 0,
                },
                Field {
                    name: "next".into(),
                    ty: next,
                    offset: 8,
                    bit_offset: 0,
                    bit_size: 0,
                },
            ],
        )
        .unwrap();
        let f = b.function(CallConv::C, i64_, &[next, i32_], false);
        let bytes2 = b.encode();
        let new = TypeInfo::parse(&bytes2).unwrap();
        compare(&old, point, &new, p, Match::Exact).unwrap();
        let (_, _, old_f) = point_table();
        let e = compare(&old, old_f, &new, f, Match::Exact).unwrap_err();
        assert_eq!(e.to_string(), "result: i32 became i64");
    }

    #[test]
    fn describes_rust_fn_types() {
        let d = describe::<extern "C" fn(i64, *mut u8) -> f64>();
        assert_eq!(d.to_string(), "fn(i64, *void) -> f64");
    }

    #[test]
    fn bad_tables_are_refused() {
        let (bytes, _, _) = point_table();
        // Every truncation and every single-byte change either parses or is an error.
        assert!(TypeInfo::parse(&[]).unwrap().is_empty());
        for len in 1..bytes.len() {
            assert!(TypeInfo::parse(&bytes[..len]).is_err());
        }
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                if let Ok(info) = TypeInfo::parse(&b) {
                    // What the fuzz target asserts: a type is the same as itself and as its
                    // copy, which prints alike.
                    for id in 0..=info.len() + 1 {
                        let text = info.display(id);
                        assert_eq!(compare(&info, id, &info, id, Match::Exact), Ok(()));
                        let copy = OwnedType::copy_of(&info, id);
                        let (table, copied) = copy.view();
                        // (An anonymous struct is named by its id, which the copy renumbers.)
                        if !text.contains('#') {
                            assert_eq!(table.display(copied), text, "byte {i} = {v}");
                        }
                        assert_eq!(
                            compare(&info, id, &table, copied, Match::Exact),
                            Ok(()),
                            "byte {i} = {v}: {text}"
                        );
                    }
                }
            }
        }
        let mut b = bytes.clone();
        b[16] = 99;
        assert_eq!(
            TypeInfo::parse(&b).unwrap_err().to_string(),
            "typeinfo type 1: unknown kind 99"
        );
    }
}
