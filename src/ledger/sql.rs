//! A statement built on the request path and run later by the writer task, over either
//! connection kind (the sqlx pool, or the SQLite writer's own connection).

/// An SQL statement and its arguments (text, integers, bytes, or null).
#[derive(Debug, Clone)]
pub(super) struct Sql {
    pub(super) sql: &'static str,
    pub(super) args: Vec<Arg>,
}

/// An argument of a [`Sql`].
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Option<Vec<u8>>),
}

impl Sql {
    pub(super) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            args: Vec::new(),
        }
    }

    pub(super) fn text(mut self, value: impl Into<Option<String>>) -> Self {
        self.args.push(Arg::Text(value.into()));
        self
    }

    pub(super) fn int(mut self, value: impl Into<Option<i64>>) -> Self {
        self.args.push(Arg::Int(value.into()));
        self
    }

    pub(super) fn blob(mut self, value: impl Into<Option<Vec<u8>>>) -> Self {
        self.args.push(Arg::Blob(value.into()));
        self
    }

    pub(super) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(self.sql);
        for arg in &self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v.as_deref()),
                Arg::Int(v) => query.bind(*v),
                Arg::Blob(v) => query.bind(v.as_deref()),
            };
        }
        query
    }
}
