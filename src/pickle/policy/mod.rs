//! What a pickle may import and call and still be called safe.
//!
//! The verdict is decided by an **allowlist**, modelled on `torch.load(weights_only=True)`: a file
//! is `safe` only if every global it imports is on the list, every call targets an allowlisted
//! callable, BUILD only sets state on tensors, parameters and ordered dicts, and persistent ids
//! are storages. Anything else is at least `suspicious`, so a function nobody thought of cannot
//! make a file look safe. The denylist and the name heuristics below only decide how loud the
//! warning is (`dangerous` for what runs code, spawns processes, touches files or sockets, or
//! loads another pickle); they are never what makes a file safe.

//!
//! Owns: the verdict, findings and the judge. The tables (`tables`) and the name rules
//! (`classify`) are apart. Must not import: `torch`, `compat`, `torchscript`, `Runner`
//! (the pickle runner).
//!
//! `clippy::indexing_slicing` is allowed here: finding counters are arrays with one slot per `Risk`
//! variant.

#![allow(clippy::indexing_slicing)]

mod classify;
mod tables;

use std::collections::HashMap;

use classify::{dangerous_reason, root_module, unknown_reason};
use tables::*;

use crate::pickle::opcode::Op;
use crate::pickle::value::{Arena, Node, Val};
use crate::pickle::vm::{Event, Sink};

/// The judgement types live in [`crate::verdict`]; they are named here too, where the pickle
/// engine's callers have always found them.
pub use crate::verdict::{Finding, Risk, Verdict};
pub use classify::{is_allowlisted, is_data_only, is_torchscript_allowlisted, normalize};

/// What a global is, for the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// On the allowlist.
    Allowed,
    /// Allowed because the user said so.
    UserAllowed,
    /// Runs code or has side effects; the reason says which.
    Dangerous(String),
    /// Not on the allowlist; the reason says what is known of it.
    Unknown(String),
}

/// The rules one scan applies: the built-in allowlist plus the user's additions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Globals the user allows (`module.name`, or `module.*` for a whole module).
    pub user_allow: Vec<String>,
    /// Judging the pickles of a TorchScript archive (read by `pickle::torchscript`): its
    /// own globals are allowed ([`is_torchscript_allowlisted`]).
    pub torchscript: bool,
}

impl Policy {
    /// The built-in policy plus `allow`.
    pub fn with_allow(allow: impl IntoIterator<Item = String>) -> Policy {
        Policy {
            user_allow: allow.into_iter().collect(),
            torchscript: false,
        }
    }

    /// This policy for the pickles of a TorchScript archive.
    pub fn for_torchscript(&self) -> Policy {
        Policy {
            torchscript: true,
            ..self.clone()
        }
    }

    /// Classifies `module.name` as written in a pickle.
    pub fn classify(&self, module: &str, name: &str) -> Class {
        let (module, name) = normalize(module, name);
        let full = format!("{module}.{name}");
        if is_allowlisted(&module, &name)
            || (self.torchscript && is_torchscript_allowlisted(&module, &name))
        {
            return Class::Allowed;
        }
        let dangerous = dangerous_reason(&module, &name);
        let user = self.user_allow.iter().any(|a| {
            a == &full
                || a.strip_suffix(".*")
                    .is_some_and(|m| module == m || module.starts_with(&format!("{m}.")))
        });
        if user {
            if let Some(reason) = &dangerous
                && HARD_BLOCKED_MODULES.contains(&root_module(&module))
            {
                return Class::Dangerous(format!(
                    "{reason} (cannot be allowed: module `{module}` is always blocked)"
                ));
            }
            return Class::UserAllowed;
        }
        if let Some(reason) = dangerous {
            return Class::Dangerous(reason);
        }
        Class::Unknown(unknown_reason(&module, &name))
    }

    fn is_allowed(&self, arena: &Arena, callable: Val) -> bool {
        arena.global(callable).is_some_and(|(m, n)| {
            matches!(self.classify(m, n), Class::Allowed | Class::UserAllowed)
        })
    }

    fn check_call(&self, arena: &Arena, callable: Val, op: Op) -> Option<Finding> {
        match arena.node(callable) {
            // The import itself was judged when it happened.
            Some(Node::Global { .. }) => None,
            Some(Node::Extension { code }) => Some(Finding::new(
                Risk::Suspicious,
                Some(format!("<extension code {code}>")),
                format!(
                    "{} calls a global from copyreg's extension registry",
                    op.name()
                ),
            )),
            _ => Some(Finding::new(
                Risk::Dangerous,
                None,
                format!(
                    "{} calls a value computed while loading ({}), not an imported name: the classic way to reach functions a scanner does not list",
                    op.name(),
                    arena.repr(callable, 80)
                ),
            )),
        }
    }

