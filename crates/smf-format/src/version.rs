//! The `version` table: the module's version (semver `major.minor.patch`), the versions its
//! symbols' `version` fields name, its name, and the modules it depends on with the version
//! range each must be in. `docs/FORMAT.md`, *Version table*, is the specification.

use core::fmt;
use core::str::FromStr;

use zerocopy::FromBytes;
use zerocopy::little_endian::U32;

use crate::error::Error;
use crate::types::SectionKind;

/// The only encoding of the table so far.
pub const FORMAT: u32 = 1;

/// A semantic version without pre-release or build parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `MAJOR[.MINOR[.PATCH]]`, missing parts 0; `Err` says what is wrong.
impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Version, String> {
        let mut parts = [0u32; 3];
        let fields: Vec<&str> = text.split('.').collect();
        if fields.len() > 3 {
            return Err(format!("version {text:?} has more than three parts"));
        }
        for (part, field) in parts.iter_mut().zip(&fields) {
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "version {text:?}: {field:?} is not a number (MAJOR.MINOR.PATCH; no \
                     pre-release or build parts)"
                ));
            }
            *part = field
                .parse()
                .map_err(|_| format!("version {text:?}: {field} is too large"))?;
        }
        Ok(Version::new(parts[0], parts[1], parts[2]))
    }
}

/// How a [`VersionReq`] compares, as Cargo's requirement operators do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReqOp {
    /// `*`: any version.
    Any = 0,
    /// `^1.2.3`: at least 1.2.3 and the same left-most non-zero part (`<2.0.0`; for 0.2.3,
    /// `<0.3.0`; for 0.0.3, only 0.0.3).
    Caret = 1,
    /// `~1.2.3`: at least 1.2.3, same major and minor (`<1.3.0`).
    Tilde = 2,
    /// `=1.2.3`: exactly.
    Exact = 3,
    /// `>=1.2.3`: at least.
    AtLeast = 4,
}

impl TryFrom<u8> for ReqOp {
    type Error = u8;
    fn try_from(value: u8) -> Result<ReqOp, u8> {
        Ok(match value {
            0 => ReqOp::Any,
            1 => ReqOp::Caret,
            2 => ReqOp::Tilde,
            3 => ReqOp::Exact,
            4 => ReqOp::AtLeast,
            other => return Err(other),
        })
    }
}

/// A version range a dependency must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionReq {
    pub op: ReqOp,
    /// The range's base version (all zeros for [`ReqOp::Any`]).
    pub version: Version,
}

impl VersionReq {
    pub const ANY: VersionReq = VersionReq {
        op: ReqOp::Any,
        version: Version::new(0, 0, 0),
    };

    /// Whether `v` is in the range.
    pub fn matches(&self, v: &Version) -> bool {
        let base = &self.version;
        match self.op {
            ReqOp::Any => true,
            ReqOp::Exact => v == base,
            ReqOp::AtLeast => v >= base,
            ReqOp::Tilde => v >= base && v.major == base.major && v.minor == base.minor,
            ReqOp::Caret => {
                v >= base
                    && if base.major > 0 {
                        v.major == base.major
                    } else if base.minor > 0 {
                        v.major == 0 && v.minor == base.minor
                    } else {
                        v == base
                    }
            }
        }
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            ReqOp::Any => return f.write_str("*"),
            ReqOp::Caret => "^",
            ReqOp::Tilde => "~",
            ReqOp::Exact => "=",
            ReqOp::AtLeast => ">=",
        };
        write!(f, "{op}{}", self.version)
    }
}

/// `*`, `^V`, `~V`, `=V`, `>=V`, or a bare `V` (which means `^V`, as in Cargo); `V` is
/// `MAJOR[.MINOR[.PATCH]]` with missing parts 0.
impl FromStr for VersionReq {
    type Err = String;

    fn from_str(text: &str) -> Result<VersionReq, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(VersionReq::ANY);
        }
        let (op, rest) = if let Some(rest) = text.strip_prefix(">=") {
            (ReqOp::AtLeast, rest)
        } else if let Some(rest) = text.strip_prefix('^') {
            (ReqOp::Caret, rest)
        } else if let Some(rest) = text.strip_prefix('~') {
            (ReqOp::Tilde, rest)
        } else if let Some(rest) = text.strip_prefix('=') {
            (ReqOp::Exact, rest)
        } else {
            (ReqOp::Caret, text)
        };
        Ok(VersionReq {
            op,
            version: rest.trim().parse()?,
        })
    }
}

