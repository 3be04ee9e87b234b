//! What a pickle may import and call and still be called safe.
//!
//! The verdict is decided by an **allowlist**, modelled on `torch.load(weights_only=True)`: a file
//! is `safe` only if every global it imports is on the list, every call targets an allowlisted
//! callable, BUILD only sets state on tensors, parameters and ordered dicts, and persistent ids
//! are storages. Anything else is at least `suspicious`, so a function nobody thought of cannot
//! make a file look safe. The denylist and the name heuristics below only decide how loud the
//! warning is (`dangerous` for what runs code, spawns processes, touches files or sockets, or
//! loads another pickle); they are never what makes a file safe.

use std::collections::HashMap;

use crate::pickle::opcode::Op;
use crate::pickle::value::{Arena, Node, Val};
use crate::pickle::vm::{Event, Sink};

/// How risky a finding is. Ordered: a file's verdict is its worst finding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Worth knowing; does not change the verdict.
    Info,
    /// Not allowlisted: loading would import or call something ckptscope cannot vouch for.
    Suspicious,
    /// Loading would run code, spawn a process, touch files or the network, or load more pickles.
    Dangerous,
}

/// A file's overall verdict.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Only allowlisted globals and operations.
    Safe,
    /// Something outside the allowlist.
    Suspicious,
    /// Something that runs code when loaded.
    Dangerous,
}

impl Verdict {
    /// The verdict of a set of findings.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Verdict {
        findings
            .into_iter()
            .map(|f| match f.risk {
                Risk::Info => Verdict::Safe,
                Risk::Suspicious => Verdict::Suspicious,
                Risk::Dangerous => Verdict::Dangerous,
            })
            .max()
            .unwrap_or(Verdict::Safe)
    }

    /// `safe`, `suspicious`, `dangerous`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Suspicious => "suspicious",
            Verdict::Dangerous => "dangerous",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the scan found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How risky.
    #[serde(rename = "severity")]
    pub risk: Risk,
    /// The global involved, `module.name`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// One line saying why it matters.
    pub reason: String,
    /// The archive member holding the pickle, for archives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Offset of the opcode in the pickle stream (in the member for archives, in the file
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The opcode (`REDUCE`, `GLOBAL`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<&'static str>,
    /// How many times the same finding occurred (first offset kept).
    #[serde(skip_serializing_if = "is_one")]
    pub count: u64,
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Finding {
    /// A finding with no location yet.
    pub fn new(risk: Risk, global: Option<String>, reason: impl Into<String>) -> Finding {
        Finding {
            risk,
            global,
            reason: reason.into(),
            member: None,
            offset: None,
            opcode: None,
            count: 1,
        }
    }

    /// Sets where it was found.
    pub fn at(mut self, member: Option<&str>, offset: u64, opcode: Option<Op>) -> Finding {
        self.member = member.map(str::to_string);
        self.offset = Some(offset);
        self.opcode = opcode.map(Op::name);
        self
    }
}

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
    /// Judging the pickles of a TorchScript archive (see [`crate::pickle::torchscript`]).
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
            || (self.torchscript && crate::pickle::torchscript::is_allowlisted(&module, &name))
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
                f = f.at(self.ctx.member, offset + self.ctx.base_offset, op);
            }
            Some(len) => {
                if f.risk == Risk::Info {
                    return None;
                }
                f = f.at(self.ctx.member, 0, op);
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

/// Python 2 names that `pickle` maps to Python 3 ones when it loads a protocol < 3 pickle
/// (`_compat_pickle`), so `__builtin__.eval` is judged as `builtins.eval`.
pub fn normalize(module: &str, name: &str) -> (String, String) {
    let module = match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" => "pickle",
        "cStringIO" | "StringIO" => "io",
        "commands" => "subprocess",
        "urllib2" => "urllib.request",
        "httplib" => "http.client",
        "SocketServer" => "socketserver",
        "thread" => "_thread",
        "dummy_thread" => "_dummy_thread",
        "UserDict" | "UserList" | "UserString" => "collections",
        other => other,
    };
    let name = match (module, name) {
        ("builtins", "xrange") => "range",
        ("builtins", "unicode") => "str",
        ("builtins", "basestring") => "str",
        ("builtins", "long") => "int",
        ("builtins", "reduce") => "functools.reduce",
        ("builtins", "intern") => "sys.intern",
        ("builtins", "unichr") => "chr",
        ("builtins", "raw_input") => "input",
        (_, other) => other,
    };
    // `builtins.functools.reduce` above is not a real name: keep it pointing at the module.
    if let Some(rest) = name.strip_prefix("functools.") {
        return ("functools".into(), rest.into());
    }
    if let Some(rest) = name.strip_prefix("sys.") {
        return ("sys".into(), rest.into());
    }
    (module.to_string(), name.to_string())
}

