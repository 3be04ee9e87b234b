//! The stack, its MARK fences, and the values pushed on it.

use super::*;

impl Machine<'_, '_> {
    pub(super) fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn push(&mut self, v: Val) -> Step<()> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(self.limit(
                "values on the stack of one stream",
                "stack",
                self.limits.max_stack as u64,
            ));
        }
        self.stack.push(v);
        Ok(())
    }

    pub(super) fn node(&mut self, node: Node) -> Step<Val> {
        self.budget.nodes += 1;
        if self.budget.nodes > self.limits.max_nodes as u64 {
            return Err(self.limit("objects", "nodes", self.limits.max_nodes as u64));
        }
        Ok(self.arena.push(node))
    }

    pub(super) fn push_node(&mut self, node: Node) -> Step<Val> {
        let v = self.node(node)?;
        self.push(v)?;
        Ok(v)
    }

    pub(super) fn underflow(&self, op: Op) -> PickleError {
        PickleError::StackUnderflow {
            op: op.name(),
            offset: self.offset(),
        }
    }

    pub(super) fn pop(&mut self, op: Op) -> Step<Val> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow(op));
        }
        self.stack.pop().ok_or_else(|| self.underflow(op))
    }

    pub(super) fn top(&self, op: Op) -> Step<Val> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow(op));
        }
        self.stack.last().copied().ok_or_else(|| self.underflow(op))
    }

    pub(super) fn set_top(&mut self, v: Val) {
        if let Some(t) = self.stack.last_mut() {
            *t = v;
        }
    }

    pub(super) fn pop_mark(&mut self, op: Op) -> Step<Vec<Val>> {
        let Some(mark) = self.marks.pop() else {
            return Err(PickleError::NoMark {
                op: op.name(),
                offset: self.offset(),
            });
        };
        let items = self.stack.split_off(mark.min(self.stack.len()));
        self.store(items.len())?;
        Ok(items)
    }
}
