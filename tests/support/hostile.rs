//! Hostile mapping plugins, written in WAT.
//!
//! Each is a core module in WAT (compiled with the `wat` crate) that speaks
//! the canonical ABI of the `mapper` world by hand; `wit-component` embeds
//! the world from `wit/` and encodes the component, as it does for
//! wit-bindgen guests. A plugin behaves (returns a plain TCP plan) unless the
//! service name starts with `x`, so it passes the engine's load-time trial
//! and misbehaves only when a test asks it to.
//!
//! Canonical ABI layout used below (all offsets in bytes):
//! `result<check-plan, string>` is 224 bytes: discriminant at 0, payload at 4.
//! In `check-plan`: backend 0..56, timeout 56..64, server 64..204 (enabled
//! at +0, sni `option<string>` at +64), notes 204..212, warnings 212..220.
//! `backend` as `http`: discriminant 1 at 0, then the `http-check` at 4:
//! method, uri, version, headers, body at 4, 12, 20, 28, 36 (pointer and
//! length each), default-host at 44, expect at 48; an `http-expect` is 12
//! bytes (negate at 0, matcher at 1, pattern at 4).

use anyhow::Context;
use std::path::Path;

/// How a hostile plugin misbehaves when the service name starts with `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Never misbehaves.
    None,
    /// An endless loop.
    Spin,
    /// Grows memory until refused.
    MemoryBomb,
    /// Executes `unreachable`.
    Trap,
    /// Refuses with a 300 KB message (over the output cap).
    HugeOutput,
    /// Refuses with a message that is not UTF-8.
    InvalidUtf8,
    /// Refuses with a message pointing outside its memory.
    OutOfBounds,
    /// Answers a plan whose `check-sni` holds a newline and a directive.
    InjectsDirective,
    /// Calls `log` 10,000 times, then behaves.
    LogFlood,
    /// Calls `log` with a 60,000-byte message in an endless loop: the host
    /// does the work (copying), the plugin burns almost no instructions.
    LogBomb,
    /// Answers a plan whose 100 notes all point at one 1 MiB string.
    AliasedNotes,
    /// Answers an HTTP check `GET /health` expecting `status 2xx`, which
    /// HAProxy has no syntax for.
    Status2xx,
}