    fn check_build(&self, arena: &Arena, target: Val) -> Option<Finding> {
        match arena.node(target) {
            Some(Node::Object(obj)) => {
                if self.is_allowed(arena, obj.callable) {
                    None
                } else if arena.global(obj.callable).is_some() {
                    // An unknown class: its import is already a finding.
                    None
                } else {
                    Some(Finding::new(
                        Risk::Suspicious,
                        None,
                        format!(
                            "BUILD sets the state of {}, which is not a tensor, parameter or OrderedDict",
                            arena.repr(target, 80)
                        ),
                    ))
                }
            }
            Some(Node::Global { module, name }) => Some(Finding::new(
                Risk::Dangerous,
                Some(display_global(module, name)),
                "BUILD sets attributes on an imported function or class itself (for example its __code__ or __globals__), changing what later calls do",
            )),
            _ => Some(Finding::new(
                Risk::Suspicious,
                None,
                format!(
                    "BUILD on {}, which a real unpickler would reject or treat specially",
                    arena.repr(target, 80)
                ),
            )),
        }
    }

    fn check_method_call(&self, arena: &Arena, target: Val, op: Op) -> Option<Finding> {
        let method = match op {
            Op::Append => "append",
            Op::Appends => "extend",
            Op::AddItems => "add",
            _ => "__setitem__",
        };
        let obj = arena.object(target)?;
        let callable = arena.global(obj.callable);
        let dict_like = callable.is_some_and(|(m, n)| {
            let (m, n) = normalize(m, n);
            matches!(
                (m.as_str(), n.as_str()),
                ("collections", "OrderedDict" | "Counter" | "defaultdict")
                    | ("builtins", "set" | "dict" | "list" | "bytearray")
            )
        });
        if dict_like {
            return None;
        }
        if callable.is_some() && !self.is_allowed(arena, obj.callable) {
            // The unknown class is already a finding; its methods are as unknown as it is.
            return None;
        }
        Some(Finding::new(
            Risk::Suspicious,
            callable.map(|(m, n)| display_global(m, n)),
            format!(
                "{} calls `{method}` on {}, which is not a plain list, dict or set",
                op.name(),
                arena.repr(target, 80)
            ),
        ))
    }
}

/// Where a pickle sits and how its persistent ids are meant to be read.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Archive member, if any.
    pub member: Option<&'a str>,
    /// Added to event offsets (the pickle's start in the file for non-archives).
    pub base_offset: u64,
    /// What persistent ids are legitimate here.
    pub persistent: PersistentKind,
}

/// The persistent ids a container legitimately uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistentKind {
    /// `('storage', ...)` tuples (zip and legacy torch files).
    Storage,
    /// Storage keys as strings or ints (the old tar format).
    Key,
    /// None at all (plain pickles, NumPy).
    None,
}

fn check_persistent(arena: &Arena, pid: Val, kind: PersistentKind) -> Option<Finding> {
    let ok = match kind {
        PersistentKind::Storage => arena
            .seq(pid)
            .and_then(|items| items.first())
            .and_then(|first| arena.text(*first))
            .is_some_and(|t| t == "storage"),
        PersistentKind::Key => {
            matches!(arena.node(pid), Some(Node::Str(_)))
                || matches!(pid, Val::Int(_))
                || arena.seq(pid).is_some()
        }
        PersistentKind::None => false,
    };
    (!ok).then(|| {
        Finding::new(
            Risk::Suspicious,
            None,
            format!(
                "persistent id {} is not a storage reference; the loader's persistent_load decides what it becomes",
                arena.repr(pid, 80)
            ),
        )
    })
}

/// The findings of one file, merged as they come: one entry per (risk, global, reason, member)
/// with a count and the first location, at most `max` entries **per severity** (so a flood of
/// notes cannot crowd out a dangerous finding; later distinct findings are counted per severity
/// in one summary line each, so the verdict never loses them).
#[derive(Debug)]
pub struct Findings {
    list: Vec<Finding>,
    /// Hash of a finding's key → indexes in `list` with that hash.
    index: HashMap<u64, Vec<usize>, ahash::RandomState>,
    hasher: ahash::RandomState,
    max: usize,
    /// Findings not kept, by risk (Info, Suspicious, Dangerous).
    dropped: [u64; 3],
    /// Distinct findings kept, by risk.
    kept: [usize; 3],
}

