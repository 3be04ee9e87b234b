//! Containers: tuples, lists, dicts, sets and frozensets, and filling them (APPEND(S),
//! SETITEM(S), ADDITEMS) with the key index that keeps every opcode O(1) amortised.
//!
//! `clippy::indexing_slicing` is allowed here: MARK items are paired with `chunks_exact(2)`, so
//! both halves exist.

#![allow(clippy::indexing_slicing)]

use super::*;

impl Machine<'_, '_> {
    pub(super) fn append_items(&mut self, op: Op, target: Val, items: Vec<Val>) -> Step<()> {
        let offset = self.offset();
        if op == Op::Append {
            // APPENDS and ADDITEMS were charged by `pop_mark`.
            self.store(1)?;
        }
        match target {
            Val::Ref(id) => match self.arena.get_mut(id) {
                Some(Node::List(list)) if op != Op::AddItems => {
                    list.extend(items);
                    Ok(())
                }
                Some(Node::Set(set)) if op == Op::AddItems => {
                    set.extend(items);
                    Ok(())
                }
                Some(Node::Object(obj)) => {
                    obj.items.extend(items);
                    self.emit(Event::MethodCall { target, offset, op });
                    Ok(())
                }
                _ => {
                    // CPython calls `target.append`/`extend`/`add`, which fails for every other
                    // built-in type; a real unpickler raises here.
                    let what = self.arena.repr(target, 60);
                    Err(self.bad_value(op, format!("cannot add items to {what}")))
                }
            },
            _ => Err(self.bad_value(op, "cannot add items to a number or None")),
        }
    }

    pub(super) fn set_items(&mut self, op: Op, target: Val, pairs: Vec<(Val, Val)>) -> Step<()> {
        let offset = self.offset();
        let Val::Ref(id) = target else {
            return Err(self.bad_value(op, "cannot set items on a number or None"));
        };
        if op == Op::SetItem {
            // SETITEMS and DICT were charged by `pop_mark`.
            self.store(2)?;
        }
        match self.arena.get_mut(id) {
            Some(Node::Dict(entries)) => {
                // A later SETITEM of an equal key replaces the earlier one, as in a Python dict;
                // keys are found through `dict_index` in O(1).
                let mut entries = std::mem::take(entries);
                for (k, v) in pairs {
                    match self.find_key(id, &entries, k) {
                        Found::At(i) => {
                            if let Some(slot) = entries.get_mut(i) {
                                slot.1 = v;
                            }
                        }
                        Found::New(hash) => {
                            if let Some(hash) = hash {
                                self.dict_index.insert((id, hash), entries.len());
                            }
                            entries.push((k, v));
                        }
                    }
                }
                if let Some(Node::Dict(slot)) = self.arena.get_mut(id) {
                    *slot = entries;
                }
                Ok(())
            }
            Some(Node::Object(obj)) => {
                obj.entries.extend(pairs);
                self.emit(Event::MethodCall { target, offset, op });
                Ok(())
            }
            _ => {
                let what = self.arena.repr(target, 60);
                Err(self.bad_value(op, format!("cannot set items on {what}")))
            }
        }
    }

    /// Where key `k` already is in dict `id` (whose entries are `entries`).
    pub(super) fn find_key(&self, id: NodeId, entries: &[(Val, Val)], k: Val) -> Found {
        let Some(hash) = self.key_hash(k) else {
            // Float keys and the like are never merged (Python would merge `1.0` with `1`).
            return Found::New(None);
        };
        match self.dict_index.get(&(id, hash)) {
            None => Found::New(Some(hash)),
            Some(&i) if entries.get(i).is_some_and(|e| self.key_eq(e.0, k)) => Found::At(i),
            // A 64-bit hash collision: rare enough for a linear look.
            Some(_) => entries
                .iter()
                .position(|e| self.key_eq(e.0, k))
                .map_or(Found::New(Some(hash)), Found::At),
        }
    }

