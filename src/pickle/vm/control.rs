//! Control: STOP, PROTO, FRAME, MARK, POP, POP_MARK, DUP.

use super::*;

impl Machine<'_, '_> {
    /// Runs a control opcode; `Some(root)` at STOP.
    pub(super) fn control_op(&mut self, op: Op) -> Step<Option<Val>> {
        match op {
            Op::Stop => {
                let root = self.pop(op)?;
                return Ok(Some(root));
            }
            Op::Proto => {
                let proto = self.u8(op)?;
                if proto > 5 {
                    return Err(PickleError::BadProtocol {
                        proto,
                        offset: self.offset(),
                    });
                }
                self.protocol = proto;
            }
            Op::Frame => {
                // The C unpickler reads the frame's bytes (into its buffer, over a file) and steps
                // back to their start; over memory that only checks they are there.
                let len = self.u64(op)?;
                let n = usize::try_from(len).map_err(|_| self.truncated(op))?;
                if self.boundary().is_some() && self.straddle.is_none() {
                    // pickle.py refuses a frame that starts before the last one ends.
                    self.straddle = Some(Straddle {
                        offset: self.offset(),
                        op: op.name(),
                        frame_end: self.boundary().unwrap_or(self.pos) as u64,
                    });
                }
                let (start, end) = self.span(n, false).ok_or_else(|| self.truncated(op))?;
                self.pos = start;
                self.buffered_to = self.buffered_to.max(end);
                if self.framing == Framing::ReadThrough {
                    self.frame_end = (end > start).then_some(end);
                }
            }
            Op::Mark => {
                if self.marks.len() >= self.limits.max_marks {
                    return Err(self.limit(
                        "nested MARKs in one stream",
                        "marks",
                        self.limits.max_marks as u64,
                    ));
                }
                self.marks.push(self.stack.len());
            }
            Op::Pop => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else {
                    // CPython pops the MARK itself when nothing is above it.
                    self.pop_mark(op)?;
                }
            }
            Op::PopMark => {
                self.pop_mark(op)?;
            }
            Op::Dup => {
                let v = self.top(op)?;
                self.push(v)?;
            }

            // Numbers and constants.
            _ => return Err(self.misrouted(op)),
        }
        Ok(None)
    }
}