impl Findings {
    /// An empty set that keeps at most `max` distinct findings.
    pub fn new(max: usize) -> Findings {
        Findings {
            list: Vec::new(),
            index: HashMap::default(),
            hasher: ahash::RandomState::new(),
            max: max.max(1),
            dropped: [0; 3],
            kept: [0; 3],
        }
    }

    fn key_hash(&self, f: &Finding) -> u64 {
        self.hasher
            .hash_one((f.risk, &f.global, &f.reason, &f.member))
    }

    /// Adds `f`, merged into an equal finding if there is one; returns where it is kept.
    pub fn push(&mut self, f: Finding) -> Option<usize> {
        self.add(f, false)
    }

    /// [`Findings::push`] past the cap: for the few findings that must always be shown (why the
    /// analysis stopped).
    pub fn push_always(&mut self, f: Finding) -> Option<usize> {
        self.add(f, true)
    }

    fn add(&mut self, f: Finding, always: bool) -> Option<usize> {
        let hash = self.key_hash(&f);
        if let Some(candidates) = self.index.get(&hash) {
            for &i in candidates {
                if let Some(e) = self.list.get_mut(i)
                    && e.risk == f.risk
                    && e.global == f.global
                    && e.reason == f.reason
                    && e.member == f.member
                {
                    e.count = e.count.saturating_add(f.count);
                    return Some(i);
                }
            }
        }
        if self.kept[f.risk as usize] >= self.max && !always {
            let slot = &mut self.dropped[f.risk as usize];
            *slot = slot.saturating_add(f.count);
            return None;
        }
        self.kept[f.risk as usize] += 1;
        self.index.entry(hash).or_default().push(self.list.len());
        self.list.push(f);
        Some(self.list.len() - 1)
    }

    /// Whether a finding equal to `f` (same risk, global, reason and member) is kept.
    pub fn has(&self, f: &Finding) -> bool {
        let hash = self.key_hash(f);
        self.index.get(&hash).is_some_and(|candidates| {
            candidates.iter().any(|&i| {
                self.list.get(i).is_some_and(|e| {
                    e.risk == f.risk
                        && e.global == f.global
                        && e.reason == f.reason
                        && e.member == f.member
                })
            })
        })
    }

    /// Counts `n` more occurrences of the finding kept at `i`.
    pub fn bump(&mut self, i: usize, n: u64) {
        if let Some(f) = self.list.get_mut(i) {
            f.count = f.count.saturating_add(n);
        }
    }

    /// Adds every finding of `more`.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Finding>) {
        for f in more {
            self.push(f);
        }
    }

    /// Drops the findings located in archive member `member` (a member that turned out not to
    /// be a pickle).
    pub fn forget_member(&mut self, member: &str) {
        let kept: Vec<Finding> = std::mem::take(&mut self.list)
            .into_iter()
            .filter(|f| f.member.as_deref() != Some(member))
            .collect();
        self.index.clear();
        self.kept = [0; 3];
        for f in kept {
            self.push(f);
        }
    }

    /// The findings, worst first (in the order they were found within a risk), with one summary
    /// finding per risk for those not kept.
    pub fn finish(mut self) -> Vec<Finding> {
        for risk in [Risk::Info, Risk::Suspicious, Risk::Dangerous] {
            let n = self.dropped[risk as usize];
            if n > 0 {
                let mut f = Finding::new(
                    risk,
                    None,
                    format!(
                        "{n} more {} findings not listed: more than {} distinct findings of this severity, the limit (raise it with --limit findings=N)",
                        risk_name(risk),
                        self.max
                    ),
                );
                f.count = 1;
                self.list.push(f);
            }
        }
        self.list.sort_by_key(|f| std::cmp::Reverse(f.risk));
        self.list
    }
}

fn risk_name(risk: Risk) -> &'static str {
    match risk {
        Risk::Info => "info",
        Risk::Suspicious => "suspicious",
        Risk::Dangerous => "dangerous",
    }
}

/// Judges each event of one pickle stream as the machine meets it, into a file's [`Findings`].
///
/// Repeats cost O(1): the verdict on each event is cached by what decides it (the imported name,
/// the callable, the BUILD or method-call target, the persistent id), so a million BUILDs on one
/// object make one finding with a count, not a million formatted reasons.
pub struct Judge<'a> {
    policy: &'a Policy,
    ctx: Context<'a>,
    findings: &'a mut Findings,
    /// For a pickle found inside a value: its byte length. Its findings above Info are reported
    /// with that context and no offset.
    nested_in: Option<usize>,
    /// Event key → the finding it produced (None: it produced none).
    seen: HashMap<(u8, u8, u64), Option<usize>, ahash::RandomState>,
    /// Globals judged: hash of (module, name) → (module, name, finding).
    globals: HashMap<u64, (String, String, Option<usize>), ahash::RandomState>,
    hasher: ahash::RandomState,
}