    pub(super) fn key_hash(&self, k: Val) -> Option<u64> {
        let mut h = self.keys.build_hasher();
        match k {
            Val::None => 0u8.hash(&mut h),
            Val::Bool(b) => (1u8, i64::from(b)).hash(&mut h),
            Val::Int(i) => (1u8, i).hash(&mut h),
            Val::Float(_) => return None,
            Val::Ref(id) => match self.arena.get(id) {
                Some(Node::Str(s)) => (2u8, s.as_bytes()).hash(&mut h),
                Some(Node::Bytes(b)) => (3u8, b.as_slice()).hash(&mut h),
                _ => (4u8, id).hash(&mut h),
            },
        }
        Some(h.finish())
    }

    /// Key equality for the key types [`Machine::key_hash`] hashes.
    pub(super) fn key_eq(&self, a: Val, b: Val) -> bool {
        let int = |v: Val| match v {
            Val::Bool(x) => Some(i64::from(x)),
            Val::Int(x) => Some(x),
            _ => None,
        };
        match (a, b) {
            (Val::None, Val::None) => true,
            (Val::Ref(x), Val::Ref(y)) => match (self.arena.get(x), self.arena.get(y)) {
                (Some(Node::Str(p)), Some(Node::Str(q))) => p == q,
                (Some(Node::Bytes(p)), Some(Node::Bytes(q))) => p == q,
                (Some(Node::Str(_) | Node::Bytes(_)), _)
                | (_, Some(Node::Str(_) | Node::Bytes(_))) => false,
                _ => x == y,
            },
            _ => int(a).is_some() && int(a) == int(b),
        }
    }

    /// True for values that are data, not the symbolic result of a call or an import.
    pub(super) fn is_literal(&self, v: Val) -> bool {
        !matches!(
            self.arena.node(v),
            Some(
                Node::Object(_)
                    | Node::Persistent { .. }
                    | Node::Global { .. }
                    | Node::Extension { .. }
                    | Node::Buffer
            )
        )
    }

    /// Runs a container opcode.
    pub(super) fn container_op(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::EmptyTuple => {
                self.push_node(Node::Tuple(Vec::new()))?;
            }
            Op::EmptyList => {
                self.push_node(Node::List(Vec::new()))?;
            }
            Op::EmptyDict => {
                self.push_node(Node::Dict(Vec::new()))?;
            }
            Op::EmptySet => {
                self.push_node(Node::Set(Vec::new()))?;
            }
            Op::Tuple => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::Tuple(items))?;
            }
            Op::Tuple1 | Op::Tuple2 | Op::Tuple3 => {
                let n = match op {
                    Op::Tuple1 => 1,
                    Op::Tuple2 => 2,
                    _ => 3,
                };
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop(op)?);
                }
                items.reverse();
                self.store(n)?;
                self.push_node(Node::Tuple(items))?;
            }
            Op::List => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::List(items))?;
            }
            Op::Dict => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.bad_value(op, "odd number of items for DICT"));
                }
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                let v = self.node(Node::Dict(Vec::new()))?;
                self.set_items(op, v, pairs)?;
                self.push(v)?;
            }
            Op::FrozenSet => {
                let items = self.pop_mark(op)?;
                self.push_node(Node::FrozenSet(items))?;
            }
            Op::Append => {
                let v = self.pop(op)?;
                let target = self.top(op)?;
                self.append_items(op, target, vec![v])?;
            }
            Op::Appends | Op::AddItems => {
                let items = self.pop_mark(op)?;
                let target = self.top(op)?;
                self.append_items(op, target, items)?;
            }
            Op::SetItem => {
                let v = self.pop(op)?;
                let k = self.pop(op)?;
                let target = self.top(op)?;
                self.set_items(op, target, vec![(k, v)])?;
            }
            Op::SetItems => {
                let items = self.pop_mark(op)?;
                if items.len() % 2 != 0 {
                    return Err(self.bad_value(op, "odd number of items for SETITEMS"));
                }
                let target = self.top(op)?;
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.set_items(op, target, pairs)?;
            }

            // The memo.
            _ => return Err(self.misrouted(op)),
        }
        Ok(None)
    }
}

/// Where a dict key is.
pub(super) enum Found {
    /// At this entry.
    At(usize),
    /// Not there; its hash, if it has one.
    New(Option<u64>),
}
