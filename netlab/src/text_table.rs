//! Tables for people: aligned columns as `docker ps` and `ip` print them, drawn by
//! comfy-table. The header is bold on a terminal; with `NO_COLOR` set, or when the output is
//! not a terminal (a pipe, a file), there is no escape sequence at all, so `awk` and `grep`
//! see plain text.

use std::borrow::Cow;

use comfy_table::{Attribute, Cell, CellAlignment, Table, presets};

/// Where a table is going, which decides whether it may be styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Standard output: styled only on a terminal and without `NO_COLOR`.
    Stdout,
    /// A file or a string kept for later: never styled.
    Plain,
}

/// A column: its header and whether its values are numbers (right-aligned).
#[derive(Debug, Clone)]
pub struct Column {
    pub header: Cow<'static, str>,
    pub numeric: bool,
}

impl Column {
    /// A left-aligned text column.
    pub fn text(header: impl Into<Cow<'static, str>>) -> Self {
        Column {
            header: header.into(),
            numeric: false,
        }
    }

    /// A right-aligned number column.
    pub fn number(header: impl Into<Cow<'static, str>>) -> Self {
        Column {
            header: header.into(),
            numeric: true,
        }
    }
}

/// An empty table with these columns, two spaces between them and no borders.
pub fn new(columns: &[Column], destination: Destination) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    if destination == Destination::Plain || no_color() {
        table.force_no_tty();
    }
    table.set_header(
        columns
            .iter()
            .map(|c| Cell::new(&c.header).add_attribute(Attribute::Bold)),
    );
    for (index, column) in columns.iter().enumerate() {
        if let Some(col) = table.column_mut(index) {
            col.set_padding((0, 2));
            if column.numeric {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    table
}

/// The table as text, one line per row, without trailing blanks.
pub fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// <https://no-color.org>: set and not empty.
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_without_escapes_when_plain() {
        let mut table = new(
            &[Column::text("node"), Column::number("count")],
            Destination::Plain,
        );
        table.add_row(["netns0", "7"]);
        table.add_row(["a-much-longer-name", "12345"]);
        let text = render(&table);
        assert_eq!(
            text,
            "node                count\nnetns0                  7\na-much-longer-name  12345"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
