//! The memo: PUT, BINPUT, LONG_BINPUT, MEMOIZE, GET, BINGET, LONG_BINGET.

use super::*;

impl Machine<'_, '_> {
    pub(super) fn memo_put(&mut self, index: u64, v: Val) -> Step<()> {
        if !self.memo.contains_key(&index) && self.memo.len() >= self.limits.max_memo {
            return Err(self.limit(
                "memo entries in one stream",
                "memo",
                self.limits.max_memo as u64,
            ));
        }
        self.memo.insert(index, v);
        Ok(())
    }

    pub(super) fn memo_get(&mut self, op: Op, index: u64) -> Step<()> {
        let v = *self.memo.get(&index).ok_or(PickleError::MemoMissing {
            op: op.name(),
            offset: self.offset(),
            index,
        })?;
        self.push(v)
    }

    /// Runs a memo opcode.
    pub(super) fn memo_op(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::Put => {
                let text = self.line_text(op)?;
                let index: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| self.bad_operand(op, format!("`{text}` is not a memo index")))?;
                let index = u64::try_from(index)
                    .map_err(|_| self.bad_operand(op, "negative PUT argument"))?;
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::BinPut => {
                let index = u64::from(self.u8(op)?);
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::LongBinPut => {
                let index = u64::from(self.u32(op)?);
                let v = self.top(op)?;
                self.memo_put(index, v)?;
            }
            Op::Memoize => {
                let v = self.top(op)?;
                let index = self.memo.len() as u64;
                self.memo_put(index, v)?;
            }
            Op::Get => {
                let text = self.line_text(op)?;
                let index: u64 = text
                    .trim()
                    .parse()
                    .map_err(|_| self.bad_operand(op, format!("`{text}` is not a memo index")))?;
                self.memo_get(op, index)?;
            }
            Op::BinGet => {
                let index = u64::from(self.u8(op)?);
                self.memo_get(op, index)?;
            }
            Op::LongBinGet => {
                let index = u64::from(self.u32(op)?);
                self.memo_get(op, index)?;
            }

            // Imports, calls and object state: the ones that matter.
            _ => return Err(self.misrouted(op)),
        }
        Ok(None)
    }
}
