//! Globals and calls: GLOBAL, STACK_GLOBAL, INST, OBJ, REDUCE, NEWOBJ(_EX), BUILD, the
//! extension registry and persistent ids. Nothing is imported or called: each becomes a
//! symbolic node and an [`Event`] for the policy.

use super::*;

impl Machine<'_, '_> {
    /// Records a GLOBAL-like import and returns the node.
    pub(super) fn global(&mut self, op: Op, module: String, name: String) -> Step<Val> {
        self.charge((module.len() + name.len()) as u64)?;
        // Judging an import costs far more than an opcode: each counts as GLOBAL_COST opcodes
        // against the budget (real pickles import a handful of names and memoize them).
        self.budget.ops = self.budget.ops.saturating_add(GLOBAL_COST - 1);
        if self.budget.ops > self.limits.max_ops {
            return Err(self.limit("opcodes", "ops", self.limits.max_ops));
        }
        let v = self.node(Node::Global { module, name })?;
        if let Val::Ref(node) = v {
            let offset = self.offset();
            self.emit(Event::Global { node, offset, op });
        }
        Ok(v)
    }

    pub(super) fn call(
        &mut self,
        op: Op,
        kind: CallKind,
        callable: Val,
        args: Val,
        kwargs: Option<Val>,
    ) -> Step<Val> {
        let v = self.node(Node::Object(Box::new(Object {
            callable,
            kind,
            args,
            kwargs,
            state: Vec::new(),
            items: Vec::new(),
            entries: Vec::new(),
            offset: self.offset(),
        })))?;
        if let Val::Ref(node) = v {
            let offset = self.offset();
            self.emit(Event::Call { node, offset, op });
        }
        Ok(v)
    }

    pub(super) fn persistent(&mut self, op: Op, pid: Val) -> Step<()> {
        let offset = self.offset();
        self.emit(Event::Persistent { pid, offset, op });
        self.push_node(Node::Persistent { pid })?;
        Ok(())
    }

    /// Runs an opcode that imports, calls or refers to something outside the stream.
    pub(super) fn call_op(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::Global => {
                let module = self.line_text(op)?;
                let name = self.line_text(op)?;
                let v = self.global(op, module, name)?;
                self.push(v)?;
            }
            Op::StackGlobal => {
                let name = self.pop(op)?;
                let module = self.pop(op)?;
                match (self.arena.str(module), self.arena.str(name)) {
                    (Some(m), Some(n)) => {
                        let (m, n) = (m.to_string(), n.to_string());
                        let v = self.global(op, m, n)?;
                        self.push(v)?;
                    }
                    _ if self.is_literal(module) && self.is_literal(name) => {
                        // Numbers, None, bytes...: CPython raises "STACK_GLOBAL requires str".
                        let what = format!(
                            "{}, {}",
                            self.arena.repr(module, 60),
                            self.arena.repr(name, 60)
                        );
                        return Err(self.bad_value(
                            op,
                            format!("STACK_GLOBAL requires two str operands, got {what}"),
                        ));
                    }
                    _ => {
                        // Operands made by calls (`str('os')`): a real unpickler gets strings at
                        // load time and imports whatever they spell. The import is unknowable
                        // here, which is itself the finding.
                        let m = format!("<computed: {}>", self.arena.repr(module, 80));
                        let n = format!("<computed: {}>", self.arena.repr(name, 80));
                        let v = self.global(op, m, n)?;
                        let offset = self.offset();
                        self.emit(Event::ComputedGlobal {
                            module,
                            name,
                            offset,
                        });
                        self.push(v)?;
                    }
                }
            }
            Op::Inst => {
                let module = self.line_text(op)?;
                let name = self.line_text(op)?;
                let args = self.pop_mark(op)?;
                let class = self.global(op, module, name)?;
                let args = self.node(Node::Tuple(args))?;
                let v = self.call(op, CallKind::Inst, class, args, None)?;
                self.push(v)?;
            }
            Op::Obj => {
                let mut items = self.pop_mark(op)?;
                if items.is_empty() {
                    return Err(self.underflow(op));
                }
                let class = items.remove(0);
                let args = self.node(Node::Tuple(items))?;
                let v = self.call(op, CallKind::Obj, class, args, None)?;
                self.push(v)?;
            }
            Op::Reduce => {
                let args = self.pop(op)?;
                let callable = self.top(op)?;
                let v = self.call(op, CallKind::Reduce, callable, args, None)?;
                self.set_top(v);
            }
            Op::NewObj => {
                let args = self.pop(op)?;
                let class = self.pop(op)?;
                let v = self.call(op, CallKind::NewObj, class, args, None)?;
                self.push(v)?;
            }
            Op::NewObjEx => {
                let kwargs = self.pop(op)?;
                let args = self.pop(op)?;
                let class = self.pop(op)?;
                let v = self.call(op, CallKind::NewObjEx, class, args, Some(kwargs))?;
                self.push(v)?;
            }
            Op::Build => {
                let state = self.pop(op)?;
                let target = self.top(op)?;
                if let Val::Ref(id) = target
                    && matches!(self.arena.get(id), Some(Node::Object(_)))
                {
                    self.store(1)?;
                    if let Some(Node::Object(obj)) = self.arena.get_mut(id) {
                        obj.state.push(state);
                    }
                }
                let offset = self.offset();
                self.emit(Event::Build {
                    target,
                    state,
                    offset,
                });
            }
            Op::Persid => {
                let text = self.line(op)?.to_vec();
                self.charge(text.len() as u64)?;
                let pid = self.node(Node::Str(String::from_utf8_lossy(&text).into_owned()))?;
                self.persistent(op, pid)?;
            }
            Op::BinPersid => {
                let pid = self.pop(op)?;
                self.persistent(op, pid)?;
            }
            Op::Ext1 | Op::Ext2 | Op::Ext4 => {
                let code = match op {
                    Op::Ext1 => u32::from(self.u8(op)?),
                    Op::Ext2 => u32::from(self.u16(op)?),
                    _ => self.u32(op)?,
                };
                if code == 0 {
                    return Err(self.bad_operand(op, "extension code 0 is invalid"));
                }
                self.push_node(Node::Extension { code })?;
                let offset = self.offset();
                self.emit(Event::Extension { code, offset });
            }
            _ => return Err(self.misrouted(op)),
        }
        Ok(None)
    }
}