/// A module this one depends on: its name and the versions it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency<'data> {
    pub name: &'data str,
    pub req: VersionReq,
}

/// `name@RANGE` (`sqlite@^3.49`), as `smf pack --needed` takes a module dependency; `None`
/// for an argument without `@` (a native library).
pub fn parse_dependency(text: &str) -> Option<Result<(String, VersionReq), String>> {
    let (name, req) = text.split_once('@')?;
    if name.is_empty() {
        return Some(Err(format!("dependency {text:?} has no module name")));
    }
    Some(
        req.parse()
            .map(|req| (name.to_owned(), req))
            .map_err(|e| format!("dependency {text:?}: {e}")),
    )
}

/// Start of the `version` section (24 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
    zerocopy::Unaligned,
)]
#[repr(C)]
pub struct RawVersionHeader {
    pub format: U32,
    pub name_offset: U32,
    pub version_count: U32,
    pub dependency_count: U32,
    pub strings_size: U32,
    pub reserved: U32,
}

/// One entry of the version list (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
    zerocopy::Unaligned,
)]
#[repr(C)]
pub struct RawVersion {
    pub major: U32,
    pub minor: U32,
    pub patch: U32,
    pub reserved: U32,
}

/// One dependency (24 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
    zerocopy::Unaligned,
)]
#[repr(C)]
pub struct RawDependency {
    pub name_offset: U32,
    pub op: u8,
    pub reserved0: [u8; 3],
    pub major: U32,
    pub minor: U32,
    pub patch: U32,
    pub reserved1: U32,
}

/// A validated `version` table, read in place.
#[derive(Debug, Clone, Copy)]
pub struct VersionTable<'data> {
    name: Option<&'data str>,
    versions: &'data [RawVersion],
    dependencies: &'data [RawDependency],
    strings: &'data [u8],
}

fn version_of(raw: &RawVersion) -> Version {
    Version::new(raw.major.get(), raw.minor.get(), raw.patch.get())
}

impl<'data> VersionTable<'data> {
    /// Validates the payload of a `version` section.
    pub fn parse(data: &'data [u8]) -> Result<VersionTable<'data>, Error> {
        let location = format!("{} table", SectionKind::Version);
        let bad = |problem: String| Error::malformed(location.clone(), problem);
        let (header, rest) = RawVersionHeader::ref_from_prefix(data).map_err(|_| {
            bad(format!(
                "{} bytes, shorter than its 24-byte header",
                data.len()
            ))
        })?;
        if header.format.get() != FORMAT {
            return Err(bad(format!(
                "unknown encoding {} (1 is the only one)",
                header.format.get()
            )));
        }
        if header.reserved.get() != 0 {
            return Err(bad("header: reserved word is not zero".into()));
        }
        let (versions_n, deps_n, strings_n) = (
            header.version_count.get() as u64,
            header.dependency_count.get() as u64,
            header.strings_size.get() as u64,
        );
        if versions_n == 0 {
            return Err(bad(
                "no version: entry 0, the module's own, is required".into()
            ));
        }
        let expected = 24 + 16 * versions_n + 24 * deps_n + strings_n;
        if expected != data.len() as u64 {
            return Err(bad(format!(
                "{} versions, {} dependencies and {} bytes of strings take {expected:#x} \
                 bytes, but the section has {:#x}",
                versions_n,
                deps_n,
                strings_n,
                data.len()
            )));
        }
        let (versions, rest) =
            <[RawVersion]>::ref_from_prefix_with_elems(rest, versions_n as usize)
                .map_err(|_| bad("version list cannot be viewed".into()))?;
        let (dependencies, strings) =
            <[RawDependency]>::ref_from_prefix_with_elems(rest, deps_n as usize)
                .map_err(|_| bad("dependency list cannot be viewed".into()))?;
        if !strings.is_empty() && (strings[0] != 0 || strings[strings.len() - 1] != 0) {
            return Err(bad("strings must start and end with a NUL byte".into()));
        }
        let string = |offset: u32, what: &dyn Fn() -> String| -> Result<&'data str, Error> {
            let tail = strings
                .get(offset as usize..)
                .filter(|_| offset != 0)
                .ok_or_else(|| {
                    bad(format!(
                        "{}: name offset {offset:#x} is outside the strings",
                        what()
                    ))
                })?;
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let name = core::str::from_utf8(&tail[..end])
                .map_err(|_| bad(format!("{}: name is not UTF-8", what())))?;
            if name.is_empty() {
                return Err(bad(format!("{}: name is empty", what())));
            }
            Ok(name)
        };
        let name = match header.name_offset.get() {
            0 => None,
            offset => Some(string(offset, &|| "module name".into())?),
        };
        for (i, v) in versions.iter().enumerate() {
            if v.reserved.get() != 0 {
                return Err(bad(format!("version {i}: reserved word is not zero")));
            }
        }
        for (i, d) in dependencies.iter().enumerate() {
            let what = || format!("dependency {i}");
            string(d.name_offset.get(), &what)?;
            let op = ReqOp::try_from(d.op)
                .map_err(|op| bad(format!("{}: unknown range operator {op}", what())))?;
            if d.reserved0 != [0; 3] || d.reserved1.get() != 0 {
                return Err(bad(format!("{}: reserved bytes are not zero", what())));
            }
            if op == ReqOp::Any && (d.major.get(), d.minor.get(), d.patch.get()) != (0, 0, 0) {
                return Err(bad(format!("{}: range `*` with a version", what())));
            }
        }
        Ok(VersionTable {
            name,
            versions,
            dependencies,
            strings,
        })
    }

