//! The bookkeeping of a Windows reservation, kept apart from the system calls so that it is
//! tested on every platform: which pieces of the reservation are placeholders, views of the
//! file, or private zero pages, and which calls turn one layout into another within the
//! memory manager's rules (a view or a private allocation replaces exactly one placeholder; a
//! placeholder splits only inside itself; only a run of placeholders coalesces; a view cannot
//! be cut, only unmapped whole). `sys/windows.rs` implements [`Vm`] with those calls; the
//! tests below implement it with a model that refuses every call those rules forbid.

use std::io;

/// What a piece of a reservation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A placeholder: reserved address space, no access.
    Placeholder,
    /// A view of the file, at the same offset in the file as in the reservation.
    View,
    /// Committed private pages of zeros (what `zero` leaves).
    Zero,
}

/// `[start, end)` of the reservation, one region as far as the memory manager is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The memory manager's calls, on offsets within the reservation.
pub(crate) trait Vm {
    /// Splits the placeholder that starts at `start` at `at`, inside it.
    fn split_placeholder(&mut self, start: usize, at: usize) -> io::Result<()>;
    /// Merges the adjacent placeholders that exactly cover `[from, to)`.
    fn coalesce(&mut self, from: usize, to: usize) -> io::Result<()>;
    /// Unmaps the view `[start, end)` back to a placeholder.
    fn unmap_view(&mut self, start: usize, end: usize) -> io::Result<()>;
    /// Frees the zero pages `[start, end)` back to a placeholder.
    fn free_zero(&mut self, start: usize, end: usize) -> io::Result<()>;
    /// Replaces the placeholder `[start, end)` with committed zero pages.
    fn commit_zero(&mut self, start: usize, end: usize) -> io::Result<()>;
    /// Replaces the placeholder `[start, end)` with a view of the file at offset `start`.
    fn map_view(&mut self, start: usize, end: usize) -> io::Result<()>;
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The pieces of a reservation: sorted and contiguous, covering `[0, len)` exactly.
#[derive(Debug)]
pub(crate) struct Pieces {
    list: Vec<Piece>,
}

impl Pieces {
    /// A reservation that is one placeholder.
    pub fn new(len: usize) -> Pieces {
        Pieces {
            list: vec![Piece {
                start: 0,
                end: len,
                kind: Kind::Placeholder,
            }],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Piece> {
        self.list.iter()
    }

    /// Whether a view covers any of `[from, to)`.
    pub fn has_view_in(&self, from: usize, to: usize) -> bool {
        self.list
            .iter()
            .any(|p| p.kind == Kind::View && p.start < to && p.end > from)
    }

    /// Maps the file over `[from, to)`, which may hold placeholders and zero pages but no view
    /// (a view cannot be replaced without a moment in which its memory is inaccessible).
    pub fn map(&mut self, vm: &mut impl Vm, from: usize, to: usize) -> io::Result<()> {
        if from >= to {
            return Ok(());
        }
        if self.has_view_in(from, to) {
            return Err(invalid("the range is already mapped"));
        }
        self.split(vm, from)?;
        self.split(vm, to)?;
        for i in 0..self.list.len() {
            if self.list[i].start >= from && self.list[i].end <= to {
                self.release_to_placeholder(vm, i)?;
            }
        }
        self.coalesce(vm, from, to)?;
        let i = self.index_at(from);
        self.map_view(vm, i)
    }

    /// Puts zero pages over `[from, to)`. A view that reaches out of the range is unmapped
    /// whole, cut at the range's ends, and what lies outside is mapped back at the same
    /// address: the one moment memory outside the range is inaccessible, so callers revoke
    /// every view over the reservation first.
    pub fn zero(&mut self, vm: &mut impl Vm, from: usize, to: usize) -> io::Result<()> {
        if from >= to {
            return Ok(());
        }
        while let Some(i) = self.list.iter().position(|p| {
            p.kind == Kind::View && p.start < to && p.end > from && (p.start < from || p.end > to)
        }) {
            let Piece { start, end, .. } = self.list[i];
            self.release_to_placeholder(vm, i)?;
            // Cut only this piece: another view may hold the range's other end.
            if start < from {
                self.split(vm, from)?;
                let k = self.index_at(start);
                self.map_view(vm, k)?;
            }
            if end > to {
                self.split(vm, to)?;
                let k = self.index_at(to);
                self.map_view(vm, k)?;
            }
        }
        self.split(vm, from)?;
        self.split(vm, to)?;
        for i in 0..self.list.len() {
            let p = self.list[i];
            if p.start >= from && p.end <= to && p.kind != Kind::Zero {
                self.release_to_placeholder(vm, i)?;
                vm.commit_zero(p.start, p.end)?;
                self.list[i].kind = Kind::Zero;
            }
        }
        Ok(())
    }

    /// The index of the piece that starts at `at` (a boundary the caller made).
    fn index_at(&self, at: usize) -> usize {
        self.list.partition_point(|p| p.start < at)
    }

    /// Makes `at` a boundary between pieces. Zero pages are freed, split and committed again
    /// (they hold only zeros); a view is never split here.
    fn split(&mut self, vm: &mut impl Vm, at: usize) -> io::Result<()> {
        let Some(i) = self.list.iter().position(|p| p.start < at && at < p.end) else {
            return Ok(());
        };
        let p = self.list[i];
        match p.kind {
            Kind::View => return Err(invalid("splitting a view")),
            Kind::Zero => self.release_to_placeholder(vm, i)?,
            Kind::Placeholder => {}
        }
        vm.split_placeholder(p.start, at)?;
        self.list[i].end = at;
        self.list.insert(
            i + 1,
            Piece {
                start: at,
                end: p.end,
                kind: Kind::Placeholder,
            },
        );
        if p.kind == Kind::Zero {
            for k in [i, i + 1] {
                vm.commit_zero(self.list[k].start, self.list[k].end)?;
                self.list[k].kind = Kind::Zero;
            }
        }
        Ok(())
    }

    /// Turns piece `i` back into a placeholder.
    fn release_to_placeholder(&mut self, vm: &mut impl Vm, i: usize) -> io::Result<()> {
        let p = self.list[i];
        match p.kind {
            Kind::Placeholder => return Ok(()),
            Kind::View => vm.unmap_view(p.start, p.end)?,
            Kind::Zero => vm.free_zero(p.start, p.end)?,
        }
        self.list[i].kind = Kind::Placeholder;
        Ok(())
    }

    /// Merges the placeholders that exactly cover `[from, to)` (boundaries the caller made).
    fn coalesce(&mut self, vm: &mut impl Vm, from: usize, to: usize) -> io::Result<()> {
        let first = self.index_at(from);
        let last = self.index_at(to) - 1;
        if first == last {
            return Ok(());
        }
        vm.coalesce(from, to)?;
        self.list.drain(first + 1..=last);
        self.list[first] = Piece {
            start: from,
            end: to,
            kind: Kind::Placeholder,
        };
        Ok(())
    }

    fn map_view(&mut self, vm: &mut impl Vm, i: usize) -> io::Result<()> {
        let p = self.list[i];
        vm.map_view(p.start, p.end)?;
        self.list[i].kind = Kind::View;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: usize = 4096;

    /// The memory manager as its documentation describes it: every call on a region that the
    /// rules do not allow fails, and each region's kind is tracked.
    #[derive(Debug)]
    struct Model {
        regions: Vec<Piece>,
        /// Calls made: a refused request must make none.
        calls: usize,
    }

    impl Model {
        fn new(len: usize) -> Model {
            Model {
                regions: vec![Piece {
                    start: 0,
                    end: len,
                    kind: Kind::Placeholder,
                }],
                calls: 0,
            }
        }

        fn exact(&self, start: usize, end: usize, kind: Kind) -> io::Result<usize> {
            self.regions
                .iter()
                .position(|r| r.start == start && r.end == end && r.kind == kind)
                .ok_or_else(|| invalid("no such region"))
        }

        fn set(&mut self, start: usize, end: usize, from: Kind, to: Kind) -> io::Result<()> {
            self.calls += 1;
            let i = self.exact(start, end, from)?;
            self.regions[i].kind = to;
            Ok(())
        }
    }

    impl Vm for Model {
        fn split_placeholder(&mut self, start: usize, at: usize) -> io::Result<()> {
            self.calls += 1;
            let i = self
                .regions
                .iter()
                .position(|r| r.start == start && r.kind == Kind::Placeholder && start < at && at < r.end)
                .ok_or_else(|| invalid("not inside a placeholder"))?;
            let end = self.regions[i].end;
            self.regions[i].end = at;
            self.regions.insert(
                i + 1,
                Piece {
                    start: at,
                    end,
                    kind: Kind::Placeholder,
                },
            );
            Ok(())
        }

        fn coalesce(&mut self, from: usize, to: usize) -> io::Result<()> {
            self.calls += 1;
            let first = self
                .regions
                .iter()
                .position(|r| r.start == from)
                .ok_or_else(|| invalid("no region starts there"))?;
            let last = self
                .regions
                .iter()
                .position(|r| r.end == to)
                .ok_or_else(|| invalid("no region ends there"))?;
            if last <= first
                || self.regions[first..=last]
                    .iter()
                    .any(|r| r.kind != Kind::Placeholder)
            {
                return Err(invalid("not a run of placeholders"));
            }
            self.regions.drain(first + 1..=last);
            self.regions[first].end = to;
            Ok(())
        }

        fn unmap_view(&mut self, start: usize, end: usize) -> io::Result<()> {
            self.set(start, end, Kind::View, Kind::Placeholder)
        }

        fn free_zero(&mut self, start: usize, end: usize) -> io::Result<()> {
            self.set(start, end, Kind::Zero, Kind::Placeholder)
        }

        fn commit_zero(&mut self, start: usize, end: usize) -> io::Result<()> {
            self.set(start, end, Kind::Placeholder, Kind::Zero)
        }

        fn map_view(&mut self, start: usize, end: usize) -> io::Result<()> {
            self.set(start, end, Kind::Placeholder, Kind::View)
        }
    }

    /// What each page holds, by the pieces and by the model; they must agree region by region.
    fn check_agree(p: &Pieces, m: &Model, len: usize) {
        assert_eq!(
            p.list, m.regions,
            "the piece list and the memory manager disagree"
        );
        assert_eq!(p.list.first().map(|r| r.start), Some(0));
        assert_eq!(p.list.last().map(|r| r.end), Some(len));
        for w in p.list.windows(2) {
            assert_eq!(w[0].end, w[1].start, "pieces are contiguous");
            assert!(w[0].start < w[0].end);
        }
    }

    fn pages(p: &Pieces, len: usize) -> Vec<Kind> {
        let mut out = vec![Kind::Placeholder; len / PAGE];
        for r in p.iter() {
            for k in &mut out[r.start / PAGE..r.end / PAGE] {
                *k = r.kind;
            }
        }
        out
    }

    #[test]
    fn growth_maps_new_pieces_after_the_old_ones() {
        let len = 64 * PAGE;
        let (mut p, mut m) = (Pieces::new(len), Model::new(len));
        p.map(&mut m, 0, 3 * PAGE).unwrap();
        p.map(&mut m, 3 * PAGE, 10 * PAGE).unwrap();
        p.map(&mut m, 10 * PAGE, 64 * PAGE).unwrap();
        check_agree(&p, &m, len);
        let views: Vec<_> = p.iter().map(|r| (r.start / PAGE, r.end / PAGE, r.kind)).collect();
        assert_eq!(
            views,
            [(0, 3, Kind::View), (3, 10, Kind::View), (10, 64, Kind::View)]
        );
    }

    #[test]
    fn a_mapped_range_is_refused_and_nothing_changes() {
        let len = 16 * PAGE;
        let (mut p, mut m) = (Pieces::new(len), Model::new(len));
        p.map(&mut m, 0, 4 * PAGE).unwrap();
        let calls = m.calls;
        assert!(p.map(&mut m, 2 * PAGE, 8 * PAGE).is_err());
        assert_eq!(m.calls, calls, "no call was made for a refused mapping");
        check_agree(&p, &m, len);
    }

    #[test]
    fn shrinking_keeps_the_rows_below_and_zeroes_the_rest() {
        let len = 64 * PAGE;
        let (mut p, mut m) = (Pieces::new(len), Model::new(len));
        p.map(&mut m, 0, 8 * PAGE).unwrap();
        p.map(&mut m, 8 * PAGE, 32 * PAGE).unwrap();
        p.zero(&mut m, 5 * PAGE, 32 * PAGE).unwrap();
        check_agree(&p, &m, len);
        let k = pages(&p, len);
        assert!(k[..5].iter().all(|&x| x == Kind::View));
        assert!(k[5..32].iter().all(|&x| x == Kind::Zero));
        assert!(k[32..].iter().all(|&x| x == Kind::Placeholder));
        // Growing again over part of the zero pages maps the file there and keeps zeros above.
        p.map(&mut m, 5 * PAGE, 12 * PAGE).unwrap();
        check_agree(&p, &m, len);
        let k = pages(&p, len);
        assert!(k[..12].iter().all(|&x| x == Kind::View));
        assert!(k[12..32].iter().all(|&x| x == Kind::Zero));
    }

    #[test]
    fn zeroing_inside_one_view_maps_both_sides_back() {
        let len = 16 * PAGE;
        let (mut p, mut m) = (Pieces::new(len), Model::new(len));
        p.map(&mut m, 0, 16 * PAGE).unwrap();
        p.zero(&mut m, 4 * PAGE, 6 * PAGE).unwrap();
        check_agree(&p, &m, len);
        let views: Vec<_> = p.iter().map(|r| (r.start / PAGE, r.end / PAGE, r.kind)).collect();
        assert_eq!(
            views,
            [(0, 4, Kind::View), (4, 6, Kind::Zero), (6, 16, Kind::View)]
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Map(usize, usize),
        Zero(usize, usize),
    }

    fn op(pages: usize) -> impl Strategy<Value = Op> {
        (0..=pages, 0..=pages, any::<bool>()).prop_map(|(a, b, map)| {
            let (from, to) = (a.min(b) * PAGE, a.max(b) * PAGE);
            if map {
                Op::Map(from, to)
            } else {
                Op::Zero(from, to)
            }
        })
    }

    proptest! {
        /// Any sequence of mappings and zeroings leaves every page holding what the last call
        /// over it asked for, and the piece list in step with the memory manager, whose rules
        /// every call obeyed.
        #[test]
        fn any_sequence_keeps_the_pieces_in_step(ops in proptest::collection::vec(op(24), 1..40)) {
            let len = 24 * PAGE;
            let (mut p, mut m) = (Pieces::new(len), Model::new(len));
            let mut want = vec![Kind::Placeholder; 24];
            for o in ops {
                match o {
                    Op::Map(from, to) => {
                        let taken = want[from / PAGE..to / PAGE].contains(&Kind::View);
                        let r = p.map(&mut m, from, to);
                        prop_assert_eq!(r.is_err(), taken);
                        if !taken {
                            want[from / PAGE..to / PAGE].fill(Kind::View);
                        }
                    }
                    Op::Zero(from, to) => {
                        p.zero(&mut m, from, to).unwrap();
                        want[from / PAGE..to / PAGE].fill(Kind::Zero);
                    }
                }
                check_agree(&p, &m, len);
                prop_assert_eq!(pages(&p, len), want.clone());
            }
        }
    }
}
