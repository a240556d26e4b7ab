//! Indexes kept in step with a reflector store: fed the same watch events just before the
//! store is, so "which objects relate to X" costs a hash look-up instead of a scan of every
//! cached object (the cost of one event no longer grows with the number of Rollouts).
//!
//! An index maps keys (derived from each object by a function) to the objects that have them.
//! Like a store, it keeps serving its previous content while a relist is under way and swaps
//! at `InitDone`. Readers treat it as a hint to be confirmed against the store: an entry may
//! run a few events ahead of the store, never behind it.

use kube::runtime::reflector::{Lookup, ObjectRef};
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, RwLock};

type Keys<R, Q> = fn(&R) -> Vec<Q>;

struct State<R: Lookup, Q> {
    by_key: HashMap<Q, HashSet<ObjectRef<R>>>,
    of: HashMap<ObjectRef<R>, Vec<Q>>,
}

impl<R, Q> Default for State<R, Q>
where
    R: Lookup,
{
    fn default() -> Self {
        State {
            by_key: HashMap::new(),
            of: HashMap::new(),
        }
    }
}

impl<R, Q> State<R, Q>
where
    R: Lookup,
    R::DynamicType: Default + Eq + Hash + Clone,
    Q: Eq + Hash + Clone,
{
    fn remove(&mut self, r: &ObjectRef<R>) {
        for k in self.of.remove(r).unwrap_or_default() {
            if let Some(set) = self.by_key.get_mut(&k) {
                set.remove(r);
                if set.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    fn insert(&mut self, r: ObjectRef<R>, keys: Vec<Q>, keep_all: bool) {
        self.remove(&r);
        if keys.is_empty() && !keep_all {
            return;
        }
        for k in &keys {
            self.by_key.entry(k.clone()).or_default().insert(r.clone());
        }
        self.of.insert(r, keys);
    }
}

struct Inner<R: Lookup, Q> {
    live: State<R, Q>,
    /// The relist under way (from `Init` to `InitDone`).
    building: Option<State<R, Q>>,
}

/// Objects of type `R` by key `Q` (cheap to clone: shared).
pub struct Index<R: Lookup, Q> {
    inner: Arc<RwLock<Inner<R, Q>>>,
    keys: Keys<R, Q>,
    /// Whether objects without keys are held too (for [`Index::keys_of`]).
    keep_all: bool,
}

impl<R: Lookup, Q> Clone for Index<R, Q> {
    fn clone(&self) -> Self {
        Index {
            inner: self.inner.clone(),
            keys: self.keys,
            keep_all: self.keep_all,
        }
    }
}

impl<R, Q> Index<R, Q>
where
    R: Lookup + Clone,
    R::DynamicType: Default + Eq + Hash + Clone,
    Q: Eq + Hash + Clone,
{
    /// An empty index over the keys `keys` gives each object.
    pub fn new(keys: Keys<R, Q>) -> Self {
        Self::with(keys, false)
    }

    /// An index that also holds the objects without keys: [`Index::keys_of`] then tells
    /// whether an object exists at all (a name taken) without caching the object.
    pub fn new_keeping_all(keys: Keys<R, Q>) -> Self {
        Self::with(keys, true)
    }

    fn with(keys: Keys<R, Q>, keep_all: bool) -> Self {
        Index {
            inner: Arc::new(RwLock::new(Inner {
                live: State::default(),
                building: None,
            })),
            keys,
            keep_all,
        }
    }

    /// Feeds one watch event (call it on every event, before the store sees it).
    pub fn apply(&self, ev: &watcher::Event<R>) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match ev {
            watcher::Event::Init => g.building = Some(State::default()),
            watcher::Event::InitApply(o) => {
                let r = o.to_object_ref(Default::default());
                let keys = (self.keys)(o);
                g.building
                    .get_or_insert_with(State::default)
                    .insert(r, keys, self.keep_all);
            }
            watcher::Event::InitDone => {
                if let Some(b) = g.building.take() {
                    g.live = b;
                }
            }
            watcher::Event::Apply(o) => {
                let r = o.to_object_ref(Default::default());
                let keys = (self.keys)(o);
                g.live.insert(r, keys, self.keep_all);
            }
            watcher::Event::Delete(o) => g.live.remove(&o.to_object_ref(Default::default())),
        }
    }

    /// The objects with key `key`.
    pub fn get(&self, key: &Q) -> Vec<ObjectRef<R>> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.live
            .by_key
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The keys of the object `r`, when the index holds it (an object without keys counts
    /// as held only by indexes built with [`Index::new_keeping_all`]).
    pub fn keys_of(&self, r: &ObjectRef<R>) -> Option<Vec<Q>> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.live.of.get(r).cloned()
    }

    /// Every object the index holds, with its keys.
    pub fn all(&self) -> Vec<(ObjectRef<R>, Vec<Q>)> {
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        g.live
            .of
            .iter()
            .map(|(r, keys)| (r.clone(), keys.clone()))
            .collect()
    }

    /// A stream stage feeding this index: `stream.inspect(index.feeder())`.
    pub fn feeder<E>(&self) -> impl FnMut(&Result<watcher::Event<R>, E>) + Send + 'static
    where
        R: Send + Sync + 'static,
        R::DynamicType: Send + Sync,
        Q: Send + Sync + 'static,
    {
        let this = self.clone();
        move |ev| {
            if let Ok(ev) = ev {
                this.apply(ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    fn cm(name: &str, refs: &[&str]) -> ConfigMap {
        let data: serde_json::Map<String, serde_json::Value> =
            refs.iter().map(|r| (r.to_string(), json!("x"))).collect();
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "n"}, "data": data}))
            .unwrap()
    }

    fn keys(c: &ConfigMap) -> Vec<String> {
        c.data.iter().flatten().map(|(k, _)| k.clone()).collect()
    }

    fn names(i: &Index<ConfigMap, String>, k: &str) -> Vec<String> {
        let mut v: Vec<String> = i.get(&k.to_string()).into_iter().map(|r| r.name).collect();
        v.sort();
        v
    }

    #[test]
    fn follows_applies_deletes_and_relists() {
        let i = Index::new(keys);
        i.apply(&watcher::Event::Init);
        i.apply(&watcher::Event::InitApply(cm("a", &["x", "y"])));
        i.apply(&watcher::Event::InitApply(cm("b", &["y"])));
        assert!(names(&i, "y").is_empty(), "nothing served before InitDone");
        i.apply(&watcher::Event::InitDone);
        assert_eq!(names(&i, "x"), ["a"]);
        assert_eq!(names(&i, "y"), ["a", "b"]);
        // An update moves an object's keys.
        i.apply(&watcher::Event::Apply(cm("a", &["z"])));
        assert!(names(&i, "x").is_empty());
        assert_eq!(names(&i, "y"), ["b"]);
        assert_eq!(names(&i, "z"), ["a"]);
        i.apply(&watcher::Event::Delete(cm("b", &["y"])));
        assert!(names(&i, "y").is_empty());
        // A relist replaces everything at InitDone, and serves the old content until then.
        i.apply(&watcher::Event::Init);
        i.apply(&watcher::Event::InitApply(cm("c", &["x"])));
        assert_eq!(names(&i, "z"), ["a"]);
        i.apply(&watcher::Event::InitDone);
        assert!(names(&i, "z").is_empty());
        assert_eq!(names(&i, "x"), ["c"]);
        let r = |n: &str| ObjectRef::<ConfigMap>::new(n).within("n");
        assert_eq!(i.keys_of(&r("c")), Some(vec!["x".to_string()]));
        assert_eq!(i.keys_of(&r("a")), None);
    }

    #[test]
    fn keeping_all_holds_objects_without_keys() {
        let i = Index::new_keeping_all(keys);
        i.apply(&watcher::Event::Apply(cm("a", &[])));
        let r = ObjectRef::<ConfigMap>::new("a").within("n");
        assert_eq!(i.keys_of(&r), Some(vec![]));
        i.apply(&watcher::Event::Delete(cm("a", &[])));
        assert_eq!(i.keys_of(&r), None);
    }
}