fn root_module(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

/// Modules whose globals are never allowed, whatever the user says (as torch does).
const HARD_BLOCKED_MODULES: &[&str] = &["os", "posix", "nt", "sys", "subprocess", "pty", "runpy"];

const DTYPE_NAMES: &[&str] = &[
    "float32",
    "float",
    "float64",
    "double",
    "float16",
    "half",
    "bfloat16",
    "complex32",
    "chalf",
    "complex64",
    "cfloat",
    "complex128",
    "cdouble",
    "uint8",
    "int8",
    "int16",
    "short",
    "int32",
    "int",
    "int64",
    "long",
    "bool",
    "qint8",
    "quint8",
    "qint32",
    "quint4x2",
    "quint2x4",
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e5m2fnuz",
    "float8_e4m3fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "uint16",
    "uint32",
    "uint64",
    "uint1",
    "uint2",
    "uint3",
    "uint4",
    "uint5",
    "uint6",
    "uint7",
    "int1",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bits16",
];

const REBUILD_FUNCTIONS: &[&str] = &[
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
    // Not in torch's weights_only allowlist, but it only views a buffer tensor: data.
    "_rebuild_nested_tensor",
];

const QSCHEMES: &[&str] = &[
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
];

/// Value constructors with no side effects: `torch.load(weights_only=True)` allows the first
/// three; the others build plain values the same way and are allowed here too.
const SAFE_BUILTINS: &[&str] = &[
    "set",
    "bytearray",
    "complex",
    "frozenset",
    "slice",
    "range",
    "dict",
    "list",
    "tuple",
    "int",
    "float",
    "bool",
    "str",
    "bytes",
];

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Globals that build plain data and run nothing, beyond torch's weights-only allowlist: NumPy
/// arrays, dtypes, scalars and random states (Hugging Face's `rng_state.pth`), `decimal`,
/// `fractions`, `datetime` values. They are `safe` for the verdict (what they hold is judged as
/// the rest of the pickle is), while `torch.load(weights_only=True)` still refuses them until
/// they are allowed ([`crate::pickle::compat`] says which).
const DATA_ONLY: &[(&str, &str)] = &[
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._generator", "Generator"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("decimal", "Decimal"),
    ("fractions", "Fraction"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
];

/// Whether `module.name` is one of the [`DATA_ONLY`] globals (or a NumPy dtype class).
pub fn is_data_only(module: &str, name: &str) -> bool {
    DATA_ONLY.contains(&(module, name))
        || (module == "numpy.dtypes" && is_ident(name) && name.ends_with("DType"))
}

/// The built-in allowlist.
pub fn is_allowlisted(module: &str, name: &str) -> bool {
    if is_data_only(module, name) {
        return true;
    }
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter" | "defaultdict"),
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "_codecs" => name == "encode",
        "builtins" => SAFE_BUILTINS.contains(&name),
        "torch._utils" => REBUILD_FUNCTIONS.contains(&name),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => {
            matches!(name, "Size" | "Tensor" | "device")
                || DTYPE_NAMES.contains(&name)
                || QSCHEMES.contains(&name)
                || is_tensor_or_storage_class(name)
        }
        "torch.cuda" | "torch.sparse" | "torch.cuda.sparse" => is_tensor_or_storage_class(name),
        "torch.storage" => matches!(name, "UntypedStorage" | "TypedStorage" | "_LegacyStorage"),
        _ => false,
    }
}

fn is_tensor_or_storage_class(name: &str) -> bool {
    is_ident(name)
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && (name.ends_with("Tensor") || name.ends_with("Storage"))
}

/// Modules whose every global is dangerous, with what they do.
const DANGEROUS_MODULES: &[(&str, &str)] = &[
    (
        "os",
        "operating-system access: runs commands, writes and deletes files",
    ),
    (
        "posix",
        "operating-system access: runs commands, writes and deletes files",
    ),
    (
        "nt",
        "operating-system access: runs commands, writes and deletes files",
    ),
    ("subprocess", "spawns processes"),
    ("_posixsubprocess", "spawns processes"),
    ("pty", "spawns processes"),
    ("sys", "interpreter internals (modules, import hooks, exit)"),
    ("shutil", "copies, moves and deletes files"),
    ("socket", "opens network connections"),
    ("socketserver", "opens network servers"),
    ("ssl", "opens network connections"),
    ("http", "opens network connections"),
    ("urllib", "downloads from the network"),
    ("urllib3", "downloads from the network"),
    ("requests", "downloads from the network"),
    ("ftplib", "opens network connections"),
    ("smtplib", "opens network connections"),
    ("telnetlib", "opens network connections"),
    ("poplib", "opens network connections"),
    ("imaplib", "opens network connections"),
    ("webbrowser", "opens URLs in a browser"),
    ("runpy", "runs Python modules and files"),
    ("code", "runs Python source"),
    ("codeop", "compiles Python source"),
    ("importlib", "imports arbitrary modules"),
    ("pkgutil", "imports arbitrary modules (resolve_name)"),
    ("pydoc", "imports arbitrary objects by name (locate)"),
    ("zipimport", "imports code from archives"),
    ("ctypes", "calls native code"),
    ("_ctypes", "calls native code"),
    ("cffi", "calls native code"),
    ("multiprocessing", "spawns processes"),
    ("concurrent", "runs callables in workers"),
    ("asyncio", "spawns processes and opens connections"),
    ("threading", "runs callables in threads"),
    ("_thread", "runs callables in threads"),
    ("signal", "installs signal handlers"),
    ("pickle", "loads another pickle (nested payload)"),
    ("_pickle", "loads another pickle (nested payload)"),
    ("dill", "loads another pickle (nested payload)"),
    ("cloudpickle", "loads another pickle (nested payload)"),
    ("joblib", "loads another pickle (nested payload)"),
    ("shelve", "loads pickles from disk"),
    ("marshal", "loads Python bytecode"),
    ("types", "builds functions and code objects"),
    (
        "operator",
        "reaches arbitrary attributes and methods (attrgetter, methodcaller)",
    ),
    (
        "_operator",
        "reaches arbitrary attributes and methods (attrgetter, methodcaller)",
    ),
    (
        "functools",
        "wraps and calls arbitrary callables (partial, reduce)",
    ),
    ("timeit", "runs Python source"),
    ("trace", "runs Python source"),
    ("profile", "runs Python source"),
    ("cProfile", "runs Python source"),
    ("pdb", "runs Python source"),
    ("bdb", "runs Python source"),
    ("doctest", "runs Python source"),
    ("idlelib", "runs Python source"),
    ("lib2to3", "reads and writes files"),
    ("distutils", "runs build commands and writes files"),
    ("setuptools", "runs build commands and writes files"),
    ("pip", "installs packages"),
    ("ensurepip", "installs packages"),
    ("venv", "creates environments and runs installers"),
    ("site", "changes import paths"),
    ("tempfile", "creates files"),
    ("io", "opens files"),
    ("_io", "opens files"),
    ("codecs", "opens files (codecs.open)"),
    ("gc", "reaches every live object"),
    ("inspect", "reaches frames and globals"),
    ("platform", "runs commands"),
    ("_winapi", "operating-system access"),
    ("winreg", "operating-system access"),
    ("_winreg", "operating-system access"),
    ("msvcrt", "operating-system access"),
    ("builtins.__import__", "imports arbitrary modules"),
    (
        "__builtins__",
        "the builtins under another name (eval, exec, open)",
    ),
    // Standard-library modules with a function that runs a command or Python source behind an
    // innocent name (the gadgets picklescan, fickling and ModelAudit list, checked in CPython).
    (
        "_osx_support",
        "runs shell commands (_read_output, _find_build_tool)",
    ),
    ("_aix_support", "runs shell commands (_read_cmd_output)"),
    (
        "_pyrepl",
        "runs pagers and an interactive console (pager.pipe_pager runs a command)",
    ),
    (
        "imp",
        "imports source and native files (load_source, load_dynamic)",
    ),
    ("_imp", "imports native modules"),
    ("_frozen_importlib", "imports arbitrary modules"),
    ("_frozen_importlib_external", "imports files as modules"),
    ("unittest", "imports and runs test modules"),
    ("_interpreters", "runs Python source in a subinterpreter"),
    (
        "_xxsubinterpreters",
        "runs Python source in a subinterpreter",
    ),
    ("interpreters", "runs Python source in a subinterpreter"),
    ("compileall", "compiles sources and writes bytecode files"),
    ("py_compile", "compiles sources and writes bytecode files"),
    ("_pyio", "opens files"),
    ("fileinput", "reads files"),
    ("linecache", "reads files"),
    ("glob", "lists files"),
    ("filecmp", "reads files"),
    ("tarfile", "extracts and writes files"),
    ("zipfile", "extracts and writes files"),
    ("dbm", "opens database files"),
    (
        "sqlite3",
        "opens database files and loads native extensions",
    ),
    (
        "_sqlite3",
        "opens database files and loads native extensions",
    ),
    ("mmap", "maps files into memory"),
    ("readline", "reads and writes history files"),
    ("atexit", "runs callables when the interpreter exits"),
    ("_signal", "installs signal handlers"),
    ("select", "waits on sockets and files"),
    ("selectors", "waits on sockets and files"),
    ("syslog", "writes to the system log"),
    ("xmlrpc", "opens network connections and servers"),
    ("nntplib", "opens network connections"),
    ("smtpd", "opens network servers"),
    ("asyncore", "opens network connections"),
    ("asynchat", "opens network connections"),
    ("wsgiref", "opens network servers"),
    ("aiohttp", "opens network connections"),
    ("httpx", "opens network connections"),
    ("pexpect", "spawns processes"),
    ("paramiko", "opens SSH connections and runs remote commands"),
    ("pipes", "runs shell pipelines (pipes.Template)"),
    ("tkinter", "runs Tcl code, which can run commands"),
    ("_tkinter", "runs Tcl code, which can run commands"),
];

/// Single globals elsewhere that run code.
const DANGEROUS_GLOBALS: &[(&str, &str, &str)] = &[
    ("builtins", "eval", "evaluates Python source"),
    ("builtins", "exec", "executes Python source"),
    ("builtins", "execfile", "executes a Python file"),
    ("builtins", "compile", "compiles Python source"),
    ("builtins", "open", "opens files"),
    ("builtins", "file", "opens files"),
    ("builtins", "getattr", "reaches any attribute of any object"),
    ("builtins", "setattr", "changes attributes of any object"),
    ("builtins", "delattr", "deletes attributes of any object"),
    ("builtins", "__import__", "imports arbitrary modules"),
    ("builtins", "globals", "reaches the interpreter's globals"),
    ("builtins", "locals", "reaches the interpreter's locals"),
    ("builtins", "vars", "reaches an object's namespace"),
    ("builtins", "input", "reads from the terminal"),
    ("builtins", "breakpoint", "starts a debugger"),
    ("builtins", "reload", "re-imports modules"),
    ("builtins", "apply", "calls arbitrary callables"),
    ("builtins", "type", "creates new classes"),
    ("builtins", "memoryview", "exposes raw memory"),
    (
        "copyreg",
        "_reconstructor",
        "instantiates arbitrary classes (old-style pickling)",
    ),
    ("torch", "load", "loads another (unchecked) pickle"),
    (
        "torch.serialization",
        "load",
        "loads another (unchecked) pickle",
    ),
    (
        "torch.serialization",
        "_load",
        "loads another (unchecked) pickle",
    ),
    (
        "torch.storage",
        "_load_from_bytes",
        "loads another (unchecked) pickle from bytes",
    ),
    ("torch", "save", "writes files"),
    ("torch.jit", "load", "loads TorchScript code"),
    (
        "torch.hub",
        "load",
        "downloads and runs code from the network",
    ),
    ("numpy", "load", "loads arrays that may hold pickles"),
    (
        "numpy.lib.npyio",
        "load",
        "loads arrays that may hold pickles",
    ),
    (
        "numpy.testing._private.utils",
        "runstring",
        "executes Python source",
    ),
    ("numpy.f2py", "compile", "compiles and imports native code"),
    (
        "builtins",
        "help",
        "starts pydoc, which imports modules and runs a pager",
    ),
    (
        "builtins",
        "__build_class__",
        "runs a function body to build a class",
    ),
    ("logging", "FileHandler", "creates and writes files"),
    ("torch", "compile", "compiles and runs generated code"),
];

/// Module prefixes inside larger packages that run code.
const DANGEROUS_PREFIXES: &[(&str, &str)] = &[
    ("torch.hub", "downloads and runs code from the network"),
    ("torch.package", "imports code packaged in an archive"),
    (
        "torch.utils.cpp_extension",
        "compiles and loads native code",
    ),
    ("torch.utils.bottleneck", "runs Python files"),
    ("torch.utils.collect_env", "runs shell commands"),
    ("torch.fx", "builds modules from Python source (exec)"),
    ("torch._inductor", "compiles and loads generated code"),
    ("torch._dynamo", "rewrites and runs bytecode"),
    ("torch.jit", "compiles and runs TorchScript"),
    ("numpy.distutils", "runs build commands"),
    ("numpy.f2py", "compiles native code"),
    (
        "numpy.testing",
        "runs Python source (runstring) and spawns processes",
    ),
    (
        "torch.utils._config_module",
        "loads configuration from a nested pickle",
    ),
    (
        "torch.utils.data.datapipes.utils.decoder",
        "decodes nested pickles (basichandlers)",
    ),
    ("torch.distributed.rpc", "runs functions on remote workers"),
    (
        "logging.config",
        "reads configuration that names callables, and opens a listening socket",
    ),
    (
        "logging.handlers",
        "writes files and opens network connections",
    ),
    ("distutils.spawn", "spawns processes"),
    // Not the whole `test` package: a user's own `test.py` shadows it, and its classes are
    // merely unknown.
    (
        "test.support",
        "CPython's test helpers spawn interpreters and run code (script_helper)",
    ),
    (
        "test.libregrtest",
        "CPython's test runner imports and runs code",
    ),
    (
        "test.regrtest",
        "CPython's test runner imports and runs code",
    ),
];

/// Last name components that mean "runs something", in any module.
const DANGEROUS_NAMES: &[&str] = &[
    "system",
    "popen",
    "popen2",
    "popen3",
    "popen4",
    "spawn",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnv",
    "spawnve",
    "spawnvp",
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "exec",
    "eval",
    "run",
    "runcode",
    "runctx",
    "runeval",
    "runcall",
    "run_path",
    "run_module",
    "runsource",
    "call",
    "check_call",
    "check_output",
    "getoutput",
    "getstatusoutput",
    "Popen",
    "__import__",
    "import_module",
    "load_module",
    "loads",
    "_load_from_bytes",
    "load_inline",
    "attrgetter",
    "methodcaller",
    "getattr",
    "setattr",
    "urlopen",
    "urlretrieve",
    "rmtree",
    "remove",
    "unlink",
    "write_file",
    "write_text",
    "write_bytes",
    "start_new_thread",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "compile",
    "interact",
    "open",
    "load_library",
    "load_source",
    "load_dynamic",
    "read_pickle",
    "to_pickle",
    "unsafe_load",
    "full_load",
    "save",
    "savez",
    "savetxt",
    "tofile",
    "fromfile",
    "loadtxt",
    "genfromtxt",
    "pipe_pager",
    "tempfile_pager",
    "pager",
];

fn dangerous_reason(module: &str, name: &str) -> Option<String> {
    let full = format!("{module}.{name}");
    for (m, n, why) in DANGEROUS_GLOBALS {
        if module == *m && name == *n {
            return Some(format!("`{full}` {why}"));
        }
    }
    let root = root_module(module);
    for (m, why) in DANGEROUS_MODULES {
        if root == *m || module == *m {
            return Some(format!("module `{module}`: {why}"));
        }
    }
    for (prefix, why) in DANGEROUS_PREFIXES {
        if module == *prefix || module.starts_with(&format!("{prefix}.")) {
            return Some(format!("module `{module}`: {why}"));
        }
    }
    // `uuid.UUID` is data; the module's functions look for the MAC address by running
    // `ifconfig`, `ip`, `arp`, `netstat`... (`_get_command_stdout`).
    if module == "uuid" && !matches!(name, "UUID" | "SafeUUID" | "uuid3" | "uuid4" | "uuid5") {
        return Some(format!(
            "`{full}`: module `uuid`'s other functions find the MAC address by running commands (_get_command_stdout)"
        ));
    }
    if root == "pathlib" && name.contains('.') {
        return Some(format!(
            "`{full}` reaches a method of a path object, which reads, writes or deletes files"
        ));
    }
    if name.contains('.') && name.split('.').any(|part| part.starts_with("__")) {
        return Some(format!(
            "dotted name `{name}` walks through dunder attributes to reach objects the module does not export (for example __globals__ or __builtins__)"
        ));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if DANGEROUS_NAMES.contains(&last) || (module.ends_with("pickle") && last.starts_with("load")) {
        return Some(format!(
            "`{full}`: a function named `{last}` typically runs commands, code or nested loads"
        ));
    }
    if last == "load" && !module.starts_with("torch.") {
        return Some(format!(
            "`{full}`: a `load` function deserializes more data, possibly another pickle"
        ));
    }
    None
}

fn unknown_reason(module: &str, name: &str) -> String {
    let full = format!("{module}.{name}");
    let known = [
        (
            "numpy",
            "NumPy object (arrays, dtypes, scalars): benign in itself, but outside torch's weights_only allowlist",
        ),
        ("_codecs", "codec function outside the allowlist"),
        (
            "argparse",
            "argparse.Namespace of training arguments: benign in itself, but a class import",
        ),
        (
            "omegaconf",
            "OmegaConf configuration object: imports omegaconf and calls its constructors",
        ),
        (
            "pathlib",
            "a path object: benign in itself, but a class import",
        ),
        ("collections", "a collections class outside the allowlist"),
        (
            "__main__",
            "a class from the training script: loading needs that script's code and runs its constructor",
        ),
        (
            "torch",
            "a torch global outside torch's weights_only allowlist",
        ),
        (
            "lightning",
            "a Lightning class: imports Lightning and runs its constructors",
        ),
        (
            "pytorch_lightning",
            "a Lightning class: imports Lightning and runs its constructors",
        ),
        (
            "transformers",
            "a transformers class: imports transformers and runs its constructors",
        ),
        ("builtins", "a builtin outside the allowlist"),
    ];
    for (prefix, why) in known {
        if module == prefix || module.starts_with(&format!("{prefix}.")) {
            return format!("`{full}`: {why}");
        }
    }
    format!(
        "`{full}` is not on the allowlist: importing it runs module `{}`'s code and calling it can do anything that code does",
        root_module(module)
    )
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