/// Most event verdicts a [`Judge`] caches; past that it judges each event afresh (still
/// correct, only slower).
const JUDGE_CACHE: usize = 1 << 20;

/// An exact key for a value: (tag, bits).
fn val_key(v: Val) -> (u8, u64) {
    match v {
        Val::None => (0, 0),
        Val::Bool(b) => (1, u64::from(b)),
        Val::Int(i) => (2, i as u64),
        Val::Float(f) => (3, f.to_bits()),
        Val::Ref(id) => (4, u64::from(id)),
    }
}

impl<'a> Judge<'a> {
    /// A judge for one stream located by `ctx`, writing into `findings`.
    pub fn new(
        policy: &'a Policy,
        ctx: Context<'a>,
        findings: &'a mut Findings,
        nested_in: Option<usize>,
    ) -> Judge<'a> {
        Judge {
            policy,
            ctx,
            findings,
            nested_in,
            seen: HashMap::default(),
            globals: HashMap::default(),
            hasher: ahash::RandomState::new(),
        }
    }

    /// Records `f` found at `offset` by `op`; returns where it is kept.
    fn record(&mut self, f: Option<Finding>, offset: u64, op: Option<Op>) -> Option<usize> {
        let mut f = f?;
        match self.nested_in {
            None => {
                f = f.at(
                    self.ctx.member,
                    offset + self.ctx.base_offset,
                    op.map(Op::name),
                );
            }
            Some(len) => {
                if f.risk == Risk::Info {
                    return None;
                }
                f = f.at(self.ctx.member, 0, op.map(Op::name));
                f.offset = None;
                f.reason = format!("nested pickle inside a {len}-byte value: {}", f.reason);
            }
        }
        self.findings.push(f)
    }

    /// Judges an event through the cache: `decide` runs only the first time `key` is seen.
    fn cached(
        &mut self,
        key: (u8, u8, u64),
        offset: u64,
        op: Option<Op>,
        decide: impl FnOnce(&Self) -> Option<Finding>,
    ) {
        if let Some(kept) = self.seen.get(&key) {
            if let Some(i) = *kept {
                self.findings.bump(i, 1);
            }
            return;
        }
        let f = decide(self);
        let kept = self.record(f, offset, op);
        if self.seen.len() < JUDGE_CACHE {
            self.seen.insert(key, kept);
        }
    }

    fn global(&mut self, module: &str, name: &str, offset: u64, op: Op) {
        let hash = self.hasher.hash_one((module, name));
        if let Some((m, n, kept)) = self.globals.get(&hash)
            && m == module
            && n == name
        {
            if let Some(i) = *kept {
                self.findings.bump(i, 1);
            }
            return;
        }
        let full = display_global(module, name);
        let f = match self.policy.classify(module, name) {
            Class::Allowed | Class::UserAllowed => None,
            Class::Dangerous(reason) => Some(Finding::new(Risk::Dangerous, Some(full), reason)),
            Class::Unknown(reason) => Some(Finding::new(Risk::Suspicious, Some(full), reason)),
        };
        let kept = self.record(f, offset, Some(op));
        if self.globals.len() < JUDGE_CACHE {
            self.globals
                .insert(hash, (module.to_string(), name.to_string(), kept));
        }
    }
}

