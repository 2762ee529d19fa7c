//! Column alignment with the exact semantics of Go's `text/tabwriter` (padchar ' ', flags 0),
//! which docker uses for every table; the `tabwriter` crate pads differently.

/// Aligns tab-terminated cells into columns. Text is buffered until [`GoTabWriter::finish`].
pub(crate) struct GoTabWriter {
    min_width: usize,
    padding: usize,
    buf: String,
}

impl GoTabWriter {
    /// `tabwriter.NewWriter(out, min_width, _, padding, ' ', 0)`.
    pub(crate) fn new(min_width: usize, padding: usize) -> Self {
        GoTabWriter {
            min_width,
            padding,
            buf: String::new(),
        }
    }

    /// docker's table formatter: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub(crate) fn table() -> Self {
        Self::new(10, 3)
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Lays out everything written so far.
    pub(crate) fn finish(self) -> String {
        layout(&self.buf, self.min_width, self.padding)
    }
}

/// A cell's width is its number of characters, as Go counts runes.
fn width(s: &str) -> usize {
    s.chars().count()
}

fn layout(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // widths[i][c]: the width of column c on line i, for every tab-terminated cell.
    let mut widths: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    for i in 0..lines.len() {
        let terminated = lines[i].len() - 1;
        for col in widths[i].len()..terminated {
            // A column block: the run of consecutive lines that have a terminated cell here.
            let mut w = min_width;
            let mut end = i;
            while end < lines.len() && col < lines[end].len() - 1 {
                w = w.max(width(lines[end][col]) + padding);
                end += 1;
            }
            for row in widths.iter_mut().take(end).skip(i) {
                row.push(w);
            }
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    for (i, cells) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let last = cells.len() - 1;
        for (c, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if c < last {
                let pad = widths[i]
                    .get(c)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_tabwriter() {
        let cases: &[(usize, usize, &str, &str)] = &[
            (
                10,
                3,
                "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t09b23f020198\t2 minutes ago\t1.98MB\n",
                "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
                 busybox      latest    09b23f020198   2 minutes ago   1.98MB\n",
            ),
            (
                10,
                3,
                "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n",
                "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n",
            ),
            (
                20,
                1,
                "Client:\n Version:\t28.2.2\n API version:\t1.41\n\nServer:\n Engine:\n  Version:\t20.10\n",
                "Client:\n Version:           28.2.2\n API version:       1.41\n\nServer:\n Engine:\n  Version:          20.10\n",
            ),
            // A line without the column ends the block: each block is sized on its own.
            (1, 1, "a\tb\nlonger\tc\nx\nq\tr\n", "a      b\nlonger c\nx\nq r\n"),
            // Empty cells still occupy their column.
            (10, 3, "A\t\tC\n", "A                   C\n"),
        ];
        for (min, pad, input, want) in cases {
            let mut tw = GoTabWriter::new(*min, *pad);
            tw.push_str(input);
            assert_eq!(tw.finish(), *want, "input {input:?}");
        }
    }
}
