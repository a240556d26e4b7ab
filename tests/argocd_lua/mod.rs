//! Argo CD's resource customizations (health checks and actions in Lua) run as Argo CD runs
//! them, with an embedded Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1): the object is the
//! global `obj` (JSON nulls are nil), the script's returned table is the result. For actions,
//! the returned object goes through JSON as Argo CD's does (an empty table is an empty array,
//! then put back as a map where the live object had a map; Lua numbers are floats, whole ones
//! are written as integers), and Argo CD applies it to the API server as a JSON merge patch
//! from the live object, split into a patch of the status subresource and one of the rest
//! (argo-cd `server/application`: `RunResourceAction`, `splitStatusPatch`).
//!
//! The scripts are read from Argo CD's tree in the shared corpus
//! (`../shared/compat/argo-cd/resource_customizations/argoproj.io`, never copied into this
//! repository); [`corpus`] returns `None` with a notice where it is absent, unless
//! `ROLLOUTS_REQUIRE_COMPAT=1`.

#![allow(dead_code)]

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Argo CD's `argoproj.io` resource customizations, or `None` (with a printed notice) where
/// the shared corpus is absent; absence fails when `ROLLOUTS_REQUIRE_COMPAT=1`.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/compat/argo-cd/resource_customizations/argoproj.io");
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("ROLLOUTS_REQUIRE_COMPAT").as_deref() == Ok("1") {
        panic!(
            "Argo CD corpus not found at {} (required in this run)",
            p.display()
        );
    }
    eprintln!(
        "NOTICE: Argo CD corpus not found at {}; skipping its scripts",
        p.display()
    );
    None
}

/// A file of the corpus (panics when missing from a present corpus).
pub fn read(dir: &Path, relative: &str) -> String {
    let p = dir.join(relative);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// A YAML file of the corpus as JSON.
pub fn read_yaml(dir: &Path, relative: &str) -> Value {
    serde_yaml::from_str(&read(dir, relative)).unwrap_or_else(|e| panic!("parsing {relative}: {e}"))
}

/// Argo CD's health: `Healthy`, `Progressing`, `Suspended`, `Degraded`, ... and a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Health {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// One action as discovery offers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAction {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub icon_class: String,
}

/// A Lua state with the libraries Argo CD opens (base, table, string, math, and `os` for
/// `os.date`, which the restart action requires).
fn vm(obj: &Value) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::PACKAGE,
        LuaOptions::default(),
    )?;
    let opts = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let v = lua.to_value_with(obj, opts)?;
    lua.globals().set("obj", v)?;
    Ok(lua)
}

fn run(obj: &Value, script: &str) -> mlua::Result<(Lua, mlua::Value)> {
    let lua = vm(obj)?;
    let out = lua.load(script).eval::<mlua::Value>()?;
    Ok((lua, out))
}

fn to_json(lua: &Lua, v: mlua::Value) -> mlua::Result<Value> {
    let opts = DeserializeOptions::new()
        .encode_empty_tables_as_array(true)
        .deny_unsupported_types(false);
    lua.from_value_with(v, opts)
}

/// Runs a `health.lua`.
pub fn health(script: &str, obj: &Value) -> mlua::Result<Health> {
    let (lua, out) = run(obj, script)?;
    let v = to_json(&lua, out)?;
    serde_json::from_value(v).map_err(mlua::Error::external)
}

/// Runs a `discovery.lua`: the actions it offers, by name.
pub fn discovery(script: &str, obj: &Value) -> mlua::Result<Vec<ResourceAction>> {
    let (lua, out) = run(obj, script)?;
    let v = to_json(&lua, out)?;
    let mut actions = Vec::new();
    for (name, a) in v.as_object().cloned().unwrap_or_default() {
        let mut a: ResourceAction = serde_json::from_value(a).map_err(mlua::Error::external)?;
        a.name = name;
        actions.push(a);
    }
    actions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(actions)
}

/// Runs an `action.lua`: the object it returns, as Argo CD reads it back.
pub fn action(script: &str, obj: &Value) -> mlua::Result<Value> {
    let (lua, out) = run(obj, script)?;
    let mut v = to_json(&lua, out)?;
    whole_numbers(&mut v);
    if let (Some(new), Some(old)) = (v.as_object_mut(), obj.as_object()) {
        clean_returned(new, old);
    }
    Ok(v)
}

/// Lua numbers are floats; the JSON Argo CD writes has integers where they are whole.
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.as_i64().is_none()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(whole_numbers),
        Value::Object(m) => m.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Argo CD's `cleanReturnedObj`: an empty array where the live object had a map is the map.
fn clean_returned(new: &mut Map<String, Value>, old: &Map<String, Value>) {
    for (k, old_v) in old {
        let Some(new_v) = new.get_mut(k) else {
            continue;
        };
        match (new_v, old_v) {
            (Value::Object(n), Value::Object(o)) => clean_returned(n, o),
            (Value::Array(n), Value::Object(o)) if n.is_empty() => {
                new.insert(k.clone(), Value::Object(o.clone()));
            }
            (Value::Array(n), Value::Array(o)) => {
                for (nv, ov) in n.iter_mut().zip(o) {
                    if let (Value::Object(nm), Value::Object(om)) = (nv, ov) {
                        clean_returned(nm, om);
                    }
                }
            }
            _ => {}
        }
    }
}

/// RFC 7386 merge patch turning `live` into `new` (evanphx/json-patch `CreateMergePatch`, as
/// Argo CD computes it): removed keys are null, changed arrays and scalars are replaced. The
/// controller's own status diff computes exactly that; `{}` when nothing changed.
pub fn create_merge_patch(live: &Value, new: &Value) -> Value {
    rollouts::controller::diff::merge_diff(live, new).unwrap_or_else(|| Value::Object(Map::new()))
}

/// Argo CD's `splitStatusPatch`: (patch of everything but status, patch of status), each
/// `None` when empty.
pub fn split_status_patch(patch: &Value) -> (Option<Value>, Option<Value>) {
    let mut rest = patch.as_object().cloned().unwrap_or_default();
    let status = rest
        .remove("status")
        .map(|s| Value::Object([("status".to_string(), s)].into_iter().collect()));
    let rest = (!rest.is_empty()).then_some(Value::Object(rest));
    (rest, status)
}

/// `expected` holds in `actual` the way Argo CD's action tests compare (gitops-engine's
/// two-way diff drops from the result the map fields the expectation does not have): every
/// field of `expected` is in `actual` with the same value; lists have the same length and
/// their items compare the same way. Returns the first difference.
pub fn contained(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => contained(ev, av, &p)?,
                    None if ev.is_null() => {}
                    None => return Err(format!("{p}: expected {ev}, missing")),
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                contained(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) if numbers_equal(e, a) || e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}