    /// The module's name, if the table gives one.
    pub fn name(&self) -> Option<&'data str> {
        self.name
    }

    /// The module's own version: entry 0 of the version list.
    pub fn module_version(&self) -> Version {
        version_of(&self.versions[0])
    }

    /// Entry `index` of the version list, which a symbol's `version` field names.
    pub fn version(&self, index: u32) -> Option<Version> {
        self.versions.get(index as usize).map(version_of)
    }

    /// Number of entries of the version list.
    pub fn version_count(&self) -> usize {
        self.versions.len()
    }

    /// The modules this one depends on, in table order.
    pub fn dependencies(&self) -> impl Iterator<Item = Dependency<'data>> + '_ {
        let strings = self.strings;
        self.dependencies.iter().map(move |d| {
            // Checked by `parse`.
            let tail = &strings[d.name_offset.get() as usize..];
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            Dependency {
                name: core::str::from_utf8(&tail[..end]).unwrap_or(""),
                req: VersionReq {
                    op: ReqOp::try_from(d.op).unwrap_or(ReqOp::Any),
                    version: Version::new(d.major.get(), d.minor.get(), d.patch.get()),
                },
            }
        })
    }
}

/// A `version` table to write ([`crate::ModuleBuilder::set_versions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    /// The module's name, which dependencies of other modules name (without one, a loader
    /// uses the file's name).
    pub name: Option<String>,
    /// Entry 0 is the module's version; the others are what symbols' `version` fields name.
    versions: Vec<Version>,
    dependencies: Vec<(String, VersionReq)>,
}

impl Versions {
    /// A table for a module of version `version`.
    pub fn new(version: Version) -> Versions {
        Versions {
            name: None,
            versions: vec![version],
            dependencies: Vec::new(),
        }
    }

    /// The index of `version` in the version list (added if new), for a symbol's `version`
    /// field. The module's own version is 0.
    pub fn index_of(&mut self, version: Version) -> u32 {
        match self.versions.iter().position(|v| *v == version) {
            Some(i) => i as u32,
            None => {
                self.versions.push(version);
                (self.versions.len() - 1) as u32
            }
        }
    }

    /// Adds a dependency on the module named `name`, in the range `req`.
    pub fn require(&mut self, name: &str, req: VersionReq) {
        self.dependencies.push((name.to_owned(), req));
    }