impl Sink for Judge<'_> {
    fn event(&mut self, arena: &Arena, event: Event) {
        match event {
            Event::Global { node, offset, op } => {
                let Some(Node::Global { module, name }) = arena.get(node) else {
                    return;
                };
                if module.starts_with("<computed") {
                    // Judged by its ComputedGlobal event.
                    return;
                }
                self.global(module, name, offset, op);
            }
            Event::Call { node, offset, op } => {
                let Some(Node::Object(obj)) = arena.get(node) else {
                    return;
                };
                if matches!(arena.node(obj.callable), Some(Node::Global { .. })) {
                    // The import itself was judged when it happened.
                    return;
                }
                let (tag, bits) = val_key(obj.callable);
                let callable = obj.callable;
                self.cached((1, tag, bits), offset, Some(op), |j| {
                    j.policy.check_call(arena, callable, op)
                });
            }
            Event::Build { target, offset, .. } => {
                let (tag, bits) = val_key(target);
                self.cached((2, tag, bits), offset, Some(Op::Build), |j| {
                    j.policy.check_build(arena, target)
                });
            }
            Event::Persistent { pid, offset, op } => {
                let kind = self.ctx.persistent;
                if let Some(f) = check_persistent(arena, pid, kind) {
                    let (tag, bits) = val_key(pid);
                    self.cached((3, tag, bits), offset, Some(op), |_| Some(f));
                }
            }
            Event::MethodCall { target, offset, op } => {
                let (tag, bits) = val_key(target);
                // One cache slot per (method, target): kinds 64 and up.
                let kind = 64u8.wrapping_add(op as u8);
                self.cached((kind, tag, bits), offset, Some(op), |j| {
                    j.policy.check_method_call(arena, target, op)
                });
            }
            Event::Extension { code, offset } => {
                self.cached((5, 0, u64::from(code)), offset, Some(Op::Ext4), |_| {
                    Some(Finding::new(
                        Risk::Suspicious,
                        Some(format!("<extension code {code}>")),
                        "EXT opcode: imports whatever global `copyreg` has registered under this code in the loading process; unknown until load time",
                    ))
                });
            }
            Event::ComputedGlobal {
                module,
                name,
                offset,
            } => {
                let f = Finding::new(
                    Risk::Dangerous,
                    None,
                    format!(
                        "STACK_GLOBAL imports a name computed while loading ({}.{}): what it imports is only known when it runs",
                        arena.repr(module, 60),
                        arena.repr(name, 60)
                    ),
                );
                self.record(Some(f), offset, Some(Op::StackGlobal));
            }
            Event::Buffer { offset } => {
                self.cached((6, 0, 0), offset, Some(Op::NextBuffer), |_| {
                    Some(Finding::new(
                        Risk::Info,
                        None,
                        "out-of-band buffer (protocol 5): the loader must supply it; torch.load cannot",
                    ))
                });
            }
        }
    }
}

/// `module.name` as users read it.
pub fn display_global(module: &str, name: &str) -> String {
    format!("{module}.{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(m: &str, n: &str) -> Class {
        Policy::default().classify(m, n)
    }

    #[test]
    fn torch_state_dict_globals_are_allowed() {
        for (m, n) in [
            ("collections", "OrderedDict"),
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage"),
            ("torch", "BFloat16Storage"),
            ("torch.storage", "UntypedStorage"),
            ("torch", "float8_e4m3fn"),
            ("torch", "uint16"),
            ("torch", "Size"),
            ("torch.nn.parameter", "Parameter"),
            ("_codecs", "encode"),
            ("__builtin__", "set"),
        ] {
            assert_eq!(class(m, n), Class::Allowed, "{m}.{n}");
        }
    }

    #[test]
    fn code_runners_are_dangerous() {
        for (m, n) in [
            ("posix", "system"),
            ("os", "system"),
            ("nt", "system"),
            ("builtins", "exec"),
            ("__builtin__", "eval"),
            ("subprocess", "Popen"),
            ("runpy", "run_path"),
            ("pickle", "loads"),
            ("_pickle", "loads"),
            ("torch.storage", "_load_from_bytes"),
            ("torch", "load"),
            ("operator", "attrgetter"),
            ("functools", "partial"),
            ("pydoc", "locate"),
            ("importlib", "import_module"),
            ("torch.utils.collect_env", "run"),
            ("some.unknown.module", "system"),
            ("collections", "OrderedDict.__init__.__globals__"),
            ("torch.fx.graph_module", "reduce_graph_module"),
        ] {
            assert!(
                matches!(class(m, n), Class::Dangerous(_)),
                "{m}.{n}: {:?}",
                class(m, n)
            );
        }
    }

    #[test]
    fn unlisted_globals_are_unknown_not_safe() {
        for (m, n) in [
            ("numpy", "vectorize"),
            ("__main__", "Config"),
            ("mylib.layers", "Block"),
            ("collections", "ChainMap"),
            ("torch", "nn"),
        ] {
            assert!(matches!(class(m, n), Class::Unknown(_)), "{m}.{n}");
        }
    }

    #[test]
    fn user_allowlist_extends_but_cannot_unblock_os() {
        let p = Policy::with_allow([
            "argparse.Namespace".to_string(),
            "os.*".into(),
            "mylib.*".into(),
        ]);
        assert_eq!(p.classify("argparse", "Namespace"), Class::UserAllowed);
        assert_eq!(p.classify("mylib.layers", "Block"), Class::UserAllowed);
        assert!(matches!(p.classify("os", "system"), Class::Dangerous(_)));
        assert!(matches!(
            p.classify("argparse", "Action"),
            Class::Unknown(_)
        ));
    }
}
