//! Batched inserts for the demo loader: rows are collected per table and written as multi-row
//! `INSERT … VALUES (…), (…)` statements of a few hundred rows, with `$n` placeholders that both
//! SQLite and PostgreSQL accept. A full batch always has the same SQL text, so the driver's
//! statement cache prepares it once. Nothing here knows what the tables mean.

use sqlx::{Any, Transaction};

use crate::db::Backend;

/// Bind parameters per statement. SQLite would take 32,766, but the driver looks each parameter
/// up by name, which costs time quadratic in their number: 500 (about 45 rows of 11 columns)
/// loads the benchmark's year of history 4× faster than 6,000. PostgreSQL prefers fewer, larger
/// statements (fewer round trips) and allows 65,535.
pub fn max_params(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 500,
        Backend::Postgres => 6_000,
    }
}
/// Most rows in one statement, however narrow the table.
const MAX_ROWS: usize = 500;

/// One column value.
#[derive(Debug, Clone)]
pub enum V {
    T(String),
    S(&'static str),
    I(i64),
    NullText,
    NullInt,
}

impl From<&str> for V {
    fn from(s: &str) -> Self {
        V::T(s.to_owned())
    }
}

impl From<String> for V {
    fn from(s: String) -> Self {
        V::T(s)
    }
}

impl From<i64> for V {
    fn from(i: i64) -> Self {
        V::I(i)
    }
}

impl From<Option<&str>> for V {
    fn from(s: Option<&str>) -> Self {
        s.map_or(V::NullText, V::from)
    }
}

impl From<Option<i64>> for V {
    fn from(i: Option<i64>) -> Self {
        i.map_or(V::NullInt, V::I)
    }
}

/// Rows waiting to be inserted into one table.
pub struct Table {
    name: &'static str,
    cols: &'static [&'static str],
    values: Vec<V>,
    full_sql: Option<String>,
    /// Rows written so far.
    pub written: usize,
}

impl Table {
    pub fn new(name: &'static str, cols: &'static [&'static str]) -> Self {
        Self {
            name,
            cols,
            values: Vec::new(),
            full_sql: None,
            written: 0,
        }
    }

    /// Queues one row; `row` must have one value per column, in order.
    pub fn push<const N: usize>(&mut self, row: [V; N]) {
        debug_assert_eq!(N, self.cols.len(), "row width of {}", self.name);
        self.values.extend(row);
    }

    fn rows_per_statement(&self, max_params: usize) -> usize {
        (max_params / self.cols.len().max(1)).clamp(1, MAX_ROWS)
    }

    fn sql(&self, rows: usize) -> String {
        let width = self.cols.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.name,
            self.cols.join(", ")
        );
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..width {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(r * width + c + 1).to_string());
            }
            sql.push(')');
        }
        sql
    }

    /// Writes every queued row in `tx`, at most `max_params` values per statement.
    pub async fn flush(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        max_params: usize,
    ) -> Result<(), sqlx::Error> {
        let width = self.cols.len();
        let per = self.rows_per_statement(max_params);
        while !self.values.is_empty() {
            let rows = (self.values.len() / width).min(per);
            let sql = if rows == per {
                match &self.full_sql {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.sql(per);
                        self.full_sql = Some(s.clone());
                        s
                    }
                }
            } else {
                self.sql(rows)
            };
            let mut query = sqlx::query(&sql);
            for value in self.values.drain(..rows * width) {
                query = match value {
                    V::T(s) => query.bind(s),
                    V::S(s) => query.bind(s),
                    V::I(i) => query.bind(i),
                    V::NullText => query.bind(Option::<String>::None),
                    V::NullInt => query.bind(Option::<i64>::None),
                };
            }
            query.execute(&mut **tx).await?;
            self.written += rows;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_placeholders_row_by_row() {
        let t = Table::new("t", &["a", "b"]);
        assert_eq!(t.sql(2), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        let wide = Table::new("w", &["c"; 11]);
        assert_eq!(wide.rows_per_statement(max_params(Backend::Sqlite)), 45);
        assert_eq!(wide.rows_per_statement(max_params(Backend::Postgres)), 500);
        assert_eq!(Table::new("n", &["c"]).rows_per_statement(500), 500);
    }
}