    /// The section's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut strings = Vec::new();
        let mut add = |name: &str| -> Result<u32, Error> {
            if name.is_empty() || name.contains('\0') {
                return Err(Error::Build(format!(
                    "module name {name:?} must be non-empty and without NUL"
                )));
            }
            if strings.is_empty() {
                strings.push(0);
            }
            let offset = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            Ok(offset)
        };
        let name_offset = self.name.as_deref().map(&mut add).transpose()?.unwrap_or(0);
        let mut deps = Vec::with_capacity(self.dependencies.len());
        for (name, req) in &self.dependencies {
            let version = match req.op {
                ReqOp::Any => Version::default(),
                _ => req.version,
            };
            deps.push(RawDependency {
                name_offset: add(name)?.into(),
                op: req.op as u8,
                reserved0: [0; 3],
                major: version.major.into(),
                minor: version.minor.into(),
                patch: version.patch.into(),
                reserved1: 0.into(),
            });
        }
        let header = RawVersionHeader {
            format: FORMAT.into(),
            name_offset: name_offset.into(),
            version_count: (self.versions.len() as u32).into(),
            dependency_count: (deps.len() as u32).into(),
            strings_size: (strings.len() as u32).into(),
            reserved: 0.into(),
        };
        let mut out = zerocopy::IntoBytes::as_bytes(&header).to_vec();
        for v in &self.versions {
            let raw = RawVersion {
                major: v.major.into(),
                minor: v.minor.into(),
                patch: v.patch.into(),
                reserved: 0.into(),
            };
            out.extend_from_slice(zerocopy::IntoBytes::as_bytes(&raw));
        }
        for d in &deps {
            out.extend_from_slice(zerocopy::IntoBytes::as_bytes(d));
        }
        out.extend_from_slice(&strings);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> VersionReq {
        text.parse().unwrap()
    }

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_as_cargo_says() {
        for (range, yes, no) in [
            (
                "^1.2",
                &["1.2.0", "1.9.9"][..],
                &["1.1.9", "2.0.0", "0.9.0"][..],
            ),
            ("1.2.3", &["1.2.3", "1.3.0"], &["1.2.2", "2.0.0"]),
            ("^0.2.3", &["0.2.3", "0.2.9"], &["0.3.0", "0.2.2", "1.0.0"]),
            ("^0.0.3", &["0.0.3"], &["0.0.4", "0.1.0"]),
            ("~1.2", &["1.2.0", "1.2.7"], &["1.3.0", "1.1.0"]),
            ("=1.2.3", &["1.2.3"], &["1.2.4"]),
            (">=1.2", &["1.2.0", "7.0.0"], &["1.1.0"]),
            ("*", &["0.0.0", "9.9.9"], &[]),
        ] {
            let r = req(range);
            for y in yes {
                assert!(r.matches(&v(y)), "{range} should match {y}");
            }
            for n in no {
                assert!(!r.matches(&v(n)), "{range} should not match {n}");
            }
        }
        assert_eq!(req("1.2").to_string(), "^1.2.0");
        assert!("1.x".parse::<Version>().is_err());
        assert!("1.2.3.4".parse::<Version>().is_err());
        assert!("1.2.3-beta".parse::<Version>().is_err());
    }

    #[test]
    fn dependency_arguments() {
        assert_eq!(parse_dependency("libm.so.6"), None);
        assert_eq!(
            parse_dependency("sqlite@^3.49"),
            Some(Ok(("sqlite".into(), req("^3.49.0"))))
        );
        assert!(parse_dependency("@1").unwrap().is_err());
        assert!(parse_dependency("a@x").unwrap().is_err());
    }

    #[test]
    fn a_table_reads_back() {
        let mut t = Versions::new(Version::new(1, 4, 2));
        t.name = Some("geometry".into());
        assert_eq!(t.index_of(Version::new(1, 4, 2)), 0);
        assert_eq!(t.index_of(Version::new(1, 1, 0)), 1);
        t.require("math", req("^2.1"));
        t.require("log", VersionReq::ANY);
        let bytes = t.encode().unwrap();
        let parsed = VersionTable::parse(&bytes).unwrap();
        assert_eq!(parsed.name(), Some("geometry"));
        assert_eq!(parsed.module_version(), Version::new(1, 4, 2));
        assert_eq!(parsed.version(1), Some(Version::new(1, 1, 0)));
        assert_eq!(parsed.version(2), None);
        let deps: Vec<_> = parsed.dependencies().collect();
        assert_eq!(deps[0].name, "math");
        assert_eq!(deps[0].req, req("^2.1"));
        assert_eq!(deps[1].req, VersionReq::ANY);
        // Every byte cut short, or one byte more, is refused.
        for len in 0..bytes.len() {
            assert!(VersionTable::parse(&bytes[..len]).is_err(), "{len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(VersionTable::parse(&longer).is_err());
    }
}