impl Hostility {
    fn body(self) -> &'static str {
        match self {
            Hostility::None => "(call $ok)",
            Hostility::Spin => "(loop $l (br $l)) unreachable",
            Hostility::MemoryBomb => {
                "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) unreachable"
            }
            Hostility::Trap => "unreachable",
            Hostility::HugeOutput => {
                "(drop (memory.grow (i32.const 16)))
                 (call $err (i32.const 400000) (i32.const 300000))"
            }
            Hostility::InvalidUtf8 => "(call $err (i32.const 400) (i32.const 2))",
            Hostility::OutOfBounds => "(call $err (i32.const 0x7fff0000) (i32.const 16))",
            Hostility::InjectsDirective => {
                "(drop (call $ok))
                 (i32.store8 (i32.const 1156) (i32.const 1))
                 (i32.store (i32.const 1160) (i32.const 480))
                 (i32.store (i32.const 1164) (i32.const 22))
                 (i32.const 1024)"
            }
            Hostility::LogFlood => {
                "(local $n i32)
                 (local.set $n (i32.const 10000))
                 (loop $l
                   (call $log (i32.const 2) (i32.const 16) (i32.const 7))
                   (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                   (br_if $l (local.get $n)))
                 (call $ok)"
            }
            Hostility::LogBomb => {
                "(loop $l
                   (call $log (i32.const 2) (i32.const 4096) (i32.const 60000))
                   (br $l))
                 unreachable"
            }
            Hostility::AliasedNotes => {
                "(local $i i32)
                 (drop (memory.grow (i32.const 17)))
                 (drop (call $ok))
                 (loop $l
                   (i32.store (i32.add (i32.const 2048) (i32.mul (local.get $i) (i32.const 8)))
                              (i32.const 131072))
                   (i32.store (i32.add (i32.const 2052) (i32.mul (local.get $i) (i32.const 8)))
                              (i32.const 1048576))
                   (local.set $i (i32.add (local.get $i) (i32.const 1)))
                   (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
                 (i32.store (i32.const 1232) (i32.const 2048))
                 (i32.store (i32.const 1236) (i32.const 100))
                 (i32.const 1024)"
            }
            Hostility::Status2xx => {
                "(drop (call $ok))
                 (i32.store8 (i32.const 1028) (i32.const 1))
                 (i32.store (i32.const 1032) (i32.const 600))
                 (i32.store (i32.const 1036) (i32.const 3))
                 (i32.store (i32.const 1040) (i32.const 608))
                 (i32.store (i32.const 1044) (i32.const 7))
                 (i32.store (i32.const 1048) (i32.const 624))
                 (i32.store (i32.const 1052) (i32.const 8))
                 (i32.store (i32.const 1076) (i32.const 3000))
                 (i32.store (i32.const 1080) (i32.const 1))
                 (i32.store (i32.const 3000) (i32.const 0))
                 (i32.store (i32.const 3004) (i32.const 640))
                 (i32.store (i32.const 3008) (i32.const 3))
                 (i32.const 1024)"
            }
        }
    }

    /// The core module, in WAT.
    pub fn wat(self) -> String {
        format!(
            r#"(module
  (import "$root" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 65536))
  (func $realloc (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (global.set $bump (i32.add (local.get $p) (local.get $size)))
    (block $fits
      (loop $grow
        (br_if $fits (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))
  (data (i32.const 16) "hostile")
  (data (i32.const 32) "0.0.1")
  (data (i32.const 48) "http")
  (data (i32.const 256) "\10\00\00\00\07\00\00\00\20\00\00\00\05\00\00\00\40\01\00\00\01\00\00\00")
  (data (i32.const 320) "\30\00\00\00\04\00\00\00")
  (data (i32.const 400) "\ff\fe")
  (data (i32.const 480) "evil\0abackend stolen\0a;x")
  (data (i32.const 600) "GET")
  (data (i32.const 608) "/health")
  (data (i32.const 624) "HTTP/1.1")
  (data (i32.const 640) "2xx")
  (func (export "info") (result i32) (i32.const 256))
  (func $ok (result i32)
    (memory.fill (i32.const 1024) (i32.const 0) (i32.const 224))
    (i32.store8 (i32.const 1092) (i32.const 1))
    (i32.const 1024))
  (func $err (param $ptr i32) (param $len i32) (result i32)
    (memory.fill (i32.const 1024) (i32.const 0) (i32.const 224))
    (i32.store8 (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))
  (func $hostile (param $args i32) (result i32)
    {body})
  (func (export "map-check") (param $args i32) (result i32)
    (if (result i32)
        (i32.and (i32.gt_u (i32.load offset=4 (local.get $args)) (i32.const 0))
                 (i32.eq (i32.load8_u (i32.load (local.get $args))) (i32.const 120)))
      (then (call $hostile (local.get $args)))
      (else (call $ok)))))
"#,
            body = self.body()
        )
    }

    /// The plugin as a component.
    ///
    /// # Errors
    /// The WAT or the WIT does not parse, or encoding fails.
    pub fn component(self) -> anyhow::Result<Vec<u8>> {
        component_from_core_wat(&self.wat())
    }
}

/// The `wit/` directory of the repository.
pub fn wit_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
}

/// Encodes a core module in WAT as a component of the `mapper` world.
///
/// # Errors
/// The WAT or the WIT does not parse, or the module does not fit the world.
pub fn component_from_core_wat(core_wat: &str) -> anyhow::Result<Vec<u8>> {
    component_from_core_wat_with(core_wat, wit_dir())
}

/// As [`component_from_core_wat`], with the `mapper` world of another WIT directory.
///
/// # Errors
/// As [`component_from_core_wat`].
pub fn component_from_core_wat_with(core_wat: &str, wit: &Path) -> anyhow::Result<Vec<u8>> {
    let mut module = wat::parse_str(core_wat).context("parsing the WAT")?;
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit).context("parsing the WIT")?;
    let world = resolve.select_world(&[package], Some("mapper"))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )?;
    wit_component::ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}
