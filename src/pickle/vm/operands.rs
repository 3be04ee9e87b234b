//! Reading operands: fixed-width integers, lines and payloads, charged to the budget
//! before anything is allocated, and the frame-straddle check of CPython's C unpickler.

use super::*;

impl Machine<'_, '_> {
    pub(super) fn truncated(&self, op: Op) -> PickleError {
        PickleError::Truncated {
            op: op.name(),
            offset: self.offset(),
        }
    }

    /// The end of the frame `pos` is in, if any.
    pub(super) fn boundary(&self) -> Option<usize> {
        match self.framing {
            Framing::ReadThrough => self.frame_end.filter(|&end| self.pos < end),
            Framing::FileNoPeek => (self.pos < self.buffered_to).then_some(self.buffered_to),
        }
    }

    /// Notes the first read of `n` bytes that crosses the end of a frame.
    pub(super) fn check_straddle(&mut self, op: Op, n: usize) {
        if self.straddle.is_some() {
            return;
        }
        if let Some(end) = self.boundary()
            && self.pos.saturating_add(n) > end
        {
            self.straddle = Some(Straddle {
                offset: self.offset(),
                op: op.name(),
                frame_end: end as u64,
            });
        }
    }

    /// Where the next `n` bytes come from, as `[start, end)` of the input: the C unpickler over a
    /// file reads what does not fit in its buffer from the file after the buffer, except for
    /// `through` reads (`readinto`), which first drain the buffer.
    pub(super) fn span(&self, n: usize, through: bool) -> Option<(usize, usize)> {
        let here = self.pos.checked_add(n)?;
        let (start, end) = match self.boundary() {
            Some(buffered)
                if self.framing == Framing::FileNoPeek && here > buffered && !through =>
            {
                (buffered, buffered.checked_add(n)?)
            }
            _ => (self.pos, here),
        };
        (end <= self.input.len()).then_some((start, end))
    }

    /// Reads `n` bytes the way the modelled unpickler does.
    pub(super) fn read(&mut self, op: Op, n: u64, through: bool) -> Step<&[u8]> {
        let n = usize::try_from(n).map_err(|_| self.truncated(op))?;
        self.check_straddle(op, n);
        let (start, end) = self.span(n, through).ok_or_else(|| self.truncated(op))?;
        self.advance_to(end);
        self.input.get(start..end).ok_or_else(|| self.truncated(op))
    }

    pub(super) fn advance_to(&mut self, end: usize) {
        self.pos = end;
        self.buffered_to = self.buffered_to.max(end);
        if self.frame_end.is_some_and(|e| end >= e) {
            self.frame_end = None;
        }
    }

    pub(super) fn take(&mut self, op: Op, n: u64) -> Step<&[u8]> {
        self.read(op, n, false)
    }

    pub(super) fn take_array<const N: usize>(&mut self, op: Op) -> Step<[u8; N]> {
        let bytes = self.take(op, N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(super) fn u8(&mut self, op: Op) -> Step<u8> {
        Ok(self.take_array::<1>(op)?[0])
    }

    pub(super) fn u16(&mut self, op: Op) -> Step<u16> {
        Ok(u16::from_le_bytes(self.take_array(op)?))
    }

    pub(super) fn u32(&mut self, op: Op) -> Step<u32> {
        Ok(u32::from_le_bytes(self.take_array(op)?))
    }

    pub(super) fn u64(&mut self, op: Op) -> Step<u64> {
        Ok(u64::from_le_bytes(self.take_array(op)?))
    }

    /// A text operand up to (not including) the next `\n`. Over a file, the C unpickler looks
    /// for it in its buffer and, failing that, reads a whole new line from the file after the
    /// buffer.
    pub(super) fn line(&mut self, op: Op) -> Step<&[u8]> {
        let newline = |from: usize| {
            self.input
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map(|nl| from + nl)
        };
        let mut start = self.pos;
        let mut nl = newline(start).ok_or_else(|| self.truncated(op))?;
        if let Some(end) = self.boundary()
            && nl >= end
        {
            if self.straddle.is_none() {
                self.straddle = Some(Straddle {
                    offset: self.offset(),
                    op: op.name(),
                    frame_end: end as u64,
                });
            }
            if self.framing == Framing::FileNoPeek {
                start = end;
                nl = newline(start).ok_or_else(|| self.truncated(op))?;
            }
        }
        self.advance_to(nl + 1);
        self.input.get(start..nl).ok_or_else(|| self.truncated(op))
    }

    pub(super) fn line_text(&mut self, op: Op) -> Step<String> {
        let line = self.line(op)?;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(self.bad_operand(op, "text operand is not UTF-8")),
        }
    }

    /// Counts materialized bytes against the limit before they are copied.
    pub(super) fn charge(&mut self, n: u64) -> Step<()> {
        self.budget.bytes = self.budget.bytes.saturating_add(n);
        if self.budget.bytes > self.limits.max_bytes {
            return Err(self.limit("bytes of strings", "bytes", self.limits.max_bytes));
        }
        Ok(())
    }

    /// Counts values about to be stored in a container.
    pub(super) fn store(&mut self, n: usize) -> Step<()> {
        self.budget.items = self.budget.items.saturating_add(n as u64);
        if self.budget.items > self.limits.max_items {
            return Err(self.limit(
                "values stored in containers",
                "items",
                self.limits.max_items,
            ));
        }
        Ok(())
    }

    /// Reads a length-prefixed payload, checking the length against the input first. `through`:
    /// the C unpickler reads it with `readinto` (the bytes opcodes), draining a frame's buffer
    /// before reading on.
    pub(super) fn payload(&mut self, op: Op, len: u64, through: bool) -> Step<Vec<u8>> {
        let n = usize::try_from(len).map_err(|_| self.truncated(op))?;
        self.check_straddle(op, n);
        if self.span(n, through).is_none() {
            return Err(self.truncated(op));
        }
        self.charge(len)?;
        Ok(self.read(op, len, through)?.to_vec())
    }
}
