//! The heuristic complementary pass: sub-table conditions enforced round by round, cheapest
//! cells first (see the parent module for the conditions and why they protect).

use petgraph::algo::bridges::bridges;
use petgraph::graph::{NodeIndex, UnGraph};

use super::{Group, Reason, Table};

const UNSELECTABLE: u64 = u64::MAX;

pub(super) struct State<'a> {
    pub(super) t: &'a Table,
    pub(super) n: usize,
    pub(super) reasons: Vec<Option<Reason>>,
    pub(super) changed: bool,
}

impl State<'_> {
    fn hidden(&self, cell: usize) -> bool {
        self.reasons[cell].is_some()
    }

    /// The cost of hiding a cell: 0 if hidden, else its count plus one (prefer small cells).
    fn cost(&self, cell: usize) -> u64 {
        if self.hidden(cell) {
            0
        } else {
            self.t.values[cell].saturating_add(1)
        }
    }

    fn hide(&mut self, cell: usize, why: Reason) {
        if self.reasons[cell].is_none() {
            self.reasons[cell] = Some(why);
            self.changed = true;
        }
    }

    /// A relation over `cells` must not have exactly one hidden cell.
    pub(super) fn at_least_two(&mut self, cells: &[usize], why: Reason) {
        if cells.iter().filter(|&&c| self.hidden(c)).count() != 1 {
            return;
        }
        if let Some(&best) = cells
            .iter()
            .filter(|&&c| !self.hidden(c))
            .min_by_key(|&&c| (self.cost(c), c))
        {
            self.hide(best, why);
        }
    }

    /// Enforces the sub-table conditions for unit `u`, its children and the groups of total
    /// column `t`.
    pub(super) fn subtable(&mut self, u: usize, kids: &[usize], t: usize) {
        let groups: Vec<&Group> = self.t.groups.iter().filter(|g| g.total == t).collect();
        if let [v] = kids {
            self.only_child(u, *v, t, &groups);
            return;
        }
        self.child_parts(u, kids, &groups);
        self.child_totals(u, kids, t, &groups);
        self.parent_parts(u, kids, &groups);
        self.parent_total(u, kids, t, &groups);
    }

    /// An only child has its parent's counts: hide the same cells in both.
    fn only_child(&mut self, u: usize, v: usize, t: usize, groups: &[&Group]) {
        let n = self.n;
        let cell = |r: usize, c: usize| r * n + c;
        let cols: Vec<usize> = std::iter::once(t)
            .chain(groups.iter().flat_map(|g| g.parts.iter().copied()))
            .collect();
        for c in cols {
            if self.hidden(cell(v, c)) {
                self.hide(cell(u, c), Reason::OnlyChild);
            } else if self.hidden(cell(u, c)) {
                self.hide(cell(v, c), Reason::OnlyChild);
            }
        }
    }

    /// Part cells of children: each must lie on a cycle (no bridges).
    fn child_parts(&mut self, u: usize, kids: &[usize], groups: &[&Group]) {
        let n = self.n;
        let cell = |r: usize, c: usize| r * n + c;
        for g in groups {
            while let Some((ki, pi)) = self.find_bridge(kids, g) {
                let (v, p) = (kids[ki], g.parts[pi]);
                let mut best: Option<(u64, usize, usize)> = None;
                for (wi, &w) in kids.iter().enumerate() {
                    if wi == ki {
                        continue;
                    }
                    for (qi, &q) in g.parts.iter().enumerate() {
                        if qi == pi {
                            continue;
                        }
                        let c =
                            self.cost(cell(v, q)) + self.cost(cell(w, p)) + self.cost(cell(w, q));
                        if best.is_none_or(|b| c < b.0) {
                            best = Some((c, w, q));
                        }
                    }
                }
                match best {
                    Some((_, w, q)) => {
                        self.hide(cell(v, q), Reason::Rectangle);
                        self.hide(cell(w, p), Reason::Rectangle);
                        self.hide(cell(w, q), Reason::Rectangle);
                    }
                    // An only child: its counts are its parent's, so hide the parent's.
                    None => {
                        self.hide(cell(u, p), Reason::Parent);
                        break;
                    }
                }
            }
        }
    }

    /// Total cells of children: each pairs with another child's hidden total, connected in
    /// every group.
    fn child_totals(&mut self, u: usize, kids: &[usize], t: usize, groups: &[&Group]) {
        let n = self.n;
        let cell = |r: usize, c: usize| r * n + c;
        for &v in kids {
            if !self.hidden(cell(v, t)) {
                continue;
            }
            let comps: Vec<Vec<usize>> = groups.iter().map(|g| self.components(kids, g)).collect();
            let vi = kids.iter().position(|&x| x == v).expect("a child");
            let ok = kids.iter().enumerate().any(|(wi, &w)| {
                w != v && self.hidden(cell(w, t)) && comps.iter().all(|c| c[wi] == c[vi])
            });
            if ok {
                continue;
            }
            let mut best: Option<(u64, usize)> = None;
            for (wi, &w) in kids.iter().enumerate() {
                if w == v {
                    continue;
                }
                let mut c = self.cost(cell(w, t));
                for (g, comp) in groups.iter().zip(&comps) {
                    if comp[wi] != comp[vi] {
                        c += g
                            .parts
                            .iter()
                            .map(|&p| self.cost(cell(v, p)) + self.cost(cell(w, p)))
                            .min()
                            .unwrap_or(UNSELECTABLE);
                    }
                }
                if best.is_none_or(|b| c < b.0) {
                    best = Some((c, w));
                }
            }
            match best {
                Some((_, w)) => {
                    self.hide(cell(w, t), Reason::Siblings);
                    for (g, comp) in groups.iter().zip(&comps) {
                        if comp[kids.iter().position(|&x| x == w).expect("a child")] != comp[vi] {
                            let p = *g
                                .parts
                                .iter()
                                .min_by_key(|&&p| {
                                    (self.cost(cell(v, p)) + self.cost(cell(w, p)), p)
                                })
                                .expect("a group has parts");
                            self.hide(cell(v, p), Reason::Siblings);
                            self.hide(cell(w, p), Reason::Siblings);
                        }
                    }
                }
                None => self.hide(cell(u, t), Reason::Parent),
            }
        }
    }

    /// The parent's row: hidden parts connected in each group.
    fn parent_parts(&mut self, u: usize, kids: &[usize], groups: &[&Group]) {
        let n = self.n;
        let cell = |r: usize, c: usize| r * n + c;
        for g in groups {
            let margin: Vec<usize> = (0..g.parts.len())
                .filter(|&pi| self.hidden(cell(u, g.parts[pi])))
                .collect();
            let Some(&anchor) = margin.first() else {
                continue;
            };
            for &pi in &margin[1..] {
                let comp = self.components(kids, g);
                let k = kids.len();
                if comp[k + pi] == comp[k + anchor] {
                    continue;
                }
                let (a, p) = (g.parts[anchor], g.parts[pi]);
                let w = *kids
                    .iter()
                    .min_by_key(|&&w| (self.cost(cell(w, a)) + self.cost(cell(w, p)), w))
                    .expect("u has children");
                self.hide(cell(w, a), Reason::Parent);
                self.hide(cell(w, p), Reason::Parent);
            }
        }
    }

    /// A hidden parent total connected to a child's hidden total in every group.
    fn parent_total(&mut self, u: usize, kids: &[usize], t: usize, groups: &[&Group]) {
        let n = self.n;
        let cell = |r: usize, c: usize| r * n + c;
        if self.hidden(cell(u, t)) {
            let comps: Vec<Vec<usize>> = groups.iter().map(|g| self.components(kids, g)).collect();
            let anchors: Vec<Option<usize>> = groups
                .iter()
                .map(|g| (0..g.parts.len()).find(|&pi| self.hidden(cell(u, g.parts[pi]))))
                .collect();
            let k = kids.len();
            let linked = |s: &Self, wi: usize| {
                s.hidden(cell(kids[wi], t))
                    && groups.iter().enumerate().all(|(gi, _)| match anchors[gi] {
                        Some(a) => comps[gi][wi] == comps[gi][k + a],
                        None => true,
                    })
            };
            if !(0..k).any(|wi| linked(self, wi)) {
                let mut best: Option<(u64, usize)> = None;
                for (wi, &w) in kids.iter().enumerate() {
                    let mut c = self.cost(cell(w, t));
                    for (gi, g) in groups.iter().enumerate() {
                        if let Some(a) = anchors[gi]
                            && comps[gi][wi] != comps[gi][k + a]
                        {
                            c += self.cost(cell(w, g.parts[a]));
                        }
                    }
                    if best.is_none_or(|b| c < b.0) {
                        best = Some((c, wi));
                    }
                }
                let (_, wi) = best.expect("u has children");
                let w = kids[wi];
                self.hide(cell(w, t), Reason::Parent);
                for (gi, g) in groups.iter().enumerate() {
                    if let Some(a) = anchors[gi]
                        && comps[gi][wi] != comps[gi][k + a]
                    {
                        self.hide(cell(w, g.parts[a]), Reason::Parent);
                    }
                }
            }
        }
    }

    /// Connected components of the graph children + parts with hidden (child, part) edges:
    /// a label per vertex (children first, then parts).
    fn components(&self, kids: &[usize], g: &Group) -> Vec<usize> {
        let k = kids.len();
        let mut uf = UnionFind::new(k + g.parts.len());
        for (vi, &v) in kids.iter().enumerate() {
            for (pi, &p) in g.parts.iter().enumerate() {
                if self.hidden(v * self.n + p) {
                    uf.union(vi, k + pi);
                }
            }
        }
        (0..k + g.parts.len()).map(|i| uf.find(i)).collect()
    }

    /// A hidden (child, part) cell that is a bridge of the children + parts graph, as
    /// (child position, part position): the first in child-major order, found in time linear
    /// in the graph (Tarjan's bridges, from `petgraph`).
    fn find_bridge(&self, kids: &[usize], g: &Group) -> Option<(usize, usize)> {
        let k = kids.len();
        let mut graph: UnGraph<(), (usize, usize)> = UnGraph::with_capacity(k + g.parts.len(), 0);
        for _ in 0..k + g.parts.len() {
            graph.add_node(());
        }
        for (vi, &v) in kids.iter().enumerate() {
            for (pi, &p) in g.parts.iter().enumerate() {
                if self.hidden(v * self.n + p) {
                    graph.add_edge(NodeIndex::new(vi), NodeIndex::new(k + pi), (vi, pi));
                }
            }
        }
        bridges(&graph).map(|e| *e.weight()).min()
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a] = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition: the first hidden edge whose removal disconnects its two ends.
    fn first_bridge_by_removal(hidden: &[Vec<bool>], parts: usize) -> Option<(usize, usize)> {
        let k = hidden.len();
        let edges: Vec<(usize, usize)> = (0..k)
            .flat_map(|v| {
                (0..parts)
                    .filter(move |&p| hidden[v][p])
                    .map(move |p| (v, p))
            })
            .collect();
        edges.iter().copied().find(|&(v, p)| {
            let mut uf = UnionFind::new(k + parts);
            for &(a, b) in edges.iter().filter(|&&e| e != (v, p)) {
                uf.union(a, k + b);
            }
            uf.find(v) != uf.find(k + p)
        })
    }

    proptest! {
        /// The linear-time search finds the bridge the definition does, on any pattern of
        /// hidden cells.
        #[test]
        fn the_bridge_found_is_the_first_by_definition(
            hidden in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 4), 1..7),
        ) {
            let k = hidden.len();
            // Row 0 is the parent; rows 1..=k its children; column 0 the total, 1..=4 parts.
            let table = Table::new(["total", "a", "b", "c", "d"]);
            let n = 5;
            let mut reasons = vec![None; (k + 1) * n];
            for (v, row) in hidden.iter().enumerate() {
                for (p, &h) in row.iter().enumerate() {
                    if h {
                        reasons[(v + 1) * n + p + 1] = Some(Reason::BelowK);
                    }
                }
            }
            let state = State { t: &table, n, reasons, changed: false };
            let kids: Vec<usize> = (1..=k).collect();
            let group = Group { total: 0, parts: vec![1, 2, 3, 4] };
            prop_assert_eq!(
                state.find_bridge(&kids, &group),
                first_bridge_by_removal(&hidden, 4)
            );
        }
    }
}
